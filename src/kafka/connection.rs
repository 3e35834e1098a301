//! Why a client cannot reach the cluster, for the error a user sees.
//!
//! librdkafka reports a failed TLS handshake (wrong CA, wrong host name) or a refused SASL login
//! (wrong password) only through the client's error callback, then keeps retrying: the request
//! that needed the broker (metadata, a topic creation) merely times out. A timeout that says "no
//! broker answered" sends users to check a broker that is up. So every client pktstream creates
//! records the last such failure here, and a timeout that follows is replaced by it: the user gets
//! `KafkaSSLError` or `KafkaAuthenticationError` with librdkafka's explanation. librdkafka's
//! messages name mechanisms, users and certificates, never passwords.

use std::ffi::CStr;
use std::sync::Mutex;

use rdkafka::bindings as rdsys;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};

use super::error::KafkaError;

/// The last TLS or authentication failure a client reported.
#[derive(Debug, Default)]
pub struct ConnectionErrors {
    last: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl ConnectionErrors {
    /// Keeps `error` if it explains why brokers are unreachable (TLS, SASL, name resolution).
    pub fn record(&self, error: &RdError, reason: &str) {
        if let Some(code) = error.rdkafka_error_code() {
            self.record_code(code, reason);
        }
    }

    fn record_code(&self, code: RDKafkaErrorCode, reason: &str) {
        if explains_unreachable(code) {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((code, reason.to_string()));
        }
    }

    /// Reads the error events waiting in `client`'s main queue. Admin clients need this: rdkafka
    /// polls only their operation queue, so their error callback never runs.
    pub fn drain<C: ClientContext>(&self, client: &Client<C>) {
        // SAFETY: `native_ptr` is the live client handle `client` owns; `rd_kafka_queue_get_main`
        // and `rd_kafka_queue_get_consumer` return new references to its queues (the latter NULL
        // for a client without a consumer group), each released with `rd_kafka_queue_destroy`.
        unsafe {
            let rk = client.native_ptr();
            for queue in [rdsys::rd_kafka_queue_get_main(rk), rdsys::rd_kafka_queue_get_consumer(rk)] {
                if !queue.is_null() {
                    self.drain_queue(queue);
                    rdsys::rd_kafka_queue_destroy(queue);
                }
            }
        }
    }

    /// # Safety
    /// `queue` must be a live queue reference owned by the caller.
    unsafe fn drain_queue(&self, queue: *mut rdsys::rd_kafka_queue_t) {
        for _ in 0..10_000 {
            // SAFETY: each non-null event polled is ours until `rd_kafka_event_destroy`; its error
            // string lives as long as the event and is copied before the event is destroyed.
            unsafe {
                let event = rdsys::rd_kafka_queue_poll(queue, 0);
                if event.is_null() {
                    return;
                }
                if rdsys::rd_kafka_event_type(event) == rdsys::RD_KAFKA_EVENT_ERROR {
                    let code: RDKafkaErrorCode = rdsys::rd_kafka_event_error(event).into();
                    let reason = rdsys::rd_kafka_event_error_string(event);
                    let reason = if reason.is_null() { "".into() } else { CStr::from_ptr(reason).to_string_lossy() };
                    self.record_code(code, reason.trim());
                }
                rdsys::rd_kafka_event_destroy(event);
            }
        }
    }

    /// The recorded failure as an error, if any.
    pub fn cause(&self) -> Option<KafkaError> {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref().map(|(code, reason)| KafkaError::from_code_reason(*code, reason))
    }

    /// `timeout`, unless a recorded failure explains it.
    pub fn explain(&self, timeout: KafkaError) -> KafkaError {
        match timeout {
            KafkaError::Timeout(_) => self.cause().unwrap_or(timeout),
            other => other,
        }
    }
}

/// Codes that mean "the broker is there, but we may not talk to it" (or cannot be found).
fn explains_unreachable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        SSL | Authentication | SaslAuthenticationFailed | UnsupportedSASLMechanism | IllegalSASLState | Resolve
    )
}

/// A client context that only records connection failures (admin clients, metadata lookups).
#[derive(Debug, Default)]
pub struct RecordingContext {
    /// The connection failures recorded so far.
    pub errors: ConnectionErrors,
}

impl ClientContext for RecordingContext {
    fn error(&self, error: RdError, reason: &str) {
        self.errors.record(&error, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_explained_by_the_last_tls_or_sasl_failure_only() {
        let errors = ConnectionErrors::default();
        let timeout = || KafkaError::Timeout("no broker answered".into());
        assert!(matches!(errors.explain(timeout()), KafkaError::Timeout(_)));
        errors.record(&RdError::Global(RDKafkaErrorCode::BrokerTransportFailure), "connection refused");
        assert!(matches!(errors.explain(timeout()), KafkaError::Timeout(_)), "a refused connection is a timeout");
        errors.record(
            &RdError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: invalid credentials",
        );
        match errors.explain(timeout()) {
            KafkaError::Kafka { code, message, retriable, fatal } => {
                assert_eq!(code, "AUTHENTICATION");
                assert!(message.contains("invalid credentials"), "{message}");
                assert!(!retriable && !fatal);
            }
            other => panic!("{other:?}"),
        }
    }
}
