//! The archiver's loop: consume a `raw` topic, roll files per partition, publish, then commit.
//!
//! Delivery is at-least-once made exactly-once on disk: offsets are committed only for files
//! already published (after each consumed batch, one commit for every file closed in it), and a
//! restarted archiver re-reads from the last commit and rewrites the same files under the same
//! names ([`super::names`]). Stale part files of dead processes are removed at start.
//!
//! Rebalances go through the consumer's [`RebalanceHook`]: on revoke, the partitions' open files
//! are published and their offsets committed before the partitions go (the next owner resumes
//! right after them); rows of a revoked partition still in the batch being processed are left to
//! the next owner. The hook runs inside `poll()`, between batches, so it shares the roller with the
//! loop through a mutex that the loop never holds while reading.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType, UInt16Type, UInt32Type};
use arrow_array::{Array, RecordBatch};

use super::rolling::{ArchiveReport, Message, RollOptions, Rolling, Target};
use crate::error::Error;
use crate::kafka::rebalance::{lock, HookCommit, RebalanceHook};
use crate::kafka::{Consumer, KafkaError, TsUnit};

/// Messages read per batch at most.
const BATCH_ROWS: usize = 65_536;

/// How long a member may wait to be assigned partitions before an empty poll counts as idle.
const JOIN_GRACE: Duration = Duration::from_secs(60);

/// Why an archive run failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The consumer failed (connection, commit, configuration).
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// Writing, publishing or cleaning files failed.
    #[error("archive {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The consumed batch does not have the `binary` format's columns.
    #[error("unexpected consumer batch: {0}")]
    Batch(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> ArchiveError {
    move |source| ArchiveError::Io { what, source }
}

/// The options of one run.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// The `raw` topic.
    pub topic: String,
    /// How files roll.
    pub roll: RollOptions,
    /// The unit of the timestamp keys.
    pub unit: TsUnit,
    /// Stop after this long without a message (once partitions are assigned).
    pub idle_timeout: Option<Duration>,
    /// Stop after this many packets.
    pub max_packets: Option<u64>,
}

struct Shared {
    rolling: Rolling,
    target: Box<dyn Target>,
    error: Option<std::io::Error>,
}

struct Hook(Arc<Mutex<Shared>>);

impl RebalanceHook for Hook {
    fn revoking(&self, partitions: &[(String, i32)]) -> HookCommit {
        let mut s = lock(&self.0);
        let topic = s.rolling.topic().to_string();
        let mine = partitions.iter().filter(|(t, _)| *t == topic).map(|(_, p)| *p);
        if let Err(e) = s.rolling.revoking(mine) {
            s.error.get_or_insert(e);
        }
        let offsets = s.rolling.take_commits();
        s.rolling.committed(&offsets);
        HookCommit { returned: false, offsets }
    }

    fn assigned(&self, partitions: &[(String, i32)]) {
        let mut s = lock(&self.0);
        let topic = s.rolling.topic().to_string();
        s.rolling.assigned(partitions.iter().filter(|(t, _)| *t == topic).map(|(_, p)| *p));
    }
}

/// Archives `opts.topic` with `consumer` (a `binary`-format consumer with a group, not yet
/// subscribed) into `target` until idle, `max_packets`, or `interrupted` fails (Ctrl-C: the files
/// are then closed and committed and the report says `interrupted`). `progress` sees the report
/// after every batch; an error from it stops the run like Ctrl-C.
pub fn run(
    consumer: &mut Consumer,
    mut target: Box<dyn Target>,
    opts: &ArchiveOptions,
    progress: &mut dyn FnMut(&ArchiveReport) -> crate::kafka::Result<()>,
    interrupted: &mut dyn FnMut() -> crate::kafka::Result<()>,
) -> Result<ArchiveReport, ArchiveError> {
    let started = Instant::now();
    target.clean_parts(&format!("{}-", opts.topic)).map_err(io("cleaning part files"))?;
    let shared = Arc::new(Mutex::new(Shared { rolling: Rolling::new(&opts.topic, opts.roll), target, error: None }));
    consumer.set_rebalance_hook(Some(Arc::new(Hook(Arc::clone(&shared)))));
    let result = consume(consumer, &shared, opts, started, progress, interrupted);
    // Whatever happened, publish what is open and commit it (best effort after a failure).
    let closed = {
        let mut s = lock(&shared);
        let closed = s.rolling.close_all().map_err(io("publishing a file"));
        (closed, s.rolling.take_commits())
    };
    let committed = consumer.commit_offsets(&closed.1).map_err(ArchiveError::from);
    consumer.close();
    consumer.set_rebalance_hook(None);
    let mut s = lock(&shared);
    s.rolling.committed(&closed.1);
    let mut report = std::mem::take(&mut s.rolling.report);
    let stopped = result?;
    closed.0?;
    committed?;
    report.interrupted = stopped;
    Ok(report)
}

/// The loop; `Ok(true)` when interrupted.
fn consume(
    consumer: &mut Consumer,
    shared: &Mutex<Shared>,
    opts: &ArchiveOptions,
    started: Instant,
    progress: &mut dyn FnMut(&ArchiveReport) -> crate::kafka::Result<()>,
    interrupted: &mut dyn FnMut() -> crate::kafka::Result<()>,
) -> Result<bool, ArchiveError> {
    consumer.subscribe(std::slice::from_ref(&opts.topic), Duration::from_secs(10))?;
    let mut idle_since = Instant::now();
    loop {
        let done = lock(shared).rolling.report.packets;
        if opts.max_packets.is_some_and(|m| done >= m) {
            return Ok(false);
        }
        let want = opts.max_packets.map_or(BATCH_ROWS, |m| BATCH_ROWS.min((m - done) as usize));
        let batch = match consumer.read_batch(want, Duration::from_secs(1), interrupted) {
            Ok(b) => b,
            Err(KafkaError::Core(Error::Interrupted)) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        if let Some(e) = lock(shared).error.take() {
            return Err(ArchiveError::Io { what: "publishing a revoked partition's file", source: e });
        }
        if batch.num_rows() == 0 {
            if consumer.assignment()?.is_empty() && started.elapsed() < JOIN_GRACE {
                idle_since = Instant::now(); // still joining the group: not idle yet
            } else if opts.idle_timeout.is_some_and(|t| idle_since.elapsed() >= t) {
                return Ok(false);
            }
            continue;
        }
        idle_since = Instant::now();
        let commits = {
            let mut guard = lock(shared);
            let s = &mut *guard;
            write_batch(&mut s.rolling, s.target.as_mut(), &batch, opts.unit)?;
            s.rolling.publish().map_err(io("publishing a file"))?;
            s.rolling.take_commits()
        };
        consumer.commit_offsets(&commits)?;
        let mut s = lock(shared);
        s.rolling.committed(&commits);
        match progress(&s.rolling.report) {
            Ok(()) => {}
            Err(KafkaError::Core(Error::Interrupted)) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Appends a consumed `binary` batch to the partitions' files.
pub fn write_batch(
    rolling: &mut Rolling,
    target: &mut dyn Target,
    batch: &RecordBatch,
    unit: TsUnit,
) -> Result<(), ArchiveError> {
    let col = |name: &str| batch.column_by_name(name).ok_or_else(|| ArchiveError::Batch(format!("no `{name}` column")));
    let partitions = col("_partition")?.as_primitive_opt::<Int32Type>().ok_or_else(|| wrong("_partition"))?;
    let offsets = col("_offset")?.as_primitive_opt::<Int64Type>().ok_or_else(|| wrong("_offset"))?;
    let times = col("_timestamp")?.as_primitive_opt::<TimestampMillisecondType>().ok_or_else(|| wrong("_timestamp"))?;
    let keys = col("_key")?.as_binary_opt::<i32>().ok_or_else(|| wrong("_key"))?;
    let values = col("value")?.as_binary_opt::<i32>().ok_or_else(|| wrong("value"))?;
    let links = col("link_type")?.as_primitive_opt::<UInt16Type>().ok_or_else(|| wrong("link_type"))?;
    let wirelens = col("wirelen")?.as_primitive_opt::<UInt32Type>().ok_or_else(|| wrong("wirelen"))?;
    for i in 0..batch.num_rows() {
        let m = Message {
            partition: partitions.value(i),
            offset: offsets.value(i),
            key_ts_ns: keys.is_valid(i).then(|| unit.from_key(keys.value(i))).flatten(),
            kafka_ms: times.is_valid(i).then(|| times.value(i)),
            frame: if values.is_valid(i) { values.value(i) } else { &[] },
            wirelen: wirelens.is_valid(i).then(|| wirelens.value(i)),
            link_type: links.is_valid(i).then(|| links.value(i)),
        };
        rolling.write(target, &m).map_err(io("writing a file"))?;
    }
    Ok(())
}

fn wrong(name: &str) -> ArchiveError {
    ArchiveError::Batch(format!("`{name}` has an unexpected type"))
}
