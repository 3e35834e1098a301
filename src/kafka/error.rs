//! The Kafka module's one error type.
//!
//! librdkafka reports failures as error codes with two flags that decide what a caller should do:
//! *retriable* (try again later) and *fatal* (the client is unusable). Those survive intact into
//! [`KafkaError::Kafka`] so the Python `pktstream.KafkaError` can expose `.code`, `.retriable` and
//! `.fatal`. Errors with an obvious cause users meet first (a missing topic, a bad configuration
//! key, an unreachable broker) get their own variants and messages that say what to do.

use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};

/// Everything the Kafka layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// An error reported by librdkafka or the broker.
    #[error("{message}")]
    Kafka {
        /// librdkafka's error name without the leading underscore, e.g. `"MSG_SIZE_TOO_LARGE"`.
        code: String,
        /// librdkafka's or the broker's description.
        message: String,
        /// Trying again later may succeed.
        retriable: bool,
        /// The client is unusable and must be recreated.
        fatal: bool,
    },

    /// A configuration key or value librdkafka rejects, or an invalid pktstream option.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),

    /// The broker did not answer in time (unreachable, or down).
    #[error("{0}")]
    Timeout(String),

    /// The topic does not exist.
    #[error(
        "topic {topic:?} does not exist on {servers} (create it first, e.g. pktstream.create_topic({topic:?}, \
         partitions=..., bootstrap_servers={servers:?}))"
    )]
    UnknownTopic {
        /// The topic name as given.
        topic: String,
        /// The `bootstrap.servers` asked.
        servers: String,
    },

    /// Memory for a consumed batch could not be reserved (or one batch column would pass 2 GiB).
    /// Nothing was added for the message that hit it; Python sees a `MemoryError`.
    #[error("out of memory while decoding Kafka messages: {0}")]
    OutOfMemory(String),

    /// A capture file problem, an invalid argument or an interruption from the core.
    #[error(transparent)]
    Core(#[from] crate::error::Error),
}

impl KafkaError {
    /// Wraps an rdkafka error, keeping its code and flags, with `context` prefixed to the message.
    pub fn from_rdkafka(context: &str, e: &RdError) -> Self {
        let code = code_of(e);
        // Never echo the value: it may be a secret.
        if let RdError::ClientConfig(_, description, key, _) = e {
            return KafkaError::Config(format!("{key}: {description}"));
        }
        if let RdError::ClientCreation(m) = e {
            if m.contains("GSSAPI") {
                return KafkaError::Config(format!(
                    "{m}. pktstream's librdkafka has no GSSAPI (Kerberos): it is built with OpenSSL's SASL \
                     mechanisms PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER only"
                ));
            }
            return KafkaError::Config(m.clone());
        }
        let (retriable, fatal) = flags(e, code);
        let message = if context.is_empty() { e.to_string() } else { format!("{context}: {e}") };
        KafkaError::Kafka { code: code_name(code), message, retriable, fatal }
    }

    /// A librdkafka error code without an rdkafka error around it (delivery reports).
    pub fn from_code(context: &str, code: RDKafkaErrorCode) -> Self {
        KafkaError::Kafka {
            code: code_name(code),
            message: format!("{context}: {code}"),
            retriable: is_retriable(code),
            fatal: code == RDKafkaErrorCode::Fatal,
        }
    }

    /// A failure librdkafka reported through a client's error callback, with its reason.
    pub fn from_code_reason(code: RDKafkaErrorCode, reason: &str) -> Self {
        KafkaError::Kafka {
            code: code_name(code),
            message: reason.to_string(),
            retriable: is_retriable(code),
            fatal: code == RDKafkaErrorCode::Fatal,
        }
    }

    /// An invalid pktstream option (as opposed to a librdkafka configuration key).
    pub fn invalid(message: impl Into<String>) -> Self {
        KafkaError::Core(crate::error::Error::InvalidArgument(message.into()))
    }
}

/// The librdkafka code of an rdkafka error; admin operations carry theirs in `AdminOp`, which
/// `rdkafka_error_code()` does not report.
pub fn code_of(e: &RdError) -> RDKafkaErrorCode {
    match e {
        RdError::AdminOp(code) => *code,
        _ => e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail),
    }
}

fn flags(e: &RdError, code: RDKafkaErrorCode) -> (bool, bool) {
    match e {
        RdError::Transaction(rd) => (rd.is_retriable(), rd.is_fatal()),
        _ => (is_retriable(code), code == RDKafkaErrorCode::Fatal),
    }
}

/// Codes that a later attempt may clear (the broker is moving, busy or briefly gone).
pub fn is_retriable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        BrokerTransportFailure
            | AllBrokersDown
            | MessageTimedOut
            | OperationTimedOut
            | QueueFull
            | RequestTimedOut
            | NotLeaderForPartition
            | LeaderNotAvailable
            | NetworkException
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | CoordinatorLoadInProgress
            | CoordinatorNotAvailable
            | NotCoordinator
            | UnknownTopicOrPartition
            | KafkaStorageError
            // A commit during a rebalance: nothing was committed; commit again after the next read.
            | RebalanceInProgress
            | IllegalGeneration
            | UnknownMemberId
    )
}

/// `RDKafkaErrorCode::MessageSizeTooLarge` -> `"MSG_SIZE_TOO_LARGE"`, librdkafka's own names.
pub fn code_name(code: RDKafkaErrorCode) -> String {
    // SAFETY: every `RDKafkaErrorCode` is defined as one of librdkafka's `rd_kafka_resp_err_t`
    // values (same repr), and rd_kafka_err2name returns a static NUL-terminated string for any code.
    let name = unsafe {
        let raw: rdkafka::types::RDKafkaRespErr = std::mem::transmute(code as i32);
        std::ffi::CStr::from_ptr(rdkafka::bindings::rd_kafka_err2name(raw))
    };
    name.to_string_lossy().trim_start_matches('_').to_string()
}

/// The module's result alias.
pub type Result<T, E = KafkaError> = std::result::Result<T, E>;
