//! Producing record batches to a topic: options, progress, the report, and [`BatchProducer`].
//!
//! [`BatchProducer`] turns record batches into messages (`json`, `csv`, `arrow`);
//! [`super::raw::RawProducer`] sends a capture's frames as they are (`raw`). Both are sinks of the
//! one loop in [`super::pump()`], and check in with the caller's `control` callback once per batch
//! and while waiting on a full queue: that is where progress is reported and where Ctrl-C stops
//! the work. Stopping early still waits for what was queued, so the report says exactly what
//! reached the broker.

use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, UInt32Array};
use arrow_select::take::take_record_batch;

use super::batch_keys::BatchKeys;
use super::config::Config;
use super::encode::{check_encodable, csv_options, ipc_message, projection, utc_as_offset, CsvRows, Format, JsonInput};
use super::error::{KafkaError, Result};
use super::key::{partition_for, KeySpec, TsUnit};
use super::producer::{Outgoing, Producer};
use super::pump::{Batches, Sink};

/// pktstream's own producer options (librdkafka's are in the [`Config`]).
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    /// The topic to produce to.
    pub topic: String,
    /// How rows are encoded into message values.
    pub format: Format,
    /// What each message's key is (and so which partition it goes to).
    pub key: KeySpec,
    /// Columns to encode (all when `None`); key columns need not be among them.
    pub columns: Option<Vec<String>>,
    /// The unit of `timestamp` keys (default microseconds).
    pub timestamp_unit: TsUnit,
    /// Rows per message for the `arrow` format.
    pub rows_per_message: usize,
    /// The field delimiter for `csv` (default `,`).
    pub csv_delimiter: u8,
    /// How long to wait for the broker's first answer.
    pub connect_timeout: Duration,
}

impl ProduceOptions {
    /// Options for `topic` in `format`, with the defaults: no key, all columns, 10 000 rows per
    /// `arrow` message, 10 s connect timeout.
    pub fn new(topic: &str, format: Format) -> Self {
        Self {
            topic: topic.to_string(),
            format,
            key: KeySpec::None,
            columns: None,
            timestamp_unit: TsUnit::Micros,
            rows_per_message: 10_000,
            csv_delimiter: b',',
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The producer defaults pktstream layers under the user's configuration.
pub fn producer_config(bootstrap_servers: &str, format: Format, user: &[(String, String)]) -> Config {
    let compression = if format == Format::Arrow { "lz4" } else { "none" };
    Config::layered(
        &[
            ("bootstrap.servers", bootstrap_servers),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("partitioner", "murmur2_random"),
            ("compression.type", compression),
            ("linger.ms", "20"),
            ("queue.buffering.max.messages", "1000000"),
            ("batch.num.messages", "100000"),
        ],
        user,
    )
}

/// librdkafka's default `message.max.bytes`, just under Apache Kafka's broker default (1048588).
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;
/// Room for the key, headers and record overhead that librdkafka counts against the limit.
const MESSAGE_OVERHEAD: usize = 1024;

/// The largest `arrow` message value to send: `message.max.bytes` (the user's, else librdkafka's
/// default) less the overhead. A stock broker refuses larger record batches, and an arrow message of
/// `rows_per_message` rows can be far larger than 1 MB when the packets are wide.
fn arrow_value_limit(config: &Config) -> usize {
    let max = config.get("message.max.bytes").and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    max.saturating_sub(MESSAGE_OVERHEAD).max(1)
}

/// Encodes `part[offset..offset + rows]` as one IPC message into `buf`, shrinking `rows` until the
/// message fits in `limit` bytes (a single row is sent whatever its size: librdkafka then reports
/// it as too large). Returns the rows encoded.
fn fit_ipc_message(
    part: &RecordBatch,
    offset: usize,
    mut rows: usize,
    limit: usize,
    buf: &mut Vec<u8>,
) -> Result<usize> {
    loop {
        buf.clear();
        ipc_message(&part.slice(offset, rows), buf)?;
        if buf.len() <= limit || rows == 1 {
            return Ok(rows);
        }
        // Scale by the measured size, with a margin: IPC size is close to linear in rows.
        let scaled = (rows as f64 * limit as f64 / buf.len() as f64 * 0.9) as usize;
        rows = scaled.clamp(1, rows - 1);
    }
}

/// Progress so far, handed to the control callback.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Rows read so far.
    pub rows: u64,
    /// Messages handed to librdkafka so far.
    pub messages: u64,
    /// Messages the broker acknowledged so far.
    pub delivered: u64,
    /// Messages whose delivery failed so far.
    pub failed: u64,
    /// Bytes of the input file read (capture files only).
    pub source_bytes: u64,
}

/// The outcome of a produce call.
#[derive(Debug, Clone, Default)]
pub struct ProduceReport {
    /// Rows read.
    pub rows: u64,
    /// Messages handed to librdkafka.
    pub messages: u64,
    /// Messages the broker acknowledged.
    pub delivered: u64,
    /// Messages whose delivery failed.
    pub failed: u64,
    /// Key and value bytes handed to librdkafka.
    pub bytes: u64,
    /// Wall time of the whole call, in seconds, final wait included.
    pub seconds: f64,
    /// Time until the last message was encoded and handed to librdkafka (before the final wait).
    pub queued_seconds: f64,
    /// The first delivery errors, verbatim.
    pub errors: Vec<String>,
    /// librdkafka's name for the first delivery error (`"MSG_SIZE_TOO_LARGE"`), if any failed.
    pub error_code: Option<String>,
    /// Stopped early by the control callback (Ctrl-C).
    pub interrupted: bool,
    /// Problems with the input that ended it early (a cut capture file).
    pub warnings: Vec<String>,
    /// The topic's partition count (decoded formats; `None` for `raw`).
    pub partitions: Option<i32>,
}

/// The control callback: called with progress; an error stops the work.
pub type Control<'a> = dyn FnMut(&Progress) -> Result<()> + 'a;

/// The columns a capture reader must produce to encode `columns` and compute `key`.
pub fn reader_columns(columns: Option<&[String]>, key: &KeySpec) -> Option<Vec<String>> {
    let mut cols = columns?.to_vec();
    let extra = match key {
        KeySpec::Flow => Some("community_id"),
        KeySpec::Timestamp => Some("ts"),
        KeySpec::Column(c) => Some(c.as_str()),
        KeySpec::None => None,
    };
    if let Some(e) = extra {
        if !cols.iter().any(|c| c == e) {
            cols.push(e.to_string());
        }
    }
    Some(cols)
}

/// Sends record batches as `json`, `csv` or `arrow` messages.
pub struct BatchProducer {
    producer: Producer,
    opts: ProduceOptions,
    partitions: i32,
    keys: BatchKeys,
    buf: Vec<u8>,
    rows: u64,
    started: Instant,
    checked: bool,
    /// The largest `arrow` message value (see [`arrow_value_limit`]).
    arrow_limit: usize,
    /// Rows per `arrow` message: `rows_per_message`, or fewer once a message had to shrink to fit.
    arrow_rows: usize,
}

impl BatchProducer {
    /// Connects: checks the configuration, the broker and the topic before anything is read.
    pub fn new(config: Config, opts: ProduceOptions) -> Result<Self> {
        if opts.format == Format::Raw {
            return Err(KafkaError::invalid(
                "format=\"raw\" sends captured frames and needs a capture file: use produce_pcap (or produce_live)",
            ));
        }
        if opts.format == Format::Binary {
            return Err(KafkaError::invalid(
                "format=\"binary\" is for consuming undecoded values; produce json, csv or arrow",
            ));
        }
        if opts.rows_per_message == 0 {
            return Err(KafkaError::invalid("rows_per_message must be at least 1"));
        }
        let arrow_limit = arrow_value_limit(&config);
        let arrow_rows = opts.rows_per_message;
        let producer = Producer::new(config, &opts.topic)?;
        let partitions = producer.partitions(opts.connect_timeout)?;
        Ok(Self {
            producer,
            arrow_limit,
            arrow_rows,
            opts,
            partitions,
            keys: BatchKeys::default(),
            buf: Vec::with_capacity(1 << 16),
            rows: 0,
            started: Instant::now(),
            checked: false,
        })
    }

    /// The topic's partition count, as metadata reported it.
    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// The counters so far.
    pub fn progress(&self) -> Progress {
        let d = self.producer.deliveries();
        Progress {
            rows: self.rows,
            messages: self.producer.sent,
            delivered: d.delivered.load(std::sync::atomic::Ordering::Relaxed),
            failed: d.failed.load(std::sync::atomic::Ordering::Relaxed),
            source_bytes: 0,
        }
    }

    /// Encodes and queues every row of `batch`.
    pub fn send(&mut self, batch: &RecordBatch, control: &mut Control<'_>) -> Result<()> {
        let cols = projection(batch.schema_ref(), self.opts.columns.as_deref())?;
        let values = batch.project(&cols).map_err(crate::error::Error::from)?;
        if !self.checked {
            check_encodable(&values, self.opts.format)?;
            self.checked = true;
        }
        self.keys.compute(&self.opts.key, batch, self.opts.timestamp_unit)?;
        let progress = self.progress();
        let mut interrupted = || control(&progress);
        let Self { producer, keys, buf, opts, partitions, arrow_limit, arrow_rows, .. } = &mut *self;
        match opts.format {
            Format::Json => {
                let input = JsonInput::new(&values);
                let mut rows = input.rows()?;
                for i in 0..values.num_rows() {
                    buf.clear();
                    rows.encode(i, buf);
                    let m = Outgoing { payload: buf, key: keys.get(i), partition: None, headers: None };
                    producer.send(m, &mut interrupted)?;
                }
            }
            Format::Csv => {
                let options = csv_options();
                let values = utc_as_offset(&values);
                let mut rows = CsvRows::new(&values, &options, opts.csv_delimiter)?;
                for i in 0..values.num_rows() {
                    buf.clear();
                    rows.encode(i, buf);
                    let m = Outgoing { payload: buf, key: keys.get(i), partition: None, headers: None };
                    producer.send(m, &mut interrupted)?;
                }
            }
            Format::Arrow => {
                for (partition, part) in split_by_partition(&values, keys, *partitions, &opts.key)? {
                    let mut offset = 0;
                    while offset < part.num_rows() {
                        let want = (*arrow_rows).min(part.num_rows() - offset);
                        let len = fit_ipc_message(&part, offset, want, *arrow_limit, buf)?;
                        if len < want {
                            *arrow_rows = len; // later messages start from what fitted
                        }
                        producer
                            .send(Outgoing { payload: buf, key: None, partition, headers: None }, &mut interrupted)?;
                        offset += len;
                    }
                }
            }
            Format::Raw | Format::Binary => unreachable!("rejected in new()"),
        }
        self.rows += batch.num_rows() as u64;
        control(&self.progress())
    }

    /// Waits for every delivery report and returns the report. With `interrupted`, the wait is
    /// still complete: the report then says what was delivered before the stop.
    pub fn finish(self, control: &mut Control<'_>, interrupted: bool) -> Result<ProduceReport> {
        let progress = self.progress();
        finish(&self.producer, self.rows, self.started, Some(self.partitions), control, progress, interrupted)
    }
}

impl Sink<Batches> for BatchProducer {
    fn send(&mut self, batch: RecordBatch, control: &mut Control<'_>) -> Result<()> {
        BatchProducer::send(self, &batch, control)
    }

    fn progress(&self) -> Progress {
        BatchProducer::progress(self)
    }

    fn finish(self, control: &mut Control<'_>, interrupted: bool) -> Result<ProduceReport> {
        BatchProducer::finish(self, control, interrupted)
    }
}

/// Waits for every delivery report of `producer` (calling `control` while waiting) and reports.
pub(super) fn finish(
    producer: &Producer,
    rows: u64,
    started: Instant,
    partitions: Option<i32>,
    control: &mut Control<'_>,
    mut progress: Progress,
    interrupted: bool,
) -> Result<ProduceReport> {
    let queued_seconds = started.elapsed().as_secs_f64();
    let mut stop_waiting = false;
    let flushed = producer.flush(&mut || {
        let d = producer.deliveries();
        progress.delivered = d.delivered.load(std::sync::atomic::Ordering::Relaxed);
        progress.failed = d.failed.load(std::sync::atomic::Ordering::Relaxed);
        // A second Ctrl-C during the final wait stops waiting too.
        if control(&progress).is_err() {
            stop_waiting = true;
            return Err(KafkaError::Core(crate::error::Error::Interrupted));
        }
        Ok(())
    });
    match flushed {
        Ok(()) => {}
        Err(_) if stop_waiting => {}
        Err(e) => return Err(e),
    }
    let d = producer.deliveries();
    Ok(ProduceReport {
        rows,
        messages: producer.sent,
        delivered: d.delivered.load(std::sync::atomic::Ordering::Relaxed),
        failed: d.failed.load(std::sync::atomic::Ordering::Relaxed),
        bytes: producer.bytes,
        seconds: started.elapsed().as_secs_f64(),
        queued_seconds,
        errors: d.errors(),
        error_code: d.first_code(),
        interrupted: interrupted || stop_waiting,
        warnings: Vec::new(),
        partitions,
    })
}

/// Rows grouped by target partition (in row order within each group); `None` when unkeyed.
fn split_by_partition(
    batch: &RecordBatch,
    keys: &BatchKeys,
    partitions: i32,
    spec: &KeySpec,
) -> Result<Vec<(Option<i32>, RecordBatch)>> {
    if *spec == KeySpec::None || partitions <= 1 {
        let p = if *spec == KeySpec::None { None } else { Some(0) };
        return Ok(vec![(p, batch.clone())]);
    }
    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); partitions as usize];
    let mut unkeyed: Vec<u32> = Vec::new();
    for i in 0..batch.num_rows() {
        match keys.get(i) {
            Some(k) => groups[partition_for(k, partitions) as usize].push(i as u32),
            None => unkeyed.push(i as u32),
        }
    }
    let mut out = Vec::new();
    let take = |idx: Vec<u32>| take_record_batch(batch, &UInt32Array::from(idx)).map_err(crate::error::Error::from);
    for (p, idx) in groups.into_iter().enumerate() {
        if !idx.is_empty() {
            out.push((Some(p as i32), take(idx)?));
        }
    }
    if !unkeyed.is_empty() {
        out.push((None, take(unkeyed)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, BinaryArray};

    use super::*;

    #[test]
    fn arrow_messages_shrink_to_fit_the_limit_and_lose_no_row() {
        // 2,000 rows of 1 KiB each: ~2 MB in one message, over a 100 kB limit.
        let values: Vec<Vec<u8>> = (0..2000u32).map(|i| vec![(i % 251) as u8; 1024]).collect();
        let col: ArrayRef = Arc::new(BinaryArray::from_iter_values(values.iter()));
        let batch = RecordBatch::try_from_iter([("frame", col)]).unwrap();
        let (limit, mut buf, mut offset, mut sizes) = (100_000, Vec::new(), 0, Vec::new());
        while offset < batch.num_rows() {
            let rows = fit_ipc_message(&batch, offset, batch.num_rows() - offset, limit, &mut buf).unwrap();
            assert!(buf.len() <= limit, "{} bytes for {rows} rows", buf.len());
            sizes.push(rows);
            offset += rows;
        }
        assert_eq!(sizes.iter().sum::<usize>(), 2000);
        assert!(sizes[0] > 50, "shrank too far: {sizes:?}");
        // One row larger than the limit still goes out alone (librdkafka reports it as too large).
        assert_eq!(fit_ipc_message(&batch, 0, 10, 100, &mut buf).unwrap(), 1);
    }

    #[test]
    fn the_limit_follows_message_max_bytes() {
        let c = producer_config("127.0.0.1:9092", Format::Arrow, &[]);
        assert_eq!(arrow_value_limit(&c), DEFAULT_MAX_MESSAGE_BYTES - MESSAGE_OVERHEAD);
        let c = producer_config("127.0.0.1:9092", Format::Arrow, &[("message.max.bytes".into(), "8388608".into())]);
        assert_eq!(arrow_value_limit(&c), 8_388_608 - MESSAGE_OVERHEAD);
    }
}
