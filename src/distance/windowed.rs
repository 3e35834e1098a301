//! Event-time tumbling windows over a stream of batches: [`WindowedPairs`].
//!
//! Rows are buffered per window (`[k * window, (k + 1) * window)` ns, aligned to the epoch); the
//! *watermark* is the largest event time seen minus `allowed_lateness`. After each push, every open
//! window whose end is at or before the watermark closes and is handed back for pairing.
//!
//! Rules, chosen to be simple to reason about and exact to test:
//! - rows of one push are judged against the watermark from *before* that push (the watermark
//!   advances once per push, after its rows are buffered), so the order of rows within a batch
//!   never matters;
//! - a row whose window end is at or before that watermark is *late*: its window has closed (or
//!   would have closed had it been open). Late rows are counted in [`WindowedPairs::late_events`],
//!   never silently dropped without trace, and never re-open a window;
//! - [`WindowedPairs::flush`] closes every open window (end of stream); the watermark is kept.
//!
//! Memory is the open windows' rows (ids and keys are copied out of the pushed batches, so a
//! pushed batch is not kept alive by a window).

use std::collections::BTreeMap;

use arrow_array::{ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, SchemaRef};
use arrow_select::concat::concat;
use arrow_select::take::take;

use super::pairs::PairOptions;
use super::stream::{pairs_schema, window_start, LargeGroupInfo, PairStream, PairsInput};
use super::{check_matrix, DistanceError, Result};

/// One open window's rows.
#[derive(Default)]
struct Buffer {
    keys: Vec<ArrayRef>,
    ids: Vec<ArrayRef>,
    features: Vec<f64>,
}

/// The windowed pairs state machine (see the module docs).
pub struct WindowedPairs {
    window: i64,
    lateness: i64,
    opts: PairOptions,
    batch_size: usize,
    d: usize,
    open: BTreeMap<i64, Buffer>,
    max_time: Option<i64>,
    late_events: u64,
    large_groups: u64,
    large_group_events: u64,
    paired_groups: u64,
    recent_large: Vec<LargeGroupInfo>,
    types: Option<(DataType, DataType)>,
}

impl WindowedPairs {
    /// Windows of `window` ns, `allowed_lateness` ns of lateness, `d` features per row.
    pub fn new(window: i64, allowed_lateness: i64, d: usize, opts: PairOptions, batch_size: usize) -> Result<Self> {
        if window <= 0 {
            return Err(DistanceError::InvalidArgument(format!("window must be positive, not {window} ns")));
        }
        if allowed_lateness < 0 {
            return Err(DistanceError::InvalidArgument(format!(
                "allowed_lateness must be >= 0, not {allowed_lateness} ns"
            )));
        }
        if batch_size == 0 {
            return Err(DistanceError::InvalidArgument("batch_size must be at least 1".into()));
        }
        opts.validate()?;
        Ok(Self {
            window,
            lateness: allowed_lateness,
            opts,
            batch_size,
            d,
            open: BTreeMap::new(),
            max_time: None,
            late_events: 0,
            large_groups: 0,
            large_group_events: 0,
            paired_groups: 0,
            recent_large: Vec::new(),
            types: None,
        })
    }

    /// Largest event time seen minus the allowed lateness (ns), `None` before the first row.
    pub fn watermark(&self) -> Option<i64> {
        self.max_time.map(|t| t.saturating_sub(self.lateness))
    }

    /// Rows that arrived after their window had closed.
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// `(key, window)` groups over `max_group_events` in the windows closed so far (computed as
    /// `top_k` or skipped, see [`super::LargeGroup`]).
    pub fn large_groups(&self) -> u64 {
        self.large_groups
    }

    /// The events of those groups.
    pub fn large_group_events(&self) -> u64 {
        self.large_group_events
    }

    /// `(key, window)` groups of the windows closed so far that produced at least one pair.
    pub fn paired_groups(&self) -> u64 {
        self.paired_groups
    }

    /// The large groups of the windows closed since the last call (for logging), in window order.
    pub fn take_large_groups(&mut self) -> Vec<LargeGroupInfo> {
        std::mem::take(&mut self.recent_large)
    }

    /// Windows holding rows, not yet closed.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// The output schema (key and id types come from the first push; null before it).
    pub fn schema(&self) -> SchemaRef {
        match &self.types {
            Some((k, i)) => pairs_schema(k, i),
            None => pairs_schema(&DataType::Null, &DataType::Null),
        }
    }

    /// Buffers a batch of rows and returns the pairs of the windows that closed, in window order.
    /// Nothing changes when the batch is invalid (lengths, types, times out of range).
    pub fn push(&mut self, key: &ArrayRef, id: &ArrayRef, time: &[i64], features: &[f64]) -> Result<Vec<RecordBatch>> {
        let n = key.len();
        if id.len() != n || time.len() != n {
            return Err(DistanceError::Shape(format!("{n} keys, {} ids, {} times", id.len(), time.len())));
        }
        check_matrix("features", features, n, self.d)?;
        let types = (key.data_type().clone(), id.data_type().clone());
        if let Some(expected) = &self.types {
            if *expected != types {
                return Err(DistanceError::InvalidArgument(format!(
                    "key/id types changed from {:?} to {:?} between pushes",
                    expected, types
                )));
            }
        }
        let starts = time.iter().map(|&t| window_start(t, self.window)).collect::<Result<Vec<_>>>()?;
        let watermark = self.watermark();
        let mut rows_by_window: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        let mut late = 0u64;
        for (r, &s) in starts.iter().enumerate() {
            if watermark.is_some_and(|w| s + self.window <= w) {
                late += 1;
            } else {
                rows_by_window.entry(s).or_default().push(r as u32);
            }
        }
        // Copy each window's rows out of the batch first, so an Arrow error leaves no half-push.
        let mut pieces = Vec::with_capacity(rows_by_window.len());
        for (s, rows) in rows_by_window {
            let idx = UInt32Array::from(rows);
            let mut f = Vec::with_capacity(idx.len() * self.d);
            for &r in idx.values() {
                f.extend_from_slice(&features[r as usize * self.d..(r as usize + 1) * self.d]);
            }
            pieces.push((s, take(key.as_ref(), &idx, None)?, take(id.as_ref(), &idx, None)?, f));
        }
        self.types = Some(types);
        self.late_events += late;
        for (s, k, i, f) in pieces {
            let buf = self.open.entry(s).or_default();
            buf.keys.push(k);
            buf.ids.push(i);
            buf.features.extend_from_slice(&f);
        }
        if let Some(t) = time.iter().copied().max() {
            self.max_time = Some(self.max_time.map_or(t, |m| m.max(t)));
        }
        let watermark = self.watermark().unwrap_or(i64::MIN);
        let closing: Vec<i64> = self.open.keys().copied().take_while(|&s| s + self.window <= watermark).collect();
        self.close(&closing)
    }

    /// Closes every open window and returns their pairs.
    pub fn flush(&mut self) -> Result<Vec<RecordBatch>> {
        let all: Vec<i64> = self.open.keys().copied().collect();
        self.close(&all)
    }

    fn close(&mut self, starts: &[i64]) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for s in starts {
            let Some(buf) = self.open.remove(s) else { continue };
            let key = concat(&buf.keys.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?;
            let id = concat(&buf.ids.iter().map(|a| a.as_ref()).collect::<Vec<_>>())?;
            let times = vec![*s; key.len()];
            let input = PairsInput::new(key, id, buf.features, self.d)?.with_windows(&times, self.window)?;
            let mut stream = PairStream::new(input, self.opts, self.batch_size)?;
            let large = stream.large_groups().to_vec();
            while let Some(batch) = stream.next_batch()? {
                out.push(batch);
            }
            self.paired_groups += stream.paired_groups();
            self.large_groups += large.len() as u64;
            self.large_group_events += large.iter().map(|g| g.events as u64).sum::<u64>();
            self.recent_large.extend(large);
        }
        Ok(out)
    }
}
