//! Grouped pairs as a stream of Arrow record batches.
//!
//! [`PairStream`] groups rows by `(window, key)`, orders each group's rows by id (the tie-break
//! order, see [`super::pairs`]), and yields `key, window_start, window_end, id_1, id_2, distance`
//! batches of at most `batch_size` rows. Groups are computed in *waves*: consecutive small groups
//! together in parallel (one rayon task per group) until about [`WAVE_PAIRS`] pairs, a large group
//! alone with parallel kernels inside. Only one wave's pairs are in memory at a time, so the
//! output of a whole capture can be streamed; one group's pairs must fit (see [`super::pairs`]).
//!
//! Output order: groups by window start, then by key (nulls last), each group's pairs by distance
//! (ties by `(id_1, id_2)`) or, with `sort = false`, by `(id_1, id_2)` order. Keys and ids keep
//! their input type (strings, integers, dictionaries): see `columns.rs`.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampNanosecondType, UInt32Type};
use arrow_array::{new_null_array, Array, ArrayRef, PrimitiveArray, RecordBatch, RecordBatchReader};
use arrow_buffer::Buffer;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow_select::concat::concat;
use rayon::prelude::*;

use super::columns::{repeat_runs, Cols, IdMode, IdWidth};
use super::pairs::{all_sorted_buffers, all_sorted_into, group_pairs, PairOptions, Pairs};
use super::pdist::{checked_pairs, pair_count, zeroed};
use super::rank::{dense_rank, ordinal_rank};
use super::words::MAX_WORD_ROWS;
use super::{check_matrix, try_with_capacity, DistanceError, Result};

/// Pairs computed together before they are turned into batches.
pub const WAVE_PAIRS: usize = 1 << 22;

/// The rows to pair up: a key and an id per row, optional event times, and the feature matrix.
#[derive(Debug, Clone)]
pub struct PairsInput {
    /// Group key per row (any orderable Arrow type).
    pub key: ArrayRef,
    /// Event id per row, reported as `id_1` / `id_2` (any orderable Arrow type).
    pub id: ArrayRef,
    /// Features, `n x d` row-major.
    pub features: Vec<f64>,
    /// Features per row (the matrix's column count).
    pub d: usize,
    /// Tumbling windows: each row's window start (ns since the epoch) and the window length (ns).
    pub windows: Option<(Vec<i64>, i64)>,
}

impl PairsInput {
    /// Rows without windows.
    pub fn new(key: ArrayRef, id: ArrayRef, features: Vec<f64>, d: usize) -> Result<Self> {
        let n = key.len();
        if id.len() != n {
            return Err(DistanceError::Shape(format!("{n} keys but {} ids", id.len())));
        }
        check_matrix("features", &features, n, d)?;
        if n > u32::MAX as usize {
            return Err(DistanceError::InvalidArgument(format!("{n} rows: at most 2^32 - 1 per call")));
        }
        Ok(Self { key, id, features, d, windows: None })
    }

    /// Assigns each row to the tumbling window of `window` ns containing its `time` (ns since the
    /// epoch); windows are aligned to the epoch: `[k * window, (k + 1) * window)`.
    pub fn with_windows(mut self, time: &[i64], window: i64) -> Result<Self> {
        if time.len() != self.key.len() {
            return Err(DistanceError::Shape(format!("{} keys but {} times", self.key.len(), time.len())));
        }
        let starts = time.iter().map(|&t| window_start(t, window)).collect::<Result<Vec<_>>>()?;
        self.windows = Some((starts, window));
        Ok(self)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.key.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }
}

/// The start of the tumbling window of `window` ns that holds `t`.
pub fn window_start(t: i64, window: i64) -> Result<i64> {
    if window <= 0 {
        return Err(DistanceError::InvalidArgument(format!("window must be positive, not {window} ns")));
    }
    t.div_euclid(window)
        .checked_mul(window)
        .filter(|s| s.checked_add(window).is_some())
        .ok_or_else(|| DistanceError::InvalidArgument(format!("time {t} ns: its window is out of range")))
}

/// The output schema for a key and id type.
pub fn pairs_schema(key: &DataType, id: &DataType) -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("key", key.clone(), true),
        Field::new("window_start", ts.clone(), true),
        Field::new("window_end", ts, true),
        Field::new("id_1", id.clone(), true),
        Field::new("id_2", id.clone(), true),
        Field::new("distance", DataType::Float64, false),
    ]))
}

/// Whether a group of `m` events with these options is all pairs sorted through the word sort.
fn all_sorted_words(m: usize, o: &PairOptions) -> bool {
    m <= MAX_WORD_ROWS && o.sort && o.top_k.is_none() && o.max_distance.is_none()
}

/// A group's feature rows, gathered contiguous in the group's (id) order.
fn group_x(input: &PairsInput, g: &Group) -> Result<Vec<f64>> {
    let (m, d) = (g.rows.len(), input.d);
    let mut x = try_with_capacity(m.saturating_mul(d), || format!("the features of {m} events"))?;
    for &r in &g.rows {
        x.extend_from_slice(&input.features[r as usize * d..(r as usize + 1) * d]);
    }
    Ok(x)
}

/// One `(window, key)` group: its window start and its rows in id order.
struct Group {
    window: Option<i64>,
    rows: Vec<u32>,
}

impl Group {
    fn estimate(&self, opts: &PairOptions) -> usize {
        let m = self.rows.len();
        let Some(opts) = opts.for_group(m) else { return 0 };
        let all = pair_count(m).unwrap_or(usize::MAX);
        opts.top_k.map_or(all, |k| all.min(m.saturating_mul(k)))
    }
}

/// A group over [`PairOptions::max_group_events`]: its key (as text, `null` for the null key),
/// window start (ns) and number of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LargeGroupInfo {
    /// The group key as text; `null` for the null key.
    pub key: String,
    /// The window start (ns since the epoch); `None` without windows.
    pub window: Option<i64>,
    /// Number of events in the group.
    pub events: usize,
}

/// Grouped pairs, computed a wave at a time as batches are pulled (an Arrow `RecordBatchReader`).
pub struct PairStream {
    input: PairsInput,
    opts: PairOptions,
    batch_size: usize,
    groups: Vec<Group>,
    next_group: usize,
    pending: VecDeque<RecordBatch>,
    schema: SchemaRef,
    pairs: u64,
    paired_groups: u64,
    large: Vec<LargeGroupInfo>,
    /// `batch_size` null timestamps, sliced for the window columns when there are no windows.
    nulls: ArrayRef,
}

impl PairStream {
    /// Plans the groups and checks everything that could fail, so iteration only fails on bugs.
    pub fn new(input: PairsInput, opts: PairOptions, batch_size: usize) -> Result<Self> {
        opts.validate()?;
        if batch_size == 0 {
            return Err(DistanceError::InvalidArgument("batch_size must be at least 1".into()));
        }
        let (key_code, _) = dense_rank(input.key.as_ref())?;
        let id_rank = ordinal_rank(input.id.as_ref())?;
        let mut order: Vec<u32> = (0..input.len() as u32).collect();
        let window_of = |r: u32| input.windows.as_ref().map(|(s, _)| s[r as usize]);
        order.sort_unstable_by_key(|&r| (window_of(r), key_code[r as usize], id_rank[r as usize]));
        let groups: Vec<Group> = order
            .chunk_by(|&a, &b| window_of(a) == window_of(b) && key_code[a as usize] == key_code[b as usize])
            .map(|rows| Group { window: window_of(rows[0]), rows: rows.to_vec() })
            .collect();
        let sorted_all =
            |m: usize| opts.for_group(m).is_some_and(|o| o.sort && o.top_k.is_none() && o.max_distance.is_none());
        if let Some(g) = groups.iter().find(|g| sorted_all(g.rows.len()) && g.estimate(&opts) > u32::MAX as usize) {
            return Err(DistanceError::InvalidArgument(format!(
                "a group of {} events has too many pairs to sort; use top_k or max_distance",
                g.rows.len()
            )));
        }
        // All of a group's pairs take ~16 bytes each while sorted: refuse now what cannot fit.
        for g in &groups {
            let m = g.rows.len();
            if opts.for_group(m).is_some_and(|o| o.top_k.is_none() && o.max_distance.is_none()) {
                checked_pairs::<[u64; 2]>(m, || format!("the pairs of a group of {m} events"))?;
            }
        }
        let mut large = Vec::new();
        for g in groups.iter().filter(|g| opts.is_large(g.rows.len())) {
            let row = g.rows[0] as usize;
            let key = if input.key.is_null(row) {
                "null".to_string()
            } else {
                arrow_cast::display::array_value_to_string(input.key.as_ref(), row)?
            };
            large.push(LargeGroupInfo { key, window: g.window, events: g.rows.len() });
        }
        let schema = pairs_schema(input.key.data_type(), input.id.data_type());
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let nulls = new_null_array(&ts, if input.windows.is_some() { 0 } else { batch_size.min(1 << 20) });
        Ok(Self {
            input,
            opts,
            batch_size,
            groups,
            next_group: 0,
            pending: VecDeque::new(),
            schema,
            pairs: 0,
            paired_groups: 0,
            large,
            nulls,
        })
    }

    /// The groups over [`PairOptions::max_group_events`] (all known when the stream is made), in
    /// output order.
    pub fn large_groups(&self) -> &[LargeGroupInfo] {
        &self.large
    }

    /// Number of `(window, key)` groups.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Pairs produced so far.
    pub fn pairs_emitted(&self) -> u64 {
        self.pairs
    }

    /// Groups that produced at least one pair so far.
    pub fn paired_groups(&self) -> u64 {
        self.paired_groups
    }

    /// The next batch, `None` at the end (the iterator, with the module's error type).
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Ok(Some(b));
            }
            if !self.next_wave()? {
                return Ok(None);
            }
        }
    }

    /// Computes the next wave of groups into `pending`; `false` when all groups are done.
    fn next_wave(&mut self) -> Result<bool> {
        let start = self.next_group;
        if start >= self.groups.len() {
            return Ok(false);
        }
        let mut end = start;
        let mut total = 0usize;
        while end < self.groups.len() && (end == start || total < WAVE_PAIRS) {
            total = total.saturating_add(self.groups[end].estimate(&self.opts));
            end += 1;
        }
        self.next_group = end;
        let (input, opts) = (&self.input, &self.opts);
        let mode = IdMode::of(&input.id);
        let groups = &self.groups[start..end];
        let windows: Vec<Option<i64>> = groups.iter().map(|g| g.window).collect();
        let key_rows: Vec<u32> = groups.iter().map(|g| g.rows[0]).collect();
        // Every group all pairs sorted (or nothing): the wave's columns are allocated once and
        // each group writes its part, so batches are slices, never concatenated copies.
        let word_sorted = |g: &Group| {
            let m = g.rows.len();
            opts.for_group(m).is_none_or(|o| m < 2 || all_sorted_words(m, &o))
        };
        let (parts, spans, paired) = if groups.len() > 1 && groups.iter().all(word_sorted) {
            let lens: Vec<usize> = groups
                .iter()
                .map(|g| if opts.for_group(g.rows.len()).is_some() { pair_count(g.rows.len()).unwrap_or(0) } else { 0 })
                .collect();
            let part = match mode {
                IdMode::I64 | IdMode::U64 => {
                    let (one, two, dist) = self.wave_into::<u64>(mode, groups, &lens)?;
                    mode.arrays(Buffer::from_vec(one), Buffer::from_vec(two), Buffer::from_vec(dist))
                }
                IdMode::I32 | IdMode::U32 | IdMode::Take => {
                    let (one, two, dist) = self.wave_into::<u32>(mode, groups, &lens)?;
                    mode.arrays(Buffer::from_vec(one), Buffer::from_vec(two), Buffer::from_vec(dist))
                }
            };
            let mut off = 0;
            let spans: Vec<(usize, usize, usize)> = lens
                .iter()
                .map(|&n| {
                    off += n;
                    (0, off - n, n)
                })
                .collect();
            let paired = lens.iter().filter(|&&n| n > 0).count();
            (vec![part], spans, paired)
        } else {
            let compute = |g: &Group| -> Result<Cols> {
                let m = g.rows.len();
                let Some(opts) = opts.for_group(m) else { return mode.cols(input, Pairs::default()) };
                let x = group_x(input, g)?;
                if (2..=MAX_WORD_ROWS).contains(&m) && all_sorted_words(m, &opts) {
                    // All pairs sorted (the big output): ids written straight into the columns.
                    let vals = mode.vals(input, &g.rows);
                    let (one, two, dist) = all_sorted_buffers(&x, m, input.d, opts.metric, &vals)?;
                    return Ok(mode.arrays(one, two, dist));
                }
                mode.cols(input, group_pairs(&x, m, input.d, &g.rows, &opts)?)
            };
            let parts: Vec<Cols> = groups.par_iter().map(compute).collect::<Result<_>>()?;
            let spans = parts.iter().enumerate().map(|(g, c)| (g, 0, c.dist.len())).collect();
            let paired = parts.iter().filter(|c| !c.dist.is_empty()).count();
            (parts, spans, paired)
        };
        self.paired_groups += paired as u64;
        self.pairs += parts.iter().map(|c| c.dist.len() as u64).sum::<u64>();
        let batches = self.build_batches(parts, &spans, &key_rows, &windows, matches!(mode, IdMode::Take))?;
        self.pending.extend(batches);
        Ok(true)
    }

    /// A wave of word-sorted groups written into one set of columns (`lens[g]` pairs each):
    /// `(id_1, id_2, distance bits)`.
    fn wave_into<T: IdWidth>(
        &self,
        mode: IdMode,
        groups: &[Group],
        lens: &[usize],
    ) -> Result<(Vec<T>, Vec<T>, Vec<u64>)> {
        let total = lens.iter().try_fold(0usize, |t, &n| t.checked_add(n)).unwrap_or(usize::MAX);
        let what = || format!("the {total} pairs of {} groups", groups.len());
        let (mut one, mut two, mut dist) =
            (zeroed::<T>(total, what)?, zeroed::<T>(total, what)?, zeroed::<u64>(total, what)?);
        let mut tasks = Vec::with_capacity(groups.len());
        let (mut r1, mut r2, mut rd) = (&mut one[..], &mut two[..], &mut dist[..]);
        for (g, &n) in groups.iter().zip(lens) {
            let (h1, t1) = std::mem::take(&mut r1).split_at_mut(n);
            let (h2, t2) = std::mem::take(&mut r2).split_at_mut(n);
            let (hd, td) = std::mem::take(&mut rd).split_at_mut(n);
            if n > 0 {
                tasks.push((g, h1, h2, hd));
            }
            (r1, r2, rd) = (t1, t2, td);
        }
        let input = &self.input;
        tasks.into_par_iter().try_for_each(|(g, one, two, dist)| -> Result<()> {
            let m = g.rows.len();
            let x = group_x(input, g)?;
            all_sorted_into(&x, m, input.d, self.opts.metric, &mode.vals(input, &g.rows), T::out(one, two), dist)
        })?;
        Ok((one, two, dist))
    }

    /// Cuts a wave's pairs into batches of at most `batch_size` rows, built in parallel. A batch
    /// within one group slices that group's columns without copying.
    /// `rows`: the id columns are row numbers, gathered from the ids here.
    /// `spans[g]`: where group `g`'s pairs are, `(part, offset, len)` in `parts`.
    fn build_batches(
        &self,
        parts: Vec<Cols>,
        spans: &[(usize, usize, usize)],
        key_rows: &[u32],
        windows: &[Option<i64>],
        rows: bool,
    ) -> Result<Vec<RecordBatch>> {
        // Segments: (group index, start, end) pieces of each batch.
        let mut batches: Vec<Vec<(usize, usize, usize)>> = Vec::new();
        let mut current: Vec<(usize, usize, usize)> = Vec::new();
        let mut room = self.batch_size;
        for (g, &(_, _, len)) in spans.iter().enumerate() {
            let mut at = 0;
            while at < len {
                let take = room.min(len - at);
                current.push((g, at, at + take));
                at += take;
                room -= take;
                if room == 0 {
                    batches.push(std::mem::take(&mut current));
                    room = self.batch_size;
                }
            }
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
            .par_iter()
            .map(|segments| {
                // Pieces of the parts, contiguous segments of one part merged (a batch within one
                // part is a slice, not a copy).
                let mut pieces: Vec<(usize, usize, usize)> = Vec::new();
                for &(g, s, e) in segments {
                    let (part, off, _) = spans[g];
                    match pieces.last_mut() {
                        Some(last) if last.0 == part && last.2 == off + s => last.2 = off + e,
                        _ => pieces.push((part, off + s, off + e)),
                    }
                }
                let piece = |&(part, s, e): &(usize, usize, usize)| -> Vec<ArrayRef> {
                    let c = &parts[part];
                    vec![c.one.slice(s, e - s), c.two.slice(s, e - s), c.dist.slice(s, e - s)]
                };
                let mut sliced: Vec<Vec<ArrayRef>> = pieces.iter().map(piece).collect();
                let (a, b, dist) = if sliced.len() == 1 {
                    let p = sliced.pop().unwrap_or_default();
                    (p[0].clone(), p[1].clone(), p[2].clone())
                } else {
                    let cat = |c: usize| concat(&sliced.iter().map(|p| p[c].as_ref()).collect::<Vec<_>>());
                    (cat(0)?, cat(1)?, cat(2)?)
                };
                let starts: Option<Vec<i64>> = self.input.windows.as_ref().map(|_| {
                    segments.iter().flat_map(|&(g, s, e)| std::iter::repeat_n(windows[g].unwrap_or(0), e - s)).collect()
                });
                // A group has one key: the key column is runs of one value per segment.
                let key_runs: Vec<(u32, usize)> = segments.iter().map(|&(g, s, e)| (key_rows[g], e - s)).collect();
                let key = repeat_runs(&self.input.key, &key_runs)?;
                let (a, b) = if rows {
                    let take = |idx: &ArrayRef| {
                        arrow_select::take::take(self.input.id.as_ref(), idx.as_primitive::<UInt32Type>(), None)
                    };
                    (take(&a)?, take(&b)?)
                } else {
                    (a, b)
                };
                self.batch(key, a, b, dist, starts)
            })
            .collect()
    }

    fn batch(
        &self,
        key: ArrayRef,
        a: ArrayRef,
        b: ArrayRef,
        dist: ArrayRef,
        starts: Option<Vec<i64>>,
    ) -> Result<RecordBatch> {
        let (window_start, window_end): (ArrayRef, ArrayRef) = match (starts, &self.input.windows) {
            (Some(starts), Some((_, w))) => {
                let ends: Vec<i64> = starts.iter().map(|s| s + w).collect();
                let mk = |v: Vec<i64>| {
                    Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(v).with_timezone("UTC")) as ArrayRef
                };
                (mk(starts), mk(ends))
            }
            _ => {
                let nulls = if a.len() <= self.nulls.len() {
                    self.nulls.slice(0, a.len())
                } else {
                    new_null_array(self.nulls.data_type(), a.len())
                };
                (nulls.clone(), nulls)
            }
        };
        let columns = vec![key, window_start, window_end, a, b, dist];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Iterator for PairStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch() {
            Ok(b) => b.map(Ok),
            // MemoryError crosses the C stream interface as ENOMEM (pyarrow: ArrowMemoryError,
            // a MemoryError).
            Err(e @ DistanceError::OutOfMemory { .. }) => Some(Err(ArrowError::MemoryError(e.to_string()))),
            Err(e) => Some(Err(ArrowError::ComputeError(e.to_string()))),
        }
    }
}

impl RecordBatchReader for PairStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
