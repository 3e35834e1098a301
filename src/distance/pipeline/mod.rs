//! The windowed pairs pipeline: Kafka events in, pairs per key and event-time window out,
//! offsets committed at-least-once (`pktstream.pipelines.netflow_distances`).
//!
//! Why it is in Rust: the Python loop it replaces spent its time in per-batch bookkeeping
//! (held-back events as pyarrow tables, offsets in numpy) and opened a new librdkafka producer for
//! every delivery (a metadata round trip and a connection each time). Here one producer lives for
//! the whole run, and the bookkeeping is plain vectors.
//!
//! Layers, each testable alone:
//! - [`events`]: a consumed batch (`_topic`, `_partition`, `_offset`, `_error` and the value
//!   columns) to valid events: key, id, event time (ns), features (normalized), and where each
//!   came from;
//! - [`state`]: the state machine, without Kafka: events held back until every partition's
//!   watermark has passed them, pushed into [`super::WindowedPairs`], closed windows' pairs handed
//!   to a [`state::PairSink`], and the offsets that are safe to commit;
//! - [`output`]: pairs to the output rows (`eventid_1`, `eventid_2`, `distance`, `timestamp`,
//!   `key`, `window_start`);
//! - [`driver`]: the loop over the Rust [`crate::kafka::Consumer`] and one long-lived
//!   [`crate::kafka::producer::Producer`], with idle and `max_events` stops and rebalances.
//!
//! Event time: the watermark is the *smallest* of the assigned partitions' largest event times
//! (as in Flink and Kafka Streams); a partition silent for `idle_partition_timeout` stops holding
//! it back. Delivery: a window's pairs are acknowledged by the broker before any offset covering
//! its events is committed; per partition, the safe offset is the smallest offset of an event
//! still held back or in an open window, else the next offset to read.

pub mod driver;
pub mod events;
pub mod output;
pub mod state;

#[cfg(test)]
mod tests;

use super::DistanceError;
use crate::kafka::KafkaError;

pub use driver::{run, PipelineConfig};
pub use events::{EventSpec, Normalize};
pub use state::{PairSink, Pipeline};

/// What a pipeline run did (the Python `PipelineReport`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Input messages read.
    pub events: u64,
    /// Messages that could not be decoded or lack the key, id or time.
    pub invalid: u64,
    /// Events whose window had already closed.
    pub late_events: u64,
    /// `(key, window)` groups over `max_group_events`.
    pub large_groups: u64,
    /// The events of those groups.
    pub large_group_events: u64,
    /// `(key, window)` groups that produced pairs.
    pub windows: u64,
    /// Pairs computed and produced.
    pub pairs: u64,
    /// Output messages acknowledged by the broker.
    pub delivered: u64,
    /// Offset commits made.
    pub commits: u64,
    /// `(topic, partition, next offset)` last committed, sorted.
    pub committed: Vec<(String, i32, i64)>,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
    /// From the first message read to the last delivery, in seconds.
    pub active_seconds: f64,
    /// Why the run ended: `"idle"`, `"max_events"`, `"interrupted"` (empty while running).
    pub stopped: &'static str,
}

impl Report {
    /// Records a commit of `offsets` (each a partition's next offset).
    pub fn record_commit(&mut self, offsets: &[(String, i32, i64)]) {
        for (t, p, o) in offsets {
            match self.committed.iter_mut().find(|(ct, cp, _)| ct == t && cp == p) {
                Some(e) => e.2 = *o,
                None => self.committed.push((t.clone(), *p, *o)),
            }
        }
        self.committed.sort();
        self.commits += 1;
    }

    /// The last committed offset of a partition, if any.
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.committed.iter().find(|(t, p, _)| t == topic && *p == partition).map(|e| e.2)
    }
}

/// Everything a pipeline run can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Kafka: configuration, broker, topic, consume or commit errors (and Ctrl-C, as
    /// `KafkaError::Core(Error::Interrupted)`).
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// The distance kernels refused the input or an option (or ran out of memory).
    #[error(transparent)]
    Distance(#[from] DistanceError),
    /// Output messages were not delivered; nothing more was committed.
    #[error("{failed} of {messages} messages were not delivered; first error: {first}")]
    Delivery {
        /// Messages that failed.
        failed: u64,
        /// Messages produced in all.
        messages: u64,
        /// The first failure, verbatim.
        first: String,
        /// librdkafka's name for its code.
        code: String,
    },
}

impl From<arrow_schema::ArrowError> for PipelineError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        PipelineError::Distance(DistanceError::Arrow(e))
    }
}

/// The module's result type.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
