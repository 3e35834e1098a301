//! A consumer that hands out Arrow record batches and commits only what it handed out.
//!
//! Offsets are committed explicitly, never automatically: [`Consumer::commit`] commits the
//! offsets of messages already returned by [`Consumer::read_batch`], so a crash between reading
//! and processing re-delivers rather than loses (at-least-once). librdkafka's automatic offset
//! store is off for the same reason.
//!
//! In a group, partitions move between members; [`super::rebalance`] keeps the book of what this
//! member may still commit (never a partition it lost, never an offset lower than before).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;

use super::config::Config;
use super::encode::Format;
use super::error::{KafkaError, Result};
use super::headers::RawHeaders;
use super::key::TsUnit;
use super::messages::{MessageBatch, MessageRef};
use super::producer::partition_count;
use super::rebalance::{commit_now, lock, Book, GroupContext, RebalanceHook};
use super::times;
use crate::schema::SchemaOptions;

/// The consumer defaults pktstream layers under the user's configuration.
pub fn consumer_config(bootstrap_servers: &str, group_id: Option<&str>, user: &[(String, String)]) -> Config {
    let mut c = Config::layered(
        &[
            ("bootstrap.servers", bootstrap_servers),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            // Kafka's minimum; a new group gets its partitions sooner (Tansu waits half of it).
            ("session.timeout.ms", "6000"),
        ],
        user,
    );
    if let Some(g) = group_id {
        c.set_default("group.id", g);
    }
    c
}

/// A batch stops taking messages once it holds this many bytes (256 MiB), whatever `max_rows`
/// says: large messages then make smaller batches rather than one batch past memory or past the
/// 2 GiB a 32-bit-offset column holds.
pub const MAX_BATCH_BYTES: usize = 256 << 20;

/// pktstream's own consumer options.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// How message values decode into rows.
    pub format: Format,
    /// The value schema for `json` (packet schema when `None`); expected schema for `arrow`.
    pub schema: Option<arrow_schema::SchemaRef>,
    /// Packet columns for `raw`.
    pub packet: SchemaOptions,
    /// The unit of `raw` timestamp keys.
    pub timestamp_unit: TsUnit,
    /// Also return every header of each message, in a last column `_headers` (off by default;
    /// Spark's `includeHeaders`).
    pub headers: bool,
}

/// A Kafka consumer returning Arrow record batches.
pub struct Consumer {
    inner: BaseConsumer<GroupContext>,
    batch: MessageBatch,
    config: Config,
    /// Next offsets: of the batch being built, of batches returned (what `commit()` commits), and
    /// committed; shared with the rebalance callback, which forgets revoked partitions.
    book: Arc<Mutex<Book>>,
    hook: Option<Arc<dyn RebalanceHook>>,
    pending_error: Option<KafkaError>,
}

impl Consumer {
    /// Creates the client (not yet subscribed); fails on an invalid configuration or option.
    pub fn new(config: Config, opts: ConsumerOptions) -> Result<Self> {
        config.validate()?;
        let mut batch = MessageBatch::new(opts.format, opts.schema, &opts.packet, opts.timestamp_unit)?;
        if opts.headers {
            batch = batch.with_headers();
        }
        let book = Arc::new(Mutex::new(Book::default()));
        let inner = Self::create(&config, &book, None)?;
        Ok(Self { inner, batch, config, book, hook: None, pending_error: None })
    }

    fn create(
        config: &Config,
        book: &Arc<Mutex<Book>>,
        hook: Option<Arc<dyn RebalanceHook>>,
    ) -> Result<BaseConsumer<GroupContext>> {
        let context = GroupContext::new(Arc::clone(book));
        context.set_hook(hook);
        config.client_config().create_with_context(context).map_err(|e| KafkaError::from_rdkafka("", &e))
    }

    /// `e`, or the TLS/SASL failure that explains it when it is a timeout. The consumer's error
    /// events wait in its queues until polled; with no broker reachable nothing is assigned, so
    /// draining them here loses no message.
    fn explain(&self, e: KafkaError) -> KafkaError {
        if matches!(e, KafkaError::Timeout(_)) {
            self.inner.context().connection.drain(self.inner.client());
        }
        self.inner.context().connection.explain(e)
    }

    /// Callbacks run when partitions are revoked (with a last chance to commit) and assigned.
    pub fn set_rebalance_hook(&mut self, hook: Option<Arc<dyn RebalanceHook>>) {
        self.inner.context().set_hook(hook.clone());
        self.hook = hook;
    }

    /// The librdkafka configuration the consumer was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Joins the consumer group on `topics` (needs `group.id`). Checks that each topic exists.
    pub fn subscribe(&mut self, topics: &[String], timeout: Duration) -> Result<()> {
        if self.config.get("group.id").is_none() {
            return Err(KafkaError::invalid("subscribing needs a group_id"));
        }
        for t in topics {
            partition_count(self.inner.client(), t, self.config.servers(), timeout).map_err(|e| self.explain(e))?;
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.inner.subscribe(&names).map_err(|e| KafkaError::from_rdkafka("subscribe", &e))
    }

    /// Reads exactly the given partitions from the given offsets (-2: beginning, -1: end),
    /// without a group: a reader of one offset range (Spark's per-partition tasks).
    pub fn assign(&mut self, partitions: &[(String, i32, i64)]) -> Result<()> {
        self.ensure_group_id()?;
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in partitions {
            let offset = match *o {
                -2 => Offset::Beginning,
                -1 => Offset::End,
                o if o >= 0 => Offset::Offset(o),
                o => return Err(KafkaError::invalid(format!("offset {o} of {t} [{p}] is invalid"))),
            };
            tpl.add_partition_offset(t, *p, offset).map_err(|e| KafkaError::from_rdkafka("assign", &e))?;
        }
        self.inner.assign(&tpl).map_err(|e| KafkaError::from_rdkafka("assign", &e))
    }

    /// librdkafka wants a group.id even for plain assignment; this one never joins or commits.
    fn ensure_group_id(&mut self) -> Result<()> {
        if self.config.get("group.id").is_none() {
            self.config.set("group.id", &format!("pktstream-reader-{}", std::process::id()));
            self.inner = Self::create(&self.config, &self.book, self.hook.clone())?;
        }
        Ok(())
    }

    /// Reads every partition of `topics` from the beginning, without a group. Returns each
    /// partition's end offset (high watermark) at this moment.
    pub fn assign_all(&mut self, topics: &[String], timeout: Duration) -> Result<Vec<(String, i32, i64)>> {
        self.ensure_group_id()?;
        let mut tpl = TopicPartitionList::new();
        let mut ends = Vec::new();
        for t in topics {
            let n =
                partition_count(self.inner.client(), t, self.config.servers(), timeout).map_err(|e| self.explain(e))?;
            for p in 0..n {
                let (_, high) = self
                    .inner
                    .fetch_watermarks(t, p, Timeout::After(timeout))
                    .map_err(|e| KafkaError::from_rdkafka(&format!("end offset of {t} [{p}]"), &e))?;
                tpl.add_partition_offset(t, p, Offset::Beginning)
                    .map_err(|e| KafkaError::from_rdkafka("assign", &e))?;
                ends.push((t.clone(), p, high));
            }
        }
        self.inner.assign(&tpl).map_err(|e| KafkaError::from_rdkafka("assign", &e))?;
        Ok(ends)
    }

    /// Up to `max_rows` rows, waiting at most `timeout` for the first message and returning as
    /// soon as no more are immediately available. An empty batch means nothing arrived.
    /// `interrupted` is polled about ten times a second while waiting.
    pub fn read_batch(
        &mut self,
        max_rows: usize,
        timeout: Duration,
        interrupted: &mut dyn FnMut() -> Result<()>,
    ) -> Result<RecordBatch> {
        if let Some(e) = self.pending_error.take().or_else(|| lock(&self.book).hook_error.take()) {
            return Err(e);
        }
        let deadline = Instant::now() + timeout;
        while self.batch.rows() < max_rows.max(1) && self.batch.bytes() < MAX_BATCH_BYTES {
            let now = Instant::now();
            let wait = if self.batch.rows() > 0 {
                Duration::ZERO
            } else {
                deadline.saturating_duration_since(now).min(Duration::from_millis(100))
            };
            match self.inner.poll(Timeout::After(wait)) {
                Some(Ok(m)) => {
                    let mut all = Vec::new();
                    let headers = if self.batch.has_headers() {
                        RawHeaders::with_all(&m, &mut all)
                            .map_err(|_| KafkaError::OutOfMemory("the headers of one message".into()))
                    } else {
                        Ok(RawHeaders::of(&m))
                    };
                    let pushed = headers.and_then(|headers| {
                        self.batch.push(&MessageRef {
                            topic: m.topic(),
                            partition: m.partition(),
                            offset: m.offset(),
                            timestamp_ms: m.timestamp().to_millis(),
                            key: m.key(),
                            payload: m.payload(),
                            link_type: headers.link_type,
                            wirelen: headers.wirelen,
                            headers: self.batch.has_headers().then_some(all.as_slice()),
                        })
                    });
                    if let Err(err) = pushed {
                        // Out of memory: the message is not handed out (nor committed).
                        if self.batch.rows() == 0 {
                            return Err(err);
                        }
                        self.pending_error = Some(err);
                        break;
                    }
                    lock(&self.book).pending.raise(m.topic(), m.partition(), m.offset() + 1);
                }
                // `enable.partition.eof=true`: a partition's end was reached; return what is here.
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => {
                    let err = KafkaError::from_rdkafka("consume", &e);
                    if self.batch.rows() == 0 {
                        return Err(err);
                    }
                    // Hand out what was read first; the error comes with the next call.
                    self.pending_error = Some(err);
                    break;
                }
                None if self.batch.rows() > 0 || Instant::now() >= deadline => break,
                None => interrupted()?,
            }
        }
        let out = self.batch.finish()?;
        lock(&self.book).hand_out();
        Ok(out)
    }

    /// Commits the offsets of every message handed out so far (synchronously), for the partitions
    /// this member still holds: a partition revoked since was forgotten, and an offset at or below
    /// one this member committed before is left out.
    pub fn commit(&mut self) -> Result<()> {
        let wanted: Vec<(String, i32, i64)> =
            lock(&self.book).returned.iter().map(|(t, p, o)| (t.to_string(), p, o)).collect();
        self.commit_offsets(&wanted)
    }

    /// Commits explicit next offsets, for applications that make data durable in pieces (the
    /// archiver commits a partition only up to the last file it closed). Partitions not assigned
    /// to this consumer, and offsets that would not move forward, are left out.
    pub fn commit_offsets(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let owned = self.assignment()?;
        let offsets = lock(&self.book).forward_only(offsets, &|t, p| owned.iter().any(|(ot, op)| ot == t && *op == p));
        commit_now(&self.inner, &self.book, &offsets).map_err(|e| KafkaError::from_rdkafka("commit", &e))
    }

    /// Moves a partition's read position (the partition must be assigned).
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64, timeout: Duration) -> Result<()> {
        let o = match offset {
            -2 => Offset::Beginning,
            -1 => Offset::End,
            o => Offset::Offset(o),
        };
        self.inner
            .seek(topic, partition, o, Timeout::After(timeout))
            .map_err(|e| KafkaError::from_rdkafka(&format!("seek {topic} [{partition}]"), &e))
    }

    /// librdkafka's position of an assigned partition: the offset after the last message or
    /// control record (transaction marker) it passed, skipped aborted records and compacted gaps
    /// included. `None` before anything was read.
    pub fn position(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        let tpl = self.inner.position().map_err(|e| KafkaError::from_rdkafka("position", &e))?;
        Ok(tpl.find_partition(topic, partition).and_then(|e| match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }))
    }

    /// A partition's (low, high) watermarks: its earliest available offset and its end.
    pub fn watermarks(&self, topic: &str, partition: i32, timeout: Duration) -> Result<(i64, i64)> {
        self.inner
            .fetch_watermarks(topic, partition, Timeout::After(timeout))
            .map_err(|e| KafkaError::from_rdkafka(&format!("watermarks of {topic} [{partition}]"), &e))
    }

    /// Per (topic, partition, time in ms since the epoch): the earliest offset whose message
    /// timestamp is at or after the time, or `None` when no message is (see [`super::times`]).
    /// Answered by the partitions' leaders from their time index; needs no assignment or group.
    pub fn offsets_for_times(
        &self,
        timestamps: &[(String, i32, i64)],
        timeout: Duration,
    ) -> Result<Vec<(String, i32, Option<i64>)>> {
        if timestamps.is_empty() {
            return Ok(Vec::new());
        }
        let tpl = times::request(timestamps)?;
        let got = self
            .inner
            .offsets_for_times(tpl, Timeout::After(timeout))
            .map_err(|e| self.explain(KafkaError::from_rdkafka("offsets for times", &e)))?;
        times::answers(timestamps, &got)
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> Result<Vec<(String, i32)>> {
        let tpl = self.inner.assignment().map_err(|e| KafkaError::from_rdkafka("assignment", &e))?;
        Ok(tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect())
    }

    /// Next offset per (topic, partition) after what was handed out, for the partitions held.
    pub fn positions(&self) -> BTreeMap<(String, i32), i64> {
        lock(&self.book).returned.iter().map(|(t, p, o)| ((t.to_string(), p), o)).collect()
    }

    /// The highest offset this member committed per (topic, partition).
    pub fn committed_by_me(&self) -> BTreeMap<(String, i32), i64> {
        lock(&self.book).committed.iter().map(|(t, p, o)| ((t.to_string(), p), o)).collect()
    }

    /// (rebalances that revoked partitions, partitions revoked in all).
    pub fn revocations(&self) -> (u64, u64) {
        let b = lock(&self.book);
        (b.revocations, b.revoked_partitions)
    }

    /// Leaves the group (if any) and closes the client.
    pub fn close(&mut self) {
        self.inner.unsubscribe();
    }
}
