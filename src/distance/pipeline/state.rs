//! The pipeline's state machine, without Kafka: what is held back, what is in open windows, what
//! may be committed.
//!
//! - [`Pipeline::ingest`] takes a consumed batch: its events are *held* (not yet pushed into the
//!   windows), and each partition's largest event time is noted.
//! - [`Pipeline::release`] pushes the held events at or before the watermark limit (the smallest
//!   largest-event-time over the assigned partitions that are not idle) into
//!   [`WindowedPairs`] in one push, hands the pairs of the windows that closed to the
//!   [`PairSink`] (which returns once the broker acknowledged them), and forgets the offsets of the
//!   events whose windows are now closed. Events stay *in flight* from the push until their window
//!   closes.
//! - [`Pipeline::safe_offsets`]: per partition, the smallest offset still held or in flight, else
//!   the consumer's next offset. Only those are committed ([`Pipeline::commit_plan`]).
//! - Rebalances: [`Pipeline::revoke`] forgets a partition's held events (they are uncommitted, so
//!   its next owner reads them) and its watermark; its in-flight events stay in their windows
//!   (they cannot be taken out: the window is emitted with them, at-least-once). Should the
//!   partition come back to this member, the events it reads again that are still held or in
//!   flight are skipped, so a window never holds one event twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow_array::RecordBatch;

use super::events::{extract, EventSpec, Events, Partitions};
use super::output::output_batches;
use super::{Report, Result};
use crate::distance::{LargeGroupInfo, WindowedPairs};

/// Where closed windows' pairs go.
pub trait PairSink {
    /// Sends the output rows (see [`super::output`]) and returns once each was acknowledged (or
    /// failed: then an error), with the number delivered. `interrupted` is polled while waiting.
    fn deliver(
        &mut self,
        rows: &[RecordBatch],
        interrupted: &mut dyn FnMut() -> crate::kafka::Result<()>,
    ) -> Result<u64>;
}

/// An event pushed into a window that is still open.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    part: u32,
    offset: i64,
    /// The end of its window (ns): it closes once the watermark reaches it.
    end: i64,
}

/// The state of one run (see the module docs).
pub struct Pipeline {
    pairs: WindowedPairs,
    spec: EventSpec,
    window: i64,
    idle_partition: f64,
    parts: Partitions,
    max_time: Vec<Option<i64>>,
    last_seen: Vec<Option<f64>>,
    held: Vec<Events>,
    inflight: Vec<InFlight>,
    /// Partitions revoked at least once: events read again are checked against the state.
    rejoined: HashSet<u32>,
    large: Vec<LargeGroupInfo>,
    /// The counters (the driver fills in times, commits and why it stopped).
    pub report: Report,
}

impl Pipeline {
    /// A pipeline over `pairs` (whose window is `window` ns); a partition silent for
    /// `idle_partition` seconds stops holding the watermark back.
    pub fn new(pairs: WindowedPairs, spec: EventSpec, window: i64, idle_partition: f64) -> Self {
        Self {
            pairs,
            spec,
            window,
            idle_partition,
            parts: Partitions::default(),
            max_time: Vec::new(),
            last_seen: Vec::new(),
            held: Vec::new(),
            inflight: Vec::new(),
            rejoined: HashSet::new(),
            large: Vec::new(),
            report: Report::default(),
        }
    }

    fn intern(&mut self, topic: &str, partition: i32) -> u32 {
        let i = self.parts.intern(topic, partition);
        if self.max_time.len() < self.parts.len() {
            self.max_time.resize(self.parts.len(), None);
            self.last_seen.resize(self.parts.len(), None);
        }
        i
    }

    fn d(&self) -> usize {
        self.spec.features.len()
    }

    /// Events held back (read, not yet pushed into the windows).
    pub fn held(&self) -> usize {
        self.held.iter().map(Events::len).sum()
    }

    /// Events in windows that are still open.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// The large groups of the windows closed since the last call (for logging).
    pub fn take_large_groups(&mut self) -> Vec<LargeGroupInfo> {
        std::mem::take(&mut self.large)
    }

    /// Takes a consumed batch (see [`super::events`]) read at `now` (seconds, any origin).
    pub fn ingest(&mut self, batch: &RecordBatch, now: f64) -> Result<()> {
        let got = extract(batch, &self.spec, &mut self.parts)?;
        self.max_time.resize(self.parts.len(), None);
        self.last_seen.resize(self.parts.len(), None);
        self.report.events += got.rows;
        self.report.invalid += got.invalid;
        for &p in &got.seen {
            self.last_seen[p as usize] = Some(now);
        }
        let mut events = got.events;
        if !self.rejoined.is_empty() && events.part.iter().any(|p| self.rejoined.contains(p)) {
            events = self.without_known(events)?;
        }
        if events.is_empty() {
            return Ok(());
        }
        for (&p, &t) in events.part.iter().zip(&events.time) {
            let m = &mut self.max_time[p as usize];
            *m = Some(m.map_or(t, |m| m.max(t)));
        }
        self.held.push(events);
        Ok(())
    }

    /// `events` without those of rejoined partitions that are already held or in flight.
    fn without_known(&self, events: Events) -> Result<Events> {
        let mut known: HashMap<u32, HashSet<i64>> = HashMap::new();
        for f in &self.inflight {
            if self.rejoined.contains(&f.part) {
                known.entry(f.part).or_default().insert(f.offset);
            }
        }
        for h in &self.held {
            for (&p, &o) in h.part.iter().zip(&h.offset) {
                if self.rejoined.contains(&p) {
                    known.entry(p).or_default().insert(o);
                }
            }
        }
        let keep: Vec<bool> =
            events.part.iter().zip(&events.offset).map(|(p, o)| !known.get(p).is_some_and(|s| s.contains(o))).collect();
        if keep.iter().all(|k| *k) {
            return Ok(events);
        }
        events.select(&keep, self.d())
    }

    /// Events at or before this time may be pushed: every assigned, active partition reached it
    /// (`i128::MAX`: no partition holds anything back; `i128::MIN`: one has delivered nothing yet).
    pub fn watermark_limit(&mut self, now: f64, assignment: &[(String, i32)]) -> i128 {
        let mut limit = i128::MAX;
        for (t, p) in assignment {
            let i = self.intern(t, *p) as usize;
            let seen = *self.last_seen[i].get_or_insert(now); // first noticed now
            if now - seen >= self.idle_partition {
                continue; // idle: does not hold the others back
            }
            limit = limit.min(self.max_time[i].map_or(i128::MIN, i128::from));
        }
        limit
    }

    /// Pushes the held events every partition has caught up with (all of them with `everything`)
    /// and delivers the windows that closed.
    pub fn release(
        &mut self,
        now: f64,
        assignment: &[(String, i32)],
        everything: bool,
        sink: &mut dyn PairSink,
        interrupted: &mut dyn FnMut() -> crate::kafka::Result<()>,
    ) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let limit = if everything { i128::MAX } else { self.watermark_limit(now, assignment) };
        let (mut ready, mut rest) = (Vec::new(), Vec::new());
        let d = self.d();
        for chunk in std::mem::take(&mut self.held) {
            let keep: Vec<bool> = chunk.time.iter().map(|&t| i128::from(t) <= limit).collect();
            match keep.iter().filter(|k| **k).count() {
                0 => rest.push(chunk),
                n if n == chunk.len() => ready.push(chunk),
                _ => {
                    let not: Vec<bool> = keep.iter().map(|k| !k).collect();
                    ready.push(chunk.select(&keep, d)?);
                    rest.push(chunk.select(&not, d)?);
                }
            }
        }
        self.held = rest;
        if ready.is_empty() {
            return Ok(());
        }
        let push = Events::concat(&ready)?;
        let w = self.window;
        self.inflight.extend(push.part.iter().zip(&push.offset).zip(&push.time).map(|((&part, &offset), &t)| {
            InFlight { part, offset, end: t.div_euclid(w).saturating_mul(w).saturating_add(w) }
        }));
        let late_before = self.pairs.late_events();
        let closed = self.pairs.push(&push.key, &push.id, &push.time, &push.features)?;
        self.report.late_events += self.pairs.late_events() - late_before;
        self.closed(closed, false, sink, interrupted)
    }

    /// End of input: pushes everything held, closes every window, delivers.
    pub fn flush(
        &mut self,
        now: f64,
        sink: &mut dyn PairSink,
        interrupted: &mut dyn FnMut() -> crate::kafka::Result<()>,
    ) -> Result<()> {
        self.release(now, &[], true, sink, interrupted)?;
        let closed = self.pairs.flush()?;
        self.closed(closed, true, sink, interrupted)
    }

    /// Delivers closed windows' pairs, then forgets their events' offsets (now safe).
    fn closed(
        &mut self,
        pairs: Vec<RecordBatch>,
        everything: bool,
        sink: &mut dyn PairSink,
        interrupted: &mut dyn FnMut() -> crate::kafka::Result<()>,
    ) -> Result<()> {
        self.report.large_groups = self.pairs.large_groups();
        self.report.large_group_events = self.pairs.large_group_events();
        self.large.extend(self.pairs.take_large_groups());
        let rows: u64 = pairs.iter().map(|b| b.num_rows() as u64).sum();
        if rows > 0 {
            let out = output_batches(&pairs)?;
            self.report.windows = self.pairs.paired_groups();
            self.report.pairs += rows;
            self.report.delivered += sink.deliver(&out, interrupted)?;
        }
        if everything {
            self.inflight.clear();
        } else if let Some(wm) = self.pairs.watermark() {
            self.inflight.retain(|f| f.end > wm);
        }
        Ok(())
    }

    /// Per partition handed out (`positions`: the consumer's next offsets) or still in the state:
    /// the smallest offset of an event still held or in flight, else the next offset.
    pub fn safe_offsets(&self, positions: &[(String, i32, i64)]) -> BTreeMap<(String, i32), i64> {
        let mut safe: BTreeMap<(String, i32), i64> = positions.iter().map(|(t, p, o)| ((t.clone(), *p), *o)).collect();
        let mut lowest: HashMap<u32, i64> = HashMap::new();
        let held = self.held.iter().flat_map(|h| h.part.iter().copied().zip(h.offset.iter().copied()));
        for (p, o) in held.chain(self.inflight.iter().map(|f| (f.part, f.offset))) {
            let e = lowest.entry(p).or_insert(o);
            *e = (*e).min(o);
        }
        for (p, o) in lowest {
            let (t, part) = self.parts.get(p);
            let e = safe.entry((t.to_string(), part)).or_insert(o);
            *e = (*e).min(o);
        }
        safe
    }

    /// The safe offsets of the assigned partitions that moved past the last commit, sorted.
    pub fn commit_plan(
        &self,
        positions: &[(String, i32, i64)],
        assignment: &[(String, i32)],
    ) -> Vec<(String, i32, i64)> {
        self.safe_offsets(positions)
            .into_iter()
            .filter(|((t, p), o)| {
                assignment.iter().any(|(at, ap)| at == t && ap == p)
                    && self.report.committed(t, *p).is_none_or(|c| c < *o)
            })
            .map(|((t, p), o)| (t, p, o))
            .collect()
    }

    /// Partitions taken away from this member (see the module docs).
    pub fn revoke(&mut self, partitions: &[(String, i32)]) -> Result<()> {
        let gone: HashSet<u32> = partitions.iter().map(|(t, p)| self.intern(t, *p)).collect();
        for &p in &gone {
            self.max_time[p as usize] = None;
            self.last_seen[p as usize] = None;
            self.rejoined.insert(p);
        }
        let d = self.d();
        let mut kept = Vec::with_capacity(self.held.len());
        for chunk in std::mem::take(&mut self.held) {
            let keep: Vec<bool> = chunk.part.iter().map(|p| !gone.contains(p)).collect();
            match keep.iter().filter(|k| **k).count() {
                0 => {}
                n if n == chunk.len() => kept.push(chunk),
                _ => kept.push(chunk.select(&keep, d)?),
            }
        }
        self.held = kept;
        Ok(())
    }
}
