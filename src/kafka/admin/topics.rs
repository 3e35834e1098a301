//! Topics: list, describe (partitions, leaders, replicas, watermarks, configuration), create and
//! delete. Brokers without topic auto-creation (and many managed clusters) need a topic created
//! before the first produce; the CLI's `pktstream topics` and the tests use the rest.

use std::time::Duration;

use rdkafka::admin::{ConfigSource, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;

use super::{admin_client, admin_code_error, admin_error, admin_options};
use crate::kafka::config::Config;
use crate::kafka::error::{KafkaError, Result};

/// A topic's name and partition count, as metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    /// The topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: usize,
}

/// One partition: where it lives and which offsets it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index within the topic.
    pub partition: i32,
    /// The leader's broker id; -1 while there is none.
    pub leader: i32,
    /// Broker ids holding a replica.
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub isr: Vec<i32>,
    /// The first offset still stored and the offset the next message gets.
    pub low: i64,
    /// The offset the next message gets (end of the partition).
    pub high: i64,
}

/// One topic configuration entry; sensitive values are never read (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigEntry {
    /// The configuration key, e.g. `retention.ms`.
    pub name: String,
    /// The value; `None` for sensitive entries or when the broker reports none.
    pub value: Option<String>,
    /// Where the value comes from: `"topic"` (set on this topic, what `kafka-topics --describe`
    /// lists), `"broker"` (the broker's configuration), `"default"` or `"unknown"`.
    pub source: &'static str,
    /// The broker marks the value secret; it is then never read.
    pub is_sensitive: bool,
}

fn source_name(source: &ConfigSource) -> &'static str {
    match source {
        ConfigSource::DynamicTopic => "topic",
        ConfigSource::DynamicBroker | ConfigSource::DynamicDefaultBroker | ConfigSource::StaticBroker => "broker",
        ConfigSource::Default => "default",
        ConfigSource::Unknown => "unknown",
    }
}

/// Everything `kafka-topics --describe` shows, plus the watermarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic name.
    pub name: String,
    /// Every partition, in index order.
    pub partitions: Vec<PartitionInfo>,
    /// Every configuration entry the broker reports for the topic.
    pub configs: Vec<TopicConfigEntry>,
}

/// The cluster's topics (all of them, or only `topic`: empty when it does not exist), by name.
pub fn list_topics(config: &Config, topic: Option<&str>, timeout: Duration) -> Result<Vec<TopicSummary>> {
    let admin = admin_client(config)?;
    let metadata = admin
        .inner()
        .fetch_metadata(topic, timeout)
        .map_err(|e| admin_error(admin.inner(), config, timeout, "list topics", &e))?;
    let mut out: Vec<TopicSummary> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| TopicSummary { name: t.name().to_string(), partitions: t.partitions().len() })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Partitions with leaders, replicas and watermarks, and the topic's configuration.
pub fn describe_topic(config: &Config, topic: &str, timeout: Duration) -> Result<TopicDescription> {
    let admin = admin_client(config)?;
    let what = format!("describe topic {topic:?}");
    let metadata: Metadata = admin
        .inner()
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| admin_error(admin.inner(), config, timeout, &what, &e))?;
    let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(unknown(config, topic));
    };
    match meta.error().map(RDKafkaErrorCode::from) {
        None => {}
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return Err(unknown(config, topic)),
        Some(code) => return Err(KafkaError::from_code(&what, code)),
    }
    let mut partitions = Vec::with_capacity(meta.partitions().len());
    for p in meta.partitions() {
        let (low, high) = admin
            .inner()
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(|e| admin_error(admin.inner(), config, timeout, &what, &e))?;
        partitions.push(PartitionInfo {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
            low,
            high,
        });
    }
    partitions.sort_by_key(|p| p.partition);
    let resources =
        futures_executor::block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_options(timeout)))
            .map_err(|e| admin_error(admin.inner(), config, timeout, &what, &e))?;
    let mut configs = Vec::new();
    for resource in resources {
        let resource = resource.map_err(|code| admin_code_error(admin.inner(), config, timeout, &what, code))?;
        configs.extend(resource.entries.into_iter().map(|e| TopicConfigEntry {
            value: if e.is_sensitive { None } else { e.value },
            name: e.name,
            source: source_name(&e.source),
            is_sensitive: e.is_sensitive,
        }));
    }
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(TopicDescription { name: topic.to_string(), partitions, configs })
}

/// Creates `topic` with `partitions` partitions and `topic_config` settings (`retention.ms`, ...);
/// `Ok(false)` if it already existed.
pub fn create_topic(
    config: &Config,
    topic: &str,
    partitions: i32,
    replication: i32,
    topic_config: &[(String, String)],
    timeout: Duration,
) -> Result<bool> {
    if partitions < 1 {
        return Err(KafkaError::invalid("partitions must be at least 1"));
    }
    let admin = admin_client(config)?;
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (k, v) in topic_config {
        new = new.set(k, v);
    }
    let what = format!("create topic {topic:?}");
    let results = futures_executor::block_on(admin.create_topics([&new], &admin_options(timeout)))
        .map_err(|e| admin_error(admin.inner(), config, timeout, &what, &e))?;
    match results.into_iter().next() {
        Some(Ok(_)) | None => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(admin_code_error(admin.inner(), config, timeout, &what, code)),
    }
}

/// Deletes `topic` and its messages; `Ok(false)` if it did not exist.
pub fn delete_topic(config: &Config, topic: &str, timeout: Duration) -> Result<bool> {
    let admin = admin_client(config)?;
    let what = format!("delete topic {topic:?}");
    let results = futures_executor::block_on(admin.delete_topics(&[topic], &admin_options(timeout)))
        .map_err(|e| admin_error(admin.inner(), config, timeout, &what, &e))?;
    match results.into_iter().next() {
        Some(Ok(_)) | None => Ok(true),
        Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) => Ok(false),
        Some(Err((_, code))) => Err(admin_code_error(admin.inner(), config, timeout, &what, code)),
    }
}

fn unknown(config: &Config, topic: &str) -> KafkaError {
    KafkaError::UnknownTopic { topic: topic.to_string(), servers: config.servers().to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nowhere() -> Config {
        // A closed port on loopback: connections are refused at once.
        Config::layered(&[("bootstrap.servers", "127.0.0.1:9")], &[])
    }

    #[test]
    fn an_unreachable_cluster_is_a_timeout_naming_the_servers() {
        let e = list_topics(&nowhere(), None, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, KafkaError::Timeout(_)), "{e:?}");
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
        let e = delete_topic(&nowhere(), "t", Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, KafkaError::Timeout(_)), "{e:?}");
    }

    #[test]
    fn invalid_arguments_fail_before_connecting() {
        let e = create_topic(&nowhere(), "t", 0, 1, &[], Duration::from_millis(100)).unwrap_err();
        assert!(e.to_string().contains("partitions"), "{e}");
        let bad = Config::layered(&[("bootstrap.servers", "x:1")], &[("no.such.key".into(), "1".into())]);
        assert!(matches!(describe_topic(&bad, "t", Duration::from_millis(100)), Err(KafkaError::Config(_))));
    }
}
