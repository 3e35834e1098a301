//! The Kafka loop around the [`Pipeline`] state machine: read, release, deliver, commit.
//!
//! One consumer (the group's member) and one producer live for the whole run. After every read
//! the held events the watermark allows are pushed, closed windows' pairs are produced as JSON
//! (keyed by the group key, so a group's pairs share a partition and keep their order) and
//! *flushed*: the loop waits for the broker's acknowledgements before it commits, so an offset is
//! committed only once every window its events belong to was delivered. A failed delivery ends the
//! run before any further commit.
//!
//! Stops: `max_events` messages read (open windows are not emitted: their events stay
//! uncommitted and the next run reads them again), `idle_timeout` without input (counted from the
//! group's assignment; the input is then taken as finished: every window is closed, delivered and
//! committed), or the caller's `interrupted` / `progress` returning an error (Ctrl-C; nothing is
//! committed after it).
//!
//! Rebalances arrive through the consumer's [`RebalanceHook`] while it polls; they are applied to
//! the state after the read that saw them and before its rows are taken (see
//! [`super::state`] for what a revoke forgets).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::events::EventSpec;
use super::state::{PairSink, Pipeline};
use super::{PipelineError, Report, Result};
use crate::distance::{LargeGroupInfo, PairOptions, WindowedPairs};
use crate::kafka::batch_keys::BatchKeys;
use crate::kafka::encode::JsonInput;
use crate::kafka::producer::{Outgoing, Producer};
use crate::kafka::rebalance::{lock, HookCommit, RebalanceHook};
use crate::kafka::{Config, Consumer, ConsumerOptions, Format, KeySpec, TsUnit};
use crate::schema::SchemaOptions;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Input topics.
    pub in_topics: Vec<String>,
    /// Output topic (must exist).
    pub out_topic: String,
    /// The consumer's librdkafka configuration (with `group.id`).
    pub consumer: Config,
    /// The producer's librdkafka configuration.
    pub producer: Config,
    /// The JSON value schema of the input.
    pub schema: SchemaRef,
    /// The event columns and normalization.
    pub spec: EventSpec,
    /// Tumbling window, ns.
    pub window: i64,
    /// Allowed lateness, ns.
    pub allowed_lateness: i64,
    /// Pair options (metric, `top_k`, `max_distance`, large groups).
    pub pairs: PairOptions,
    /// Stop after reading this many messages.
    pub max_events: Option<u64>,
    /// Stop (closing every window) after this long without input.
    pub idle_timeout: Option<Duration>,
    /// Seconds without input after which a partition stops holding the watermark back.
    pub idle_partition_timeout: f64,
    /// Most messages per read (at least one is read).
    pub batch_size: usize,
    /// How long the idle wait waits for a partition assignment before it starts anyway.
    pub assignment_wait: Duration,
    /// How long to wait for the broker when subscribing and connecting the producer.
    pub connect_timeout: Duration,
}

/// The caller's hooks: Ctrl-C and progress.
pub trait Control {
    /// Polled about every 100 ms while waiting; an error stops the run.
    fn interrupted(&mut self) -> crate::kafka::Result<()>;
    /// Called after every read with the running report and the groups over `max_group_events`
    /// of the windows closed since the last call; an error stops the run.
    fn progress(&mut self, report: &Report, large: &[LargeGroupInfo]) -> crate::kafka::Result<()>;
}

/// A rebalance event: `(revoked (else assigned), partitions)`.
type RebalanceEvent = (bool, Vec<(String, i32)>);

/// Rebalance events seen by the consumer while it polled, in order.
#[derive(Default)]
struct Rebalances(Mutex<Vec<RebalanceEvent>>);

impl RebalanceHook for Rebalances {
    fn revoking(&self, partitions: &[(String, i32)]) -> HookCommit {
        // Everything safe was committed after the last delivery; nothing new is safe since.
        lock(&self.0).push((true, partitions.to_vec()));
        HookCommit::default()
    }

    fn assigned(&self, partitions: &[(String, i32)]) {
        lock(&self.0).push((false, partitions.to_vec()));
    }
}

/// Produces output rows as JSON messages keyed by `key`, and waits for their delivery.
pub struct KafkaSink {
    producer: Producer,
    keys: BatchKeys,
    key: KeySpec,
    buf: Vec<u8>,
}

impl KafkaSink {
    /// Connects (checks the configuration, the broker and that the topic exists).
    pub fn new(config: Config, topic: &str, timeout: Duration) -> Result<Self> {
        let producer = Producer::new(config, topic)?;
        producer.partitions(timeout)?;
        Ok(Self { producer, keys: BatchKeys::default(), key: KeySpec::Column("key".into()), buf: Vec::new() })
    }
}

impl PairSink for KafkaSink {
    fn deliver(
        &mut self,
        rows: &[RecordBatch],
        interrupted: &mut dyn FnMut() -> crate::kafka::Result<()>,
    ) -> Result<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let d = Arc::clone(self.producer.deliveries());
        let (delivered, failed, sent) = (d.delivered.load(Relaxed), d.failed.load(Relaxed), self.producer.sent);
        for batch in rows {
            self.keys.compute(&self.key, batch, TsUnit::Micros)?;
            let input = JsonInput::new(batch);
            let mut json = input.rows()?;
            for i in 0..batch.num_rows() {
                self.buf.clear();
                json.encode(i, &mut self.buf);
                let m = Outgoing { payload: &self.buf, key: self.keys.get(i), partition: None, headers: None };
                self.producer.send(m, interrupted)?;
            }
        }
        self.producer.flush(interrupted)?;
        let failed = d.failed.load(Relaxed) - failed;
        if failed > 0 {
            let errors = d.errors();
            return Err(PipelineError::Delivery {
                failed,
                messages: self.producer.sent - sent,
                first: errors.first().cloned().unwrap_or_else(|| "unknown error".into()),
                code: d.first_code().unwrap_or_else(|| "FAIL".into()),
            });
        }
        Ok(d.delivered.load(Relaxed) - delivered)
    }
}

/// Runs the pipeline until a stop (see the module docs). The report is returned in any case,
/// with the error that ended the run, if one did.
pub fn run(cfg: PipelineConfig, control: &mut dyn Control) -> (Report, Result<()>) {
    let started = Instant::now();
    let mut report = Report::default();
    let outcome = run_inner(&cfg, control, started, &mut report);
    if let Err(PipelineError::Kafka(crate::kafka::KafkaError::Core(crate::error::Error::Interrupted))) = &outcome {
        report.stopped = "interrupted";
    }
    report.seconds = started.elapsed().as_secs_f64();
    (report, outcome)
}

fn run_inner(cfg: &PipelineConfig, control: &mut dyn Control, started: Instant, out: &mut Report) -> Result<()> {
    let d = cfg.spec.features.len();
    let windowed = WindowedPairs::new(cfg.window, cfg.allowed_lateness, d, cfg.pairs, 1 << 20)?;
    let mut state = Pipeline::new(windowed, cfg.spec.clone(), cfg.window, cfg.idle_partition_timeout);
    let opts = ConsumerOptions {
        format: Format::Json,
        schema: Some(cfg.schema.clone()),
        packet: SchemaOptions::default(),
        timestamp_unit: TsUnit::Micros,
        headers: false,
    };
    let mut consumer = Consumer::new(cfg.consumer.clone(), opts)?;
    let rebalances = Arc::new(Rebalances::default());
    consumer.set_rebalance_hook(Some(rebalances.clone()));
    let result = consumer
        .subscribe(&cfg.in_topics, cfg.connect_timeout)
        .map_err(PipelineError::from)
        .and_then(|()| run_loop(cfg, control, started, &mut consumer, &mut state, &rebalances));
    // Whatever stopped the run, the counters stand (nothing is committed after an error).
    *out = state.report.clone();
    consumer.close();
    result
}

fn run_loop(
    cfg: &PipelineConfig,
    control: &mut dyn Control,
    started: Instant,
    consumer: &mut Consumer,
    state: &mut Pipeline,
    rebalances: &Rebalances,
) -> Result<()> {
    let mut sink = KafkaSink::new(cfg.producer.clone(), &cfg.out_topic, cfg.connect_timeout)?;
    let read_timeout =
        cfg.idle_timeout.map_or(Duration::from_secs(1), |t| t.clamp(Duration::from_millis(50), Duration::from_secs(1)));
    let secs = |t: Instant| t.duration_since(started).as_secs_f64();
    let mut last_input = Instant::now();
    let mut first_input: Option<Instant> = None;
    let mut assigned = false;
    loop {
        let events = state.report.events;
        if cfg.max_events.is_some_and(|m| events >= m) {
            state.report.stopped = "max_events";
            break;
        }
        let want = cfg.max_events.map_or(cfg.batch_size, |m| cfg.batch_size.min((m - events) as usize)).max(1);
        let batch = consumer.read_batch(want, read_timeout, &mut || control.interrupted())?;
        for (revoked, parts) in std::mem::take(&mut *lock(&rebalances.0)) {
            if revoked {
                state.revoke(&parts)?;
            }
        }
        let now = Instant::now();
        if batch.num_rows() > 0 {
            last_input = now;
            first_input.get_or_insert(now);
            state.ingest(&batch, secs(now))?;
        } else {
            if !assigned {
                assigned = !consumer.assignment()?.is_empty();
                if assigned {
                    last_input = now;
                }
            }
            let waited = assigned || now.duration_since(started) >= cfg.assignment_wait;
            if cfg.idle_timeout.is_some_and(|t| waited && now.duration_since(last_input) >= t) {
                state.report.stopped = "idle";
                break;
            }
        }
        let delivered = state.report.delivered;
        let assignment = consumer.assignment()?;
        state.release(secs(now), &assignment, false, &mut sink, &mut || control.interrupted())?;
        commit(consumer, state, &assignment)?;
        if let Some(first) = first_input {
            if batch.num_rows() > 0 || state.report.delivered > delivered {
                state.report.active_seconds = first.elapsed().as_secs_f64();
            }
        }
        state.report.seconds = started.elapsed().as_secs_f64();
        let large = state.take_large_groups();
        control.progress(&state.report, &large)?;
    }
    if state.report.stopped == "idle" {
        let flushing = Instant::now();
        state.flush(secs(flushing), &mut sink, &mut || control.interrupted())?;
        let assignment = consumer.assignment()?;
        commit(consumer, state, &assignment)?;
        if first_input.is_some() {
            state.report.active_seconds += flushing.elapsed().as_secs_f64();
        }
        let large = state.take_large_groups();
        if !large.is_empty() {
            control.progress(&state.report, &large)?;
        }
    }
    Ok(())
}

/// Commits the safe offsets that moved (only after the deliveries before it returned).
fn commit(consumer: &mut Consumer, state: &mut Pipeline, assignment: &[(String, i32)]) -> Result<()> {
    let positions: Vec<(String, i32, i64)> = consumer.positions().into_iter().map(|((t, p), o)| (t, p, o)).collect();
    let moved = state.commit_plan(&positions, assignment);
    if moved.is_empty() {
        return Ok(());
    }
    consumer.commit_offsets(&moved)?;
    state.report.record_commit(&moved);
    Ok(())
}
