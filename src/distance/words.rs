//! All of a group's pairs sorted by distance, for groups of at most [`MAX_WORD_ROWS`] events.
//!
//! Why a scheme of its own: this is the big output (`m(m-1)/2` rows), and its cost is memory
//! traffic and sorting, not arithmetic. Each pair is one `u64` *word*: the distance's
//! [`dist_key`] with its low `2 * jbits` bits replaced by the pair `i << jbits | j` (`jbits` bits
//! hold a row number, 13 for 5,000 events), so a word keeps 38 of the key's 64 bits for 5,000
//! events and at least 32 bits up to 65,536. Sorting the words sorts by `(truncated key, i, j)`;
//! with 38 bits pairs rarely share a truncated key, so almost nothing is left to fix afterwards.
//!
//! 1. The words are computed row by row in parallel, tracking the range of the truncated keys.
//! 2. One stable, parallel scatter by the most significant varying bits (up to 12, about 4096
//!    words per bucket) into buckets; NaN distances get a bucket of their own, the last. Within
//!    a bucket the words stay in `(i, j)` order. Small groups skip it and form one bucket.
//! 3. Each bucket, in parallel and in cache: a most-significant-digit counting sort on the bits
//!    that vary within it (recursing into the rare long runs, insertion sort for short ones);
//!    then the exact distances are recomputed (the same operations in the same order as step 1, so
//!    bit-identical), runs of equal truncated keys are put in `(full key, i, j)` order, and the
//!    bucket's outputs are written at its offset: the two ids gathered from the caller's values
//!    and the distance over the bucket's words (the scatter buffer becomes the distance column).
//!
//! The word buffer of step 1 is dead after the scatter; callers reuse it for an id column.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use rayon::prelude::*;

use super::metric::{row_to_rows, Kernel};
use super::pdist::{par_rows, zeroed};
use super::sort::{dist_key, key_dist, scatter};
use super::{try_with_capacity, Result};

/// Groups up to this many events are sorted as words (a pair's `(i, j)` fits in 32 bits).
pub(crate) const MAX_WORD_ROWS: usize = 1 << 16;
/// Below this many pairs the group is one bucket (it fits in cache as it is).
const SCATTER_MIN: usize = 1 << 15;
/// Most bits of the scatter's digit: up to 4096 buckets (~3,000 words each for 12.5M pairs).
const BUCKET_BITS: u32 = 12;
/// Runs up to this long are finished by insertion sort.
const SMALL: usize = 32;

/// Where the parts of a word are, for a group of `m` events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    jbits: u32,
    pbits: u32,
}

impl Layout {
    fn new(m: usize) -> Self {
        let jbits = (usize::BITS - m.saturating_sub(1).leading_zeros()).max(1);
        Self { jbits, pbits: 2 * jbits }
    }

    #[inline(always)]
    fn word(self, key: u64, i: usize, j: usize) -> u64 {
        ((key >> self.pbits) << self.pbits) | ((i as u64) << self.jbits) | j as u64
    }

    /// The truncated key (`u64::MAX >> pbits` for NaN, more than any number's).
    #[inline(always)]
    fn top(self, w: u64) -> u64 {
        w >> self.pbits
    }

    #[inline(always)]
    fn nan_top(self) -> u64 {
        u64::MAX >> self.pbits
    }

    #[inline(always)]
    fn payload(self, w: u64) -> u32 {
        (w & ((1u64 << self.pbits) - 1)) as u32
    }

    #[inline(always)]
    fn split(self, p: u32) -> (usize, usize) {
        ((p >> self.jbits) as usize, (p & ((1u32 << self.jbits) - 1)) as usize)
    }
}

/// A group's rows: `x` is `m x d` row-major, `aux` the metric's per-row values ([`Metric::row_aux`](super::Metric)).
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a, K> {
    pub(crate) k: K,
    pub(crate) x: &'a [f64],
    pub(crate) d: usize,
    pub(crate) aux: &'a [f64],
}

/// A group's words after steps 1 and 2.
pub(crate) struct Buckets {
    /// The words, bucket after bucket; [`finish`] overwrites them with the distances' bits.
    pub(crate) words: Vec<u64>,
    /// The step-1 buffer, free after the scatter (`len` values of garbage), or empty.
    pub(crate) spare: Vec<u64>,
    starts: Vec<usize>,
    layout: Layout,
}

/// Steps 1 and 2 for the `m` rows of `x` (`m <= MAX_WORD_ROWS`, `len = m(m-1)/2`).
pub(crate) fn bucketed<K: Kernel>(g: Rows<'_, K>, len: usize) -> Result<Buckets> {
    let Rows { k, x, d, aux } = g;
    let m = aux.len();
    debug_assert!(m <= MAX_WORD_ROWS);
    let layout = Layout::new(m);
    let group = || format!("the {len} pairs of a group of {m} events");
    let mut words = zeroed::<u64>(len, group)?;
    let (lo, hi) = (AtomicU64::new(u64::MAX), AtomicU64::new(0));
    par_rows(m, &mut words, |i, out| {
        let (mut rlo, mut rhi) = (u64::MAX, 0u64);
        let nan = layout.nan_top();
        let mut buf = [0.0f64; 256];
        let mut j0 = i + 1;
        for chunk in out.chunks_mut(buf.len()) {
            let dist = &mut buf[..chunk.len()];
            row_to_rows(k, &x[i * d..(i + 1) * d], aux[i], &x[j0 * d..], &aux[j0..], dist);
            for (t, (o, &v)) in chunk.iter_mut().zip(dist.iter()).enumerate() {
                let w = layout.word(dist_key(v), i, j0 + t);
                let top = layout.top(w);
                if top != nan {
                    rlo = rlo.min(top);
                    rhi = rhi.max(top);
                }
                *o = w;
            }
            j0 += chunk.len();
        }
        lo.fetch_min(rlo, Relaxed);
        hi.fetch_max(rhi, Relaxed);
    });
    let (lo, hi) = (lo.into_inner(), hi.into_inner());
    let one = |words: Vec<u64>| Buckets { words, spare: Vec::new(), starts: vec![0, len], layout };
    if len < SCATTER_MIN || lo > hi {
        return Ok(one(words));
    }
    let span = hi - lo;
    // About 4096 words or more per bucket on average, up to 4096 buckets.
    let bits = (usize::BITS - len.leading_zeros()).saturating_sub(12).clamp(1, BUCKET_BITS);
    let shift = (u64::BITS - span.leading_zeros()).saturating_sub(bits);
    let nan_bucket = (span >> shift) as usize + 1;
    let nan = layout.nan_top();
    let digit = move |&w: &u64| {
        let t = layout.top(w);
        if t == nan {
            nan_bucket
        } else {
            ((t - lo) >> shift) as usize
        }
    };
    let mut dst = try_with_capacity(len, || format!("sort scratch for {len} pairs"))?;
    Ok(match scatter(&words, &mut dst, nan_bucket + 1, digit) {
        Some(starts) => Buckets { words: dst, spare: words, starts, layout },
        None => one(words),
    })
}

/// Step 3: sorts every bucket and writes the pairs in order: `one[p] = vals[i]`, `two[p] =
/// vals[j]` and, over `b.words`, the distance's bits.
pub(crate) fn finish<K: Kernel, T: Copy + Send + Sync>(
    g: Rows<'_, K>,
    b: &mut Buckets,
    vals: &[T],
    one: &mut [T],
    two: &mut [T],
) {
    let Rows { k, x, d, aux } = g;
    let layout = b.layout;
    let mut tasks = Vec::with_capacity(b.starts.len());
    let (mut r1, mut r2, mut rw) = (one, two, &mut b.words[..]);
    for w in b.starts.windows(2) {
        let n = w[1] - w[0];
        if n == 0 {
            continue;
        }
        let (h1, t1) = std::mem::take(&mut r1).split_at_mut(n);
        let (h2, t2) = std::mem::take(&mut r2).split_at_mut(n);
        let (hw, tw) = std::mem::take(&mut rw).split_at_mut(n);
        tasks.push((hw, h1, h2));
        (r1, r2, rw) = (t1, t2, tw);
    }
    let run = |s: &mut Scratch, (w, o1, o2): (&mut [u64], &mut [T], &mut [T])| {
        s.sorted.clear();
        s.sorted.extend_from_slice(w);
        sort_local(&mut s.sorted, &mut s.tmp, &mut s.counts, layout);
        s.items.clear();
        s.items.extend(s.sorted.iter().map(|&w| (0u64, layout.payload(w))));
        full_keys(k, x, d, aux, layout, &mut s.items);
        // Equal truncated keys: order by the full key (then the payload).
        let mut a = 0;
        while a < s.sorted.len() {
            let top = layout.top(s.sorted[a]);
            let mut e = a + 1;
            while e < s.sorted.len() && layout.top(s.sorted[e]) == top {
                e += 1;
            }
            if e - a > 1 {
                finish_sort(&mut s.items[a..e]);
            }
            a = e;
        }
        for (((w, o1), o2), &(key, p)) in w.iter_mut().zip(o1.iter_mut()).zip(o2.iter_mut()).zip(s.items.iter()) {
            let (i, j) = layout.split(p);
            *o1 = vals[i];
            *o2 = vals[j];
            *w = key_dist(key).to_bits();
        }
    };
    if tasks.len() == 1 {
        tasks.into_iter().for_each(|t| run(&mut Scratch::default(), t));
    } else {
        tasks.into_par_iter().for_each_init(Scratch::default, run);
    }
}

/// One bucket task's buffers, reused across buckets.
#[derive(Default)]
struct Scratch {
    sorted: Vec<u64>,
    tmp: Vec<u64>,
    counts: Vec<u32>,
    items: Vec<(u64, u32)>,
}

/// Sorts `words` (whose equal truncated keys are in payload order) by value: a counting sort on
/// the most significant varying bits of their truncated keys, recursing into long runs.
fn sort_local(words: &mut [u64], tmp: &mut Vec<u64>, counts: &mut Vec<u32>, layout: Layout) {
    let n = words.len();
    if n <= SMALL {
        insertion_sort(words);
        return;
    }
    let (mut lo, mut hi) = (u64::MAX, 0);
    for &w in words.iter() {
        let t = layout.top(w);
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if lo == hi {
        // One truncated key: the words are in payload order, i.e. sorted.
        return;
    }
    let span = hi - lo;
    let span_bits = u64::BITS - span.leading_zeros();
    let bits = span_bits.min(usize::BITS - n.leading_zeros() + 1).min(16);
    let shift = span_bits - bits;
    let digit = |w: u64| ((layout.top(w) - lo) >> shift) as usize;
    counts.clear();
    counts.resize((span >> shift) as usize + 1, 0);
    for &w in words.iter() {
        counts[digit(w)] += 1;
    }
    let mut sum = 0u32;
    let mut long = false;
    for c in counts.iter_mut() {
        let v = *c;
        long |= v as usize > SMALL;
        *c = sum;
        sum += v;
    }
    tmp.clear();
    tmp.resize(n, 0);
    for &w in words.iter() {
        let s = &mut counts[digit(w)];
        tmp[*s as usize] = w;
        *s += 1;
    }
    words.copy_from_slice(tmp);
    if shift == 0 {
        // Runs of one truncated key each, in payload order: sorted.
        return;
    }
    if long {
        // `counts` now holds each digit's end; long runs sort recursively (own counters).
        let ends: Vec<usize> = counts.iter().map(|&e| e as usize).collect();
        let mut start = 0;
        let mut inner = Vec::new();
        for e in ends {
            if e - start > SMALL {
                sort_local(&mut words[start..e], tmp, &mut inner, layout);
            }
            start = e;
        }
    }
    // Short runs (and the sorted long ones): one adaptive pass.
    insertion_sort(words);
}

#[inline]
fn insertion_sort(v: &mut [u64]) {
    for t in 1..v.len() {
        let e = v[t];
        let mut s = t;
        while s > 0 && v[s - 1] > e {
            v[s] = v[s - 1];
            s -= 1;
        }
        v[s] = e;
    }
}

/// Sets each item's key to the [`dist_key`] of its pair, four pairs at a time (independent
/// accumulators; each sum runs over the features in order, exactly as [`row_to_rows`], so the
/// distances are bit-identical to step 1's).
fn full_keys<K: Kernel>(k: K, x: &[f64], d: usize, aux: &[f64], layout: Layout, items: &mut [(u64, u32)]) {
    let split = |p: u32| layout.split(p);
    let row = |r: usize| &x[r * d..(r + 1) * d];
    let mut quads = items.chunks_exact_mut(4);
    for q in &mut quads {
        let (i0, j0) = split(q[0].1);
        let (i1, j1) = split(q[1].1);
        let (i2, j2) = split(q[2].1);
        let (i3, j3) = split(q[3].1);
        let (a0, b0, a1, b1) = (row(i0), row(j0), row(i1), row(j1));
        let (a2, b2, a3, b3) = (row(i2), row(j2), row(i3), row(j3));
        let (mut s0, mut s1, mut s2, mut s3) = (0.0, 0.0, 0.0, 0.0);
        for f in 0..d {
            s0 = K::reduce(s0, K::term(a0[f], b0[f]));
            s1 = K::reduce(s1, K::term(a1[f], b1[f]));
            s2 = K::reduce(s2, K::term(a2[f], b2[f]));
            s3 = K::reduce(s3, K::term(a3[f], b3[f]));
        }
        q[0].0 = dist_key(k.finish(s0, aux[i0], aux[j0]));
        q[1].0 = dist_key(k.finish(s1, aux[i1], aux[j1]));
        q[2].0 = dist_key(k.finish(s2, aux[i2], aux[j2]));
        q[3].0 = dist_key(k.finish(s3, aux[i3], aux[j3]));
    }
    for e in quads.into_remainder() {
        let (i, j) = split(e.1);
        e.0 = dist_key(k.dist(row(i), row(j), aux[i], aux[j]));
    }
}

/// Sorts one run of equal truncated keys by `(full key, payload)` (insertion sort: runs are
/// short, and usually sorted already).
#[inline]
fn finish_sort(items: &mut [(u64, u32)]) {
    if items.len() > 24 {
        items.sort_unstable();
        return;
    }
    for t in 1..items.len() {
        let e = items[t];
        let mut s = t;
        while s > 0 && items[s - 1] > e {
            items[s] = items[s - 1];
            s -= 1;
        }
        items[s] = e;
    }
}
