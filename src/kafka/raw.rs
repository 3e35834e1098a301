//! `raw`: a capture's frames sent as they are, one message each.
//!
//! The value is the frame, the key the timestamp as 8 big-endian bytes in `timestamp_unit`
//! (Apache Metron's layout), and the headers `link_type` and `wirelen` as decimal text, which is
//! all a consumer needs to decode or re-write the capture. `key="flow"` does not change the key:
//! it pins each flow (its Community ID) to one partition, so a flow's frames stay in order.
//!
//! [`RawFrames`] lends each record straight from the source's buffer and [`RawProducer`] hands it to
//! librdkafka (which copies it into its queue): no copy of our own per frame.

use std::time::Instant;

use rdkafka::message::{Header, OwnedHeaders};

use super::config::Config;
use super::error::{KafkaError, Result};
use super::key::{partition_for, KeySpec, TsUnit};
use super::produce::{finish, Control, ProduceOptions, ProduceReport, Progress};
use super::producer::{Outgoing, Producer};
use super::pump::{Frames, Reader, Sink};
use crate::decode::community_id::{community_id, LEN};
use crate::decode::{decode, Packet};
use crate::error::Error;
use crate::source::{PacketSource, Record};

/// Progress is reported every this many frames (and while the queue is full).
const PROGRESS_EVERY: u64 = 8192;

/// A capture's records as a [`Reader`]. A cut tail after at least one record ends the stream
/// with a warning (everything before it is sent); before any record it is an error.
pub struct RawFrames {
    source: Box<dyn PacketSource>,
    read: u64,
    warnings: Vec<String>,
    done: bool,
}

impl RawFrames {
    /// Reads the records of `source`.
    pub fn new(source: Box<dyn PacketSource>) -> Self {
        Self { source, read: 0, warnings: Vec::new(), done: false }
    }
}

impl Reader for RawFrames {
    type Unit = Frames;

    fn next_item(&mut self) -> crate::error::Result<Option<Record<'_>>> {
        if self.done {
            return Ok(None);
        }
        match self.source.next_record() {
            Ok(Some(r)) => {
                self.read += 1;
                Ok(Some(r))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e @ Error::Format { .. }) if self.read > 0 => {
                self.warnings.push(e.to_string());
                self.done = true;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn bytes_read(&self) -> u64 {
        self.source.bytes_read()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }
}

/// Sends frames as `raw` messages (see the module docs).
pub struct RawProducer {
    producer: Producer,
    partitions: i32,
    flow: bool,
    unit: TsUnit,
    packet: Packet,
    cid: [u8; LEN],
    rows: u64,
    progress: Progress,
    started: Instant,
}

impl RawProducer {
    /// Connects: checks the key, the configuration, the broker and the topic.
    pub fn new(config: Config, opts: &ProduceOptions) -> Result<Self> {
        if matches!(opts.key, KeySpec::Column(_)) {
            return Err(KafkaError::invalid(
                "format=\"raw\" keys every message by its timestamp; key= may only be \"timestamp\", \"flow\" or None",
            ));
        }
        let producer = Producer::new(config, &opts.topic)?;
        let partitions = producer.partitions(opts.connect_timeout)?;
        Ok(Self {
            producer,
            partitions,
            flow: opts.key == KeySpec::Flow,
            unit: opts.timestamp_unit,
            packet: Packet::default(),
            cid: [0; LEN],
            rows: 0,
            progress: Progress::default(),
            started: Instant::now(),
        })
    }

    fn refresh(&mut self) {
        let d = self.producer.deliveries();
        self.progress = Progress {
            rows: self.rows,
            messages: self.producer.sent,
            delivered: d.delivered.load(std::sync::atomic::Ordering::Relaxed),
            failed: d.failed.load(std::sync::atomic::Ordering::Relaxed),
            source_bytes: 0,
        };
    }
}

impl Sink<Frames> for RawProducer {
    fn send(&mut self, record: Record<'_>, control: &mut Control<'_>) -> Result<()> {
        let key = record.ts_ns.map(|t| self.unit.key(t));
        let partition = match (self.flow, record.link_type) {
            (true, Some(lt)) => {
                decode(lt, record.data, &mut self.packet);
                community_id(&self.packet, &mut self.cid).then(|| partition_for(&self.cid, self.partitions))
            }
            _ => None,
        };
        // Decimal text without a String per frame.
        let (mut lt_text, mut wl_text) = (itoa::Buffer::new(), itoa::Buffer::new());
        let headers = OwnedHeaders::new_with_capacity(2)
            .insert(Header { key: "link_type", value: record.link_type.map(|l| lt_text.format(l)) })
            .insert(Header { key: "wirelen", value: Some(wl_text.format(record.wirelen)) });
        let m = Outgoing { payload: record.data, key: key.as_ref().map(|k| &k[..]), partition, headers: Some(headers) };
        let snapshot = self.progress;
        self.producer.send(m, &mut || control(&snapshot))?;
        self.rows += 1;
        if self.rows % PROGRESS_EVERY == 0 {
            self.refresh();
            control(&self.progress)?;
        }
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress { rows: self.rows, ..self.progress }
    }

    fn finish(mut self, control: &mut Control<'_>, interrupted: bool) -> Result<ProduceReport> {
        self.refresh();
        finish(&self.producer, self.rows, self.started, None, control, self.progress, interrupted)
    }
}
