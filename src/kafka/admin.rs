//! Creating topics. Brokers without topic auto-creation (Tansu, and many managed clusters) need
//! it before the first produce; the CLI's `pktstream broker --topic` and the tests use it too.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::config::Config;
use super::connection::RecordingContext;
use super::error::{code_of, KafkaError, Result};

/// Creates `topic` with `partitions` partitions; `Ok(false)` if it already existed.
pub fn create_topic(
    config: &Config,
    topic: &str,
    partitions: i32,
    replication: i32,
    timeout: Duration,
) -> Result<bool> {
    if partitions < 1 {
        return Err(KafkaError::invalid("partitions must be at least 1"));
    }
    config.validate()?;
    let admin: AdminClient<RecordingContext> = config
        .client_config()
        .create_with_context(RecordingContext::default())
        .map_err(|e| KafkaError::from_rdkafka("", &e))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let results = futures_executor::block_on(admin.create_topics([&new], &opts))
        .map_err(|e| match code_of(&e) {
            RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure => KafkaError::Timeout(format!(
                "no Kafka broker answered at {} within {:.1} s ({e})",
                config.servers(),
                timeout.as_secs_f64()
            )),
            _ => KafkaError::from_rdkafka(&format!("create topic {topic:?}"), &e),
        })
        .map_err(|e| {
            let errors = &admin.inner().context().errors;
            errors.drain(admin.inner());
            errors.explain(e)
        })?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(KafkaError::from_code(&format!("create topic {topic:?}"), code)),
        None => Ok(true),
    }
}
