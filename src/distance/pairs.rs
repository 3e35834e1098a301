//! One group's pairs: all of them, the `top_k` nearest per event, or those within `max_distance`.
//!
//! A group is a small matrix of rows (the events of one key in one window), gathered contiguous
//! and in *tie-break order* (the caller orders them by id). Positions in that order define the
//! pair orientation and every tie: a pair is `(a, b)` with `a < b`, and pairs of equal distance
//! come out in `(a, b)` order, i.e. by `(id_1, id_2)`.
//!
//! Rules:
//! - **all pairs** (neither option): `m(m-1)/2` pairs. This is the honest cost of the output and
//!   all of one group's pairs are held in memory to sort them (an 8-byte word per pair plus the
//!   same again as scatter scratch, which then holds the distances; groups above 65536 rows use
//!   16-byte items); callers stream *between* groups.
//! - **`top_k`**: for each event `a`, its k nearest are the k smallest `(distance, position)` among
//!   the other events; a pair is kept when either event is among the other's k nearest (so an event
//!   may appear in more than k pairs, and every event with a neighbour appears in at least
//!   `min(k, m-1)`). Memory is one row of distances per thread plus at most `m*k` candidates; the
//!   `m x m` matrix is never built.
//! - **`max_distance`**: keeps pairs with `distance <= max_distance` (NaN never qualifies); with
//!   `top_k` too, a pair must satisfy both.
//! - NaN distances (from NaN features) sort after every number.

use arrow_buffer::Buffer;
use rayon::prelude::*;

use super::metric::{row_to_rows, Kernel};
use super::pdist::{checked_pairs, pair_count, par_rows, row_upper, zeroed};
use super::sort::{dist_key, key_dist, sort_by_key_then_payload};
use super::words::{self, MAX_WORD_ROWS};
use super::{check_matrix, try_with_capacity, DistanceError, Metric, Result};

/// `top_k` of a group over `max_group_events` when the caller gave none
/// ([`LargeGroup::TopK`]): `m * 10` pairs at most instead of `m(m-1)/2`.
pub const LARGE_GROUP_TOP_K: usize = 10;

/// What happens to a group with more than [`PairOptions::max_group_events`] events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LargeGroup {
    /// Only each event's `top_k` nearest (the caller's `top_k`, else [`LARGE_GROUP_TOP_K`]).
    #[default]
    TopK,
    /// No pairs at all.
    Skip,
}

impl std::str::FromStr for LargeGroup {
    type Err = DistanceError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "top_k" => Ok(LargeGroup::TopK),
            "skip" => Ok(LargeGroup::Skip),
            _ => Err(DistanceError::InvalidArgument(format!("on_large_group must be 'top_k' or 'skip', not {s:?}"))),
        }
    }
}

/// What to compute for each group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairOptions {
    /// How the distance between two events' feature rows is measured.
    pub metric: Metric,
    /// Keep a pair only if one event is among the other's `top_k` nearest.
    pub top_k: Option<usize>,
    /// Keep a pair only if its distance is at most this.
    pub max_distance: Option<f64>,
    /// Sort by distance (ties by position); otherwise pairs come in `(a, b)` order.
    pub sort: bool,
    /// Groups with more events than this are *large*: not expanded to all their pairs but
    /// handled as `on_large_group` says, and counted (applied by [`super::PairStream`]).
    pub max_group_events: Option<usize>,
    /// What happens to a group over `max_group_events`.
    pub on_large_group: LargeGroup,
}

impl PairOptions {
    /// All pairs, sorted, with `metric`, no group limit.
    pub fn new(metric: Metric) -> Self {
        Self {
            metric,
            top_k: None,
            max_distance: None,
            sort: true,
            max_group_events: None,
            on_large_group: LargeGroup::TopK,
        }
    }

    /// Whether a group of `m` events is over `max_group_events`.
    pub fn is_large(&self, m: usize) -> bool {
        self.max_group_events.is_some_and(|limit| m > limit)
    }

    /// The options for a group of `m` events: these, or for a large group its `top_k` ones;
    /// `None` when the group is large and skipped.
    pub fn for_group(&self, m: usize) -> Option<PairOptions> {
        if !self.is_large(m) {
            return Some(*self);
        }
        match self.on_large_group {
            LargeGroup::Skip => None,
            LargeGroup::TopK => Some(PairOptions { top_k: Some(self.top_k.unwrap_or(LARGE_GROUP_TOP_K)), ..*self }),
        }
    }

    /// Checks the options (a NaN `max_distance` would silently keep nothing).
    pub fn validate(&self) -> Result<()> {
        if self.max_distance.is_some_and(f64::is_nan) {
            return Err(DistanceError::InvalidArgument("max_distance must be a number, not NaN".into()));
        }
        Ok(())
    }
}

/// A group's pairs as parallel columns: rows `a[i]` and `b[i]` (mapped through the caller's row
/// numbers) at distance `dist[i]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairs {
    /// The first row of each pair, as the caller's row number.
    pub a: Vec<u32>,
    /// The second row of each pair, as the caller's row number.
    pub b: Vec<u32>,
    /// The distance between the two rows under the metric.
    pub dist: Vec<f64>,
}

impl Pairs {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.dist.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.dist.is_empty()
    }
}

/// The pairs of the `m` rows of `x` (`m x d`, row-major, in tie-break order); `rows[p]` is the
/// number reported for position `p` (e.g. the row's index in the caller's table).
///
/// ```
/// use pktstream::distance::{pairs::group_pairs, Metric, PairOptions};
/// let x = [0.0, 10.0, 1.0, 3.0]; // 4 events, 1 feature
/// let p = group_pairs(&x, 4, 1, &[100, 101, 102, 103], &PairOptions::new(Metric::Cityblock)).unwrap();
/// assert_eq!(p.dist, vec![1.0, 2.0, 3.0, 7.0, 9.0, 10.0]);
/// assert_eq!((p.a[0], p.b[0]), (100, 102));
/// ```
pub fn group_pairs(x: &[f64], m: usize, d: usize, rows: &[u32], opts: &PairOptions) -> Result<Pairs> {
    check_matrix("group", x, m, d)?;
    opts.validate()?;
    if rows.len() != m {
        return Err(DistanceError::Shape(format!("{} row numbers for {m} rows", rows.len())));
    }
    let aux = opts.metric.row_aux(x, m, d);
    crate::dispatch_metric!(opts.metric, k => {
        if opts.top_k.is_some() || opts.max_distance.is_some() {
            selected(k, x, d, &aux, rows, opts)
        } else {
            all(k, x, d, &aux, rows, opts.sort)
        }
    })
}

/// Every pair: sorted as 8-byte words up to [`MAX_WORD_ROWS`] rows (see [`super::words`]), past
/// that through a radix sort of `(dist_key, a << 32 | b)` items.
fn all<K: Kernel>(k: K, x: &[f64], d: usize, aux: &[f64], rows: &[u32], sort: bool) -> Result<Pairs> {
    let m = aux.len();
    let group = || format!("the pairs of a group of {m} events");
    // 16 bytes per pair at the peak (three 4-8 byte columns, or 8-byte words plus their scatter).
    checked_pairs::<[u64; 2]>(m, group)?;
    let len = pair_count(m).filter(|&n| n <= u32::MAX as usize || !sort).ok_or_else(|| {
        DistanceError::InvalidArgument(format!(
            "a group of {m} events has too many pairs to sort; use top_k or max_distance"
        ))
    })?;
    if !sort {
        let mut dist = zeroed::<f64>(len, group)?;
        let (mut a, mut b) = (try_with_capacity(len, group)?, try_with_capacity(len, group)?);
        par_rows(m, &mut dist, |i, out| row_upper(k, x, d, aux, i, out));
        for i in 0..m {
            for j in i + 1..m {
                a.push(rows[i]);
                b.push(rows[j]);
            }
        }
        return Ok(Pairs { a, b, dist });
    }
    if m <= MAX_WORD_ROWS {
        all_sorted_words(k, x, d, aux, rows, len)
    } else {
        let mut items = zeroed::<(u64, u64)>(len, group)?;
        par_rows(m, &mut items, |i, out| keyed_row(k, x, d, aux, i, out, |j| ((i as u64) << 32) | j as u64));
        sort_by_key_then_payload(&mut items)?;
        unpack(&items, rows, |p| ((p >> 32) as usize, (p & 0xffff_ffff) as usize))
    }
}

/// All pairs sorted, for groups of at most [`MAX_WORD_ROWS`] rows: see [`super::words`].
fn all_sorted_words<K: Kernel>(k: K, x: &[f64], d: usize, aux: &[f64], rows: &[u32], len: usize) -> Result<Pairs> {
    let m = aux.len();
    let group = || format!("the {len} pairs of a group of {m} events");
    let g = words::Rows { k, x, d, aux };
    let mut buckets = words::bucketed(g, len)?;
    drop(std::mem::take(&mut buckets.spare));
    let (mut a, mut b) = (zeroed::<u32>(len, group)?, zeroed::<u32>(len, group)?);
    words::finish(g, &mut buckets, rows, &mut a, &mut b);
    Ok(Pairs { a, b, dist: f64_vec(buckets.words) })
}

/// The ids of a group's events by position, gathered into the id columns by
/// [`all_sorted_buffers`]: 8-byte values (`Int64`, `UInt64` ids) or 4-byte ones (`Int32`,
/// `UInt32` ids, or row numbers for ids that `take` gathers later).
pub(crate) enum IdVals {
    /// 8-byte ids.
    Wide(Vec<u64>),
    /// 4-byte ids or row numbers.
    Narrow(Vec<u32>),
}

/// All pairs of a group of at most [`MAX_WORD_ROWS`] rows, sorted, as Arrow buffers: `id_1` and
/// `id_2` (`vals` gathered, `len` values each) and the distances (`len` `f64`), written straight
/// into the buffers the batches will share (no intermediate row numbers, no gather afterwards).
/// The word sort's first buffer, free after its scatter, becomes `id_1` (or both 4-byte id
/// columns), and the scatter buffer becomes the distances: memory that is faulted in once.
pub(crate) fn all_sorted_buffers(
    x: &[f64],
    m: usize,
    d: usize,
    metric: Metric,
    vals: &IdVals,
) -> Result<(Buffer, Buffer, Buffer)> {
    check_matrix("group", x, m, d)?;
    let n = match vals {
        IdVals::Wide(v) => v.len(),
        IdVals::Narrow(v) => v.len(),
    };
    if n != m {
        return Err(DistanceError::Shape(format!("{n} ids for {m} rows")));
    }
    if m > MAX_WORD_ROWS {
        return Err(DistanceError::InvalidArgument(format!("a group of {m} events is sorted by group_pairs")));
    }
    let group = || format!("the pairs of a group of {m} events");
    checked_pairs::<[u64; 2]>(m, group)?;
    let len = pair_count(m).unwrap_or(0);
    if len == 0 {
        return Ok((
            Buffer::from_vec(Vec::<u64>::new()),
            Buffer::from_vec(Vec::<u64>::new()),
            Buffer::from_vec(Vec::<u64>::new()),
        ));
    }
    let aux = metric.row_aux(x, m, d);
    crate::dispatch_metric!(metric, k => {
        let g = words::Rows { k, x, d, aux: &aux };
        let mut buckets = words::bucketed(g, len)?;
        let spare = std::mem::take(&mut buckets.spare);
        let mut first = if spare.len() == len { spare } else { zeroed::<u64>(len, group)? };
        let (one, two) = match vals {
            IdVals::Wide(v) => {
                let mut second = zeroed::<u64>(len, group)?;
                words::finish(g, &mut buckets, v, &mut first, &mut second);
                (Buffer::from_vec(first), Buffer::from_vec(second))
            }
            IdVals::Narrow(v) => {
                // SAFETY: `first` holds `len` initialised `u64`s, i.e. `2 * len` `u32`s (every bit
                // pattern is a valid `u32`, and a `u64` buffer is aligned for `u32`).
                let halves = unsafe { std::slice::from_raw_parts_mut(first.as_mut_ptr().cast::<u32>(), 2 * len) };
                let (one, two) = halves.split_at_mut(len);
                words::finish(g, &mut buckets, v, one, two);
                let both = Buffer::from_vec(first);
                (both.slice_with_length(0, len * 4), both.slice_with_length(len * 4, len * 4))
            }
        };
        Ok((one, two, Buffer::from_vec(buckets.words)))
    })
}

/// Where [`all_sorted_into`] writes the ids: two columns of the width of the [`IdVals`].
pub(crate) enum IdOut<'a> {
    /// 8-byte ids.
    Wide(&'a mut [u64], &'a mut [u64]),
    /// 4-byte ids or row numbers.
    Narrow(&'a mut [u32], &'a mut [u32]),
}

/// [`all_sorted_buffers`] into caller slices (a group's part of a wave's columns): `ids` and
/// `dist` (the distances' bits) hold exactly the group's `m(m-1)/2` pairs.
pub(crate) fn all_sorted_into(
    x: &[f64],
    m: usize,
    d: usize,
    metric: Metric,
    vals: &IdVals,
    ids: IdOut<'_>,
    dist: &mut [u64],
) -> Result<()> {
    check_matrix("group", x, m, d)?;
    let len = pair_count(m).filter(|_| m <= MAX_WORD_ROWS).unwrap_or(usize::MAX);
    if dist.len() != len {
        return Err(DistanceError::Shape(format!("{} distances for a group of {m} events", dist.len())));
    }
    if len == 0 {
        return Ok(());
    }
    let aux = metric.row_aux(x, m, d);
    crate::dispatch_metric!(metric, k => {
        let g = words::Rows { k, x, d, aux: &aux };
        let mut buckets = words::bucketed(g, len)?;
        drop(std::mem::take(&mut buckets.spare));
        match (vals, ids) {
            (IdVals::Wide(v), IdOut::Wide(one, two)) if v.len() == m && one.len() == len && two.len() == len => {
                words::finish(g, &mut buckets, v, one, two)
            }
            (IdVals::Narrow(v), IdOut::Narrow(one, two)) if v.len() == m && one.len() == len && two.len() == len => {
                words::finish(g, &mut buckets, v, one, two)
            }
            _ => return Err(DistanceError::Shape(format!("id values or columns do not fit a group of {m} events"))),
        }
        dist.copy_from_slice(&buckets.words);
        Ok(())
    })
}

/// A vector of `f64` bit patterns as the `f64`s, without copying.
fn f64_vec(bits: Vec<u64>) -> Vec<f64> {
    let mut bits = std::mem::ManuallyDrop::new(bits);
    let (ptr, len, cap) = (bits.as_mut_ptr(), bits.len(), bits.capacity());
    // SAFETY: `u64` and `f64` have the same size and alignment and every bit pattern is a valid
    // `f64`, so the allocation (with its layout) and its `len` initialised values carry over.
    unsafe { Vec::from_raw_parts(ptr.cast::<f64>(), len, cap) }
}

/// Row `i`'s distances to rows `i+1..` as `(dist_key, payload(j))` items.
#[inline(always)]
fn keyed_row<K: Kernel, P>(
    k: K,
    x: &[f64],
    d: usize,
    aux: &[f64],
    i: usize,
    out: &mut [(u64, P)],
    payload: impl Fn(usize) -> P,
) {
    let mut buf = [0.0f64; 256];
    let mut j0 = i + 1;
    for chunk in out.chunks_mut(buf.len()) {
        let dist = &mut buf[..chunk.len()];
        row_range(k, x, d, aux, i, j0, dist);
        for (t, (o, &v)) in chunk.iter_mut().zip(dist.iter()).enumerate() {
            *o = (dist_key(v), payload(j0 + t));
        }
        j0 += chunk.len();
    }
}

/// Distances of row `i` to rows `j0..j0 + out.len()`.
#[inline(always)]
fn row_range<K: Kernel>(k: K, x: &[f64], d: usize, aux: &[f64], i: usize, j0: usize, out: &mut [f64]) {
    row_to_rows(k, &x[i * d..(i + 1) * d], aux[i], &x[j0 * d..], &aux[j0..], out);
}

/// Sorted `(key, payload)` items back to columns, in parallel.
fn unpack<P: Copy + Send + Sync>(
    items: &[(u64, P)],
    rows: &[u32],
    split: impl Fn(P) -> (usize, usize) + Sync,
) -> Result<Pairs> {
    let n = items.len();
    let what = || format!("{n} pairs");
    let (mut a, mut b, mut dist) = (zeroed::<u32>(n, what)?, zeroed::<u32>(n, what)?, zeroed::<f64>(n, what)?);
    const CHUNK: usize = 1 << 16;
    a.par_chunks_mut(CHUNK)
        .zip(b.par_chunks_mut(CHUNK))
        .zip(dist.par_chunks_mut(CHUNK))
        .zip(items.par_chunks(CHUNK))
        .for_each(|(((a, b), dist), items)| {
            for (((a, b), dist), &(key, p)) in a.iter_mut().zip(b.iter_mut()).zip(dist.iter_mut()).zip(items) {
                let (i, j) = split(p);
                *a = rows[i];
                *b = rows[j];
                *dist = key_dist(key);
            }
        });
    Ok(Pairs { a, b, dist })
}

/// `top_k` and/or `max_distance`: rows in parallel blocks, each row's candidates selected from a
/// row buffer, then deduplicated (a pair may be chosen from both ends) and sorted.
fn selected<K: Kernel>(k: K, x: &[f64], d: usize, aux: &[f64], rows: &[u32], opts: &PairOptions) -> Result<Pairs> {
    let m = aux.len();
    let limit = opts.max_distance.map(dist_key);
    let rows_per_task = (m / (rayon::current_num_threads() * 8)).clamp(1, 1024);
    let oom = |n: usize| DistanceError::OutOfMemory {
        what: format!("{n} more candidate pairs of a group of {m} events"),
        bytes: n as u128 * 16,
    };
    let parts: Vec<Vec<(u64, u64)>> = (0..m)
        .into_par_iter()
        .step_by(rows_per_task)
        .map(|start| -> Result<Vec<(u64, u64)>> {
            let mut found: Vec<(u64, u64)> = Vec::new();
            let mut buf = vec![0.0; m];
            let mut cand: Vec<(u64, u32)> = Vec::new();
            for i in start..(start + rows_per_task).min(m) {
                let pack = |j: usize| if i < j { ((i as u64) << 32) | j as u64 } else { ((j as u64) << 32) | i as u64 };
                match opts.top_k {
                    None => {
                        // Threshold only: the upper triangle suffices.
                        let out = &mut buf[..m - 1 - i];
                        row_upper(k, x, d, aux, i, out);
                        found.try_reserve(out.len()).map_err(|_| oom(out.len()))?;
                        let lim = limit.unwrap_or(u64::MAX - 1);
                        found.extend(
                            out.iter()
                                .enumerate()
                                .map(|(t, &v)| (dist_key(v), i + 1 + t))
                                .filter(|&(key, _)| key <= lim)
                                .map(|(key, j)| (key, pack(j))),
                        );
                    }
                    Some(top_k) => {
                        let out = &mut buf[..m];
                        row_range(k, x, d, aux, i, 0, out);
                        cand.clear();
                        cand.extend(
                            out.iter()
                                .enumerate()
                                .filter(|&(j, _)| j != i)
                                .map(|(j, &v)| (dist_key(v), j as u32))
                                .filter(|&(key, _)| limit.is_none_or(|l| key <= l)),
                        );
                        if top_k < cand.len() {
                            if top_k == 0 {
                                cand.clear();
                            } else {
                                cand.select_nth_unstable(top_k - 1);
                                cand.truncate(top_k);
                            }
                        }
                        found.try_reserve(cand.len()).map_err(|_| oom(cand.len()))?;
                        found.extend(cand.iter().map(|&(key, j)| (key, pack(j as usize))));
                    }
                }
            }
            Ok(found)
        })
        .collect::<Result<_>>()?;
    let total = parts.iter().try_fold(0usize, |t, p| t.checked_add(p.len())).ok_or_else(|| oom(usize::MAX))?;
    let mut items = try_with_capacity(total, || format!("{total} selected pairs of a group of {m} events"))?;
    for p in parts {
        items.extend_from_slice(&p);
    }
    if opts.top_k.is_some() {
        items.par_sort_unstable_by_key(|&(_, p)| p);
        items.dedup_by_key(|&mut (_, p)| p);
    }
    // Unsorted, the items are in (a, b) order: rows were visited in order, or deduplicated by payload.
    if opts.sort {
        sort_by_key_then_payload(&mut items)?;
    }
    unpack(&items, rows, |p| ((p >> 32) as usize, (p & 0xffff_ffff) as usize))
}
