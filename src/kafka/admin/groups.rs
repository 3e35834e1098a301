//! Consumer groups: which exist, and how far behind each is (`kafka-consumer-groups --describe`).
//!
//! A group's lag is its committed offset per partition against the partition's end. The committed
//! offsets are fetched from the group coordinator by a consumer that carries the group's id but
//! never subscribes, so it neither joins the group nor disturbs its members; the ends come from
//! the partition leaders' watermarks.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::{admin_client, admin_error, Context};
use crate::kafka::config::Config;
use crate::kafka::error::{KafkaError, Result};

/// One consumer group, as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// The group id.
    pub name: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, ... (as the broker reports it).
    pub state: String,
    /// `consumer` for Kafka consumers; other values for Connect workers and the like.
    pub protocol_type: String,
    /// Number of members currently in the group.
    pub members: usize,
}

/// A group's position in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The topic name.
    pub topic: String,
    /// The partition index within the topic.
    pub partition: i32,
    /// The next offset the group will read; `None` if it never committed here.
    pub committed: Option<i64>,
    /// The partition's first stored offset and end (the offset the next message gets).
    pub low: i64,
    /// The end of the partition: the offset the next message gets.
    pub high: i64,
}

impl PartitionOffsets {
    /// Messages the group has not read yet; `None` without a commit.
    pub fn lag(&self) -> Option<i64> {
        self.committed.map(|c| (self.high - c.max(self.low)).max(0))
    }
}

/// Every consumer group the cluster knows, by name.
pub fn list_groups(config: &Config, timeout: Duration) -> Result<Vec<GroupSummary>> {
    let admin = admin_client(config)?;
    let list = admin
        .inner()
        .fetch_group_list(None, timeout)
        .map_err(|e| admin_error(admin.inner(), config, timeout, "list groups", &e))?;
    let mut out: Vec<GroupSummary> = list
        .groups()
        .iter()
        .map(|g| GroupSummary {
            name: g.name().to_string(),
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            members: g.members().len(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `group`'s committed offsets and the partitions' watermarks, for every partition of `topics`,
/// or (when `None`) of every topic the group has committed offsets on.
pub fn group_offsets(
    config: &Config,
    group: &str,
    topics: Option<&[String]>,
    timeout: Duration,
) -> Result<Vec<PartitionOffsets>> {
    if group.is_empty() {
        return Err(KafkaError::invalid("the group id must not be empty"));
    }
    let what = format!("describe group {group:?}");
    let mut cfg = config.clone();
    cfg.set("group.id", group);
    cfg.set("enable.auto.commit", "false");
    cfg.validate()?;
    let consumer: BaseConsumer<Context> =
        cfg.client_config().create_with_context(Context::default()).map_err(|e| KafkaError::from_rdkafka("", &e))?;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| admin_error(consumer.client(), config, timeout, &what, &e))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        let wanted = match topics {
            Some(names) => names.iter().any(|n| n == t.name()),
            None => !t.name().starts_with("__"),
        };
        if wanted && t.error().is_none() {
            for p in t.partitions() {
                tpl.add_partition(t.name(), p.id());
            }
        }
    }
    if let Some(missing) = topics.and_then(|names| names.iter().find(|n| tpl.elements_for_topic(n).is_empty())) {
        return Err(KafkaError::UnknownTopic { topic: missing.clone(), servers: config.servers().to_string() });
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = consumer
        .committed_offsets(tpl, timeout)
        .map_err(|e| admin_error(consumer.client(), config, timeout, &what, &e))?;
    let mut rows: Vec<(String, i32, Option<i64>)> = committed
        .elements()
        .iter()
        .map(|e| {
            let c = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (e.topic().to_string(), e.partition(), c)
        })
        .collect();
    if topics.is_none() {
        // Only topics the group has read: any partition with a commit keeps its whole topic.
        let read: std::collections::HashSet<String> =
            rows.iter().filter(|r| r.2.is_some()).map(|r| r.0.clone()).collect();
        rows.retain(|r| read.contains(&r.0));
    }
    rows.sort();
    let mut out = Vec::with_capacity(rows.len());
    for (topic, partition, committed) in rows {
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, timeout)
            .map_err(|e| admin_error(consumer.client(), config, timeout, &what, &e))?;
        out.push(PartitionOffsets { topic, partition, committed, low, high });
    }
    Ok(out)
}

/// The offsets consumer never joins the group: nothing to do on rebalances.
impl ConsumerContext for Context {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_what_is_left_and_nothing_without_a_commit() {
        let p = |committed| PartitionOffsets { topic: "t".into(), partition: 0, committed, low: 10, high: 100 };
        assert_eq!(p(Some(40)).lag(), Some(60));
        assert_eq!(p(Some(100)).lag(), Some(0));
        assert_eq!(p(Some(3)).lag(), Some(90), "offsets before the first stored one count from it");
        assert_eq!(p(None).lag(), None);
    }

    #[test]
    fn an_empty_group_id_is_refused() {
        let c = Config::layered(&[("bootstrap.servers", "127.0.0.1:9")], &[]);
        assert!(group_offsets(&c, "", None, Duration::from_millis(100)).is_err());
    }
}
