//! A librdkafka producer that applies back-pressure instead of dropping, and counts deliveries.
//!
//! librdkafka queues messages locally and reports each delivery asynchronously. When its queue is
//! full, `produce` fails with `QUEUE_FULL`; confluent-kafka users see that as `BufferError` and
//! often lose data there. [`Producer::send`] instead waits for the queue to drain and retries, so a
//! fast reader simply slows to the broker's pace. Delivery reports land in atomic counters (read
//! by progress bars) and the first few failures are kept with their codes for the final report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;

use super::config::Config;
use super::connection::ConnectionErrors;
use super::error::{KafkaError, Result};

/// How many delivery errors a report keeps verbatim.
const KEPT_ERRORS: usize = 10;

/// Delivery counters shared with librdkafka's callback thread.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Messages the broker acknowledged.
    pub delivered: AtomicU64,
    /// Messages whose delivery failed.
    pub failed: AtomicU64,
    errors: Mutex<Vec<KafkaError>>,
    fatal: Mutex<Option<KafkaError>>,
}

impl Deliveries {
    fn fail(&self, e: KafkaError) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < KEPT_ERRORS {
            errors.push(e);
        }
    }

    /// The first failures, in order.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|e| e.to_string()).collect()
    }

    /// librdkafka's name for the first failure's error code.
    pub fn first_code(&self) -> Option<String> {
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        errors.first().map(|e| match e {
            KafkaError::Kafka { code, .. } => code.clone(),
            _ => "FAIL".to_string(),
        })
    }

    fn fatal(&self) -> Option<KafkaError> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(clone_error)
    }
}

fn clone_error(e: &KafkaError) -> KafkaError {
    match e {
        KafkaError::Kafka { code, message, retriable, fatal } => {
            KafkaError::Kafka { code: code.clone(), message: message.clone(), retriable: *retriable, fatal: *fatal }
        }
        other => KafkaError::Kafka { code: "FAIL".into(), message: other.to_string(), retriable: false, fatal: false },
    }
}

/// librdkafka callbacks: deliveries, client-level (fatal) errors and connection failures.
pub struct Context {
    deliveries: Arc<Deliveries>,
    connection: ConnectionErrors,
}

impl ClientContext for Context {
    fn error(&self, error: RdError, reason: &str) {
        self.connection.record(&error, reason);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            let e = KafkaError::from_rdkafka(reason, &error);
            *self.deliveries.fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.deliveries.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, msg)) => {
                let context = format!("delivery to {} [{}] failed", msg.topic(), msg.partition());
                self.deliveries.fail(KafkaError::from_rdkafka(&context, e));
            }
        }
    }
}

/// One message to send.
pub struct Outgoing<'a> {
    /// The value bytes.
    pub payload: &'a [u8],
    /// The key bytes; `None` for no key.
    pub key: Option<&'a [u8]>,
    /// The partition to send to; `None` leaves it to librdkafka's partitioner.
    pub partition: Option<i32>,
    /// Message headers; `None` for none.
    pub headers: Option<OwnedHeaders>,
}

/// A producer for one topic.
pub struct Producer {
    inner: ThreadedProducer<Context>,
    deliveries: Arc<Deliveries>,
    topic: String,
    config: Config,
    /// Messages handed to librdkafka.
    pub sent: u64,
    /// Key and value bytes handed to librdkafka.
    pub bytes: u64,
}

impl Producer {
    /// Creates the client; fails on an invalid configuration key or value.
    pub fn new(config: Config, topic: &str) -> Result<Self> {
        config.validate()?;
        let deliveries = Arc::new(Deliveries::default());
        let context = Context { deliveries: deliveries.clone(), connection: ConnectionErrors::default() };
        let inner =
            config.client_config().create_with_context(context).map_err(|e| KafkaError::from_rdkafka("", &e))?;
        Ok(Self { inner, deliveries, topic: topic.to_string(), config, sent: 0, bytes: 0 })
    }

    /// The delivery counters, shared with the callback thread.
    pub fn deliveries(&self) -> &Arc<Deliveries> {
        &self.deliveries
    }

    /// The librdkafka configuration the producer was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The number of partitions of the topic; a clear error when the broker cannot be reached in
    /// `timeout` or the topic does not exist.
    pub fn partitions(&self, timeout: Duration) -> Result<i32> {
        partition_count(self.inner.client(), &self.topic, self.config.servers(), timeout)
            .map_err(|e| self.inner.context().connection.explain(e))
    }

    /// Queues one message, waiting (never dropping) while librdkafka's queue is full.
    /// `interrupted` is polled while waiting; when it returns an error, that error is returned.
    pub fn send(&mut self, m: Outgoing<'_>, interrupted: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&self.topic).payload(m.payload);
        if let Some(k) = m.key {
            record = record.key(k);
        }
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        if let Some(h) = m.headers {
            record = record.headers(h);
        }
        let mut waited = Instant::now();
        loop {
            match self.inner.send(record) {
                Ok(()) => {
                    self.sent += 1;
                    self.bytes += (m.payload.len() + m.key.map_or(0, <[u8]>::len)) as u64;
                    return Ok(());
                }
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = back;
                    if let Some(fatal) = self.deliveries.fatal() {
                        return Err(fatal);
                    }
                    // The poll thread serves delivery reports; give the queue time to drain.
                    std::thread::sleep(Duration::from_micros(500));
                    if waited.elapsed() > Duration::from_millis(100) {
                        interrupted()?;
                        waited = Instant::now();
                    }
                }
                Err((e, _)) => {
                    let context = format!("cannot produce to {}", self.topic);
                    return Err(KafkaError::from_rdkafka(&context, &e));
                }
            }
        }
    }

    /// Waits until every queued message is delivered or has failed. `interrupted` is polled about
    /// ten times a second; if it errors, waiting stops (messages stay queued until dropped).
    pub fn flush(&self, interrupted: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        loop {
            match self.inner.flush(Timeout::After(Duration::from_millis(100))) {
                Ok(()) => return Ok(()),
                Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut) => interrupted()?,
                Err(e) => return Err(KafkaError::from_rdkafka("flush failed", &e)),
            }
            if let Some(fatal) = self.deliveries.fatal() {
                return Err(fatal);
            }
        }
    }

    /// Messages queued but not yet delivered or failed.
    pub fn in_flight(&self) -> i32 {
        self.inner.in_flight_count()
    }
}

/// The partition count of `topic`, with errors that name the cause.
pub fn partition_count<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    servers: &str,
    timeout: Duration,
) -> Result<i32> {
    let md = client.fetch_metadata(Some(topic), Timeout::After(timeout)).map_err(|e| match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure,
        ) => KafkaError::Timeout(format!(
            "no Kafka broker answered at {servers} within {:.1} s ({e}); is it running? \
                 (`pktstream broker` starts a local one)",
            timeout.as_secs_f64()
        )),
        _ => KafkaError::from_rdkafka(&format!("metadata for topic {topic:?}"), &e),
    })?;
    let t = md.topics().iter().find(|t| t.name() == topic);
    let code = t.and_then(|t| t.error()).map(RDKafkaErrorCode::from);
    match (t, code) {
        (Some(t), None) if !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
        (Some(_), Some(code)) if code != RDKafkaErrorCode::UnknownTopicOrPartition => {
            Err(KafkaError::from_code(&format!("topic {topic:?}"), code))
        }
        _ => Err(KafkaError::UnknownTopic { topic: topic.to_string(), servers: servers.to_string() }),
    }
}
