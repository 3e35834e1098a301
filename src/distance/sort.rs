//! Sorting pairs by distance: an order-preserving `f64 -> u64` key and a parallel radix sort.
//!
//! Sorting, not computing distances, is what made "all pairs sorted by distance" slow elsewhere
//! (a comparison sort of 12.5M pairs takes ~1 s on this class of machine). Distances become
//! [`dist_key`]s, integers that sort like the floats (NaN last), paired with a payload whose
//! natural order is the tie-break order. [`sort_by_key_then_payload`] then sorts:
//! - small inputs with `sort_unstable` on `(key, payload)`;
//! - large ones with a least-significant-digit radix sort on the 22 most significant *varying*
//!   bits of the key (two 11-bit passes at most, done in parallel with per-chunk histograms),
//!   followed by a comparison sort of each run of equal radix digits (in parallel). The runs are
//!   short (a few dozen elements for millions of pairs), so the fix-up is cheap and cache-local;
//!   the result is exactly the `(key, payload)` order.
//!
//! All of a group's pairs (the big case) use a leaner scheme, see `words.rs`: 8-byte words
//! (the key's top bits, then `(i, j)`), one stable scatter (`scatter`) by the most significant
//! varying bits, then per bucket, in cache, a counting sort and a finish by the full key.

use rayon::prelude::*;

/// Below this many elements a comparison sort wins.
const RADIX_MIN_LEN: usize = 1 << 15;
const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;
const RADIX_BITS: u32 = 2 * DIGIT_BITS;

/// An integer that sorts like the distance: `a < b` iff `dist_key(a) < dist_key(b)` for non-NaN
/// values (with `-0.0 < 0.0`), and every NaN maps to `u64::MAX`, after everything else.
#[inline(always)]
pub fn dist_key(x: f64) -> u64 {
    if x.is_nan() {
        return u64::MAX;
    }
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// The inverse of [`dist_key`] (NaN for `u64::MAX`).
#[inline(always)]
pub fn key_dist(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// Sorts `items` by `(key, payload)`; `OutOfMemory` (and `items` untouched) when the radix
/// sort's scratch, as large as `items`, cannot be allocated.
pub fn sort_by_key_then_payload<P: Copy + Ord + Send + Sync>(items: &mut Vec<(u64, P)>) -> super::Result<()> {
    if items.len() < RADIX_MIN_LEN {
        items.sort_unstable();
        return Ok(());
    }
    // The range of the keys, NaN (u64::MAX) aside so that a few NaNs do not coarsen the digits.
    let (min, max) = items
        .par_iter()
        .fold(|| (u64::MAX, 0), |(lo, hi), e| (lo.min(e.0), if e.0 == u64::MAX { hi } else { hi.max(e.0) }))
        .reduce(|| (u64::MAX, 0), |(a, b), (c, d)| (a.min(c), b.max(d)));
    let span_bits = 64 - max.saturating_sub(min).leading_zeros();
    let shift = span_bits.saturating_sub(RADIX_BITS);
    let top = (1u64 << span_bits.min(RADIX_BITS)) - 1;
    // NaN keys clamp into the top digit; the run fix-up below puts them after the finite keys.
    let digit_of = move |k: u64| ((k - min) >> shift).min(top);
    let n = items.len();
    let mut scratch: Vec<(u64, P)> = super::try_with_capacity(n, || format!("sort scratch for {n} pairs"))?;
    let mut passes_done = 0;
    for pass in 0..span_bits.min(RADIX_BITS).div_ceil(DIGIT_BITS) {
        let bit = pass * DIGIT_BITS;
        let digit = move |k: u64| (digit_of(k) >> bit) as usize & (BUCKETS - 1);
        let moved = if passes_done % 2 == 0 {
            radix_pass(items, &mut scratch, BUCKETS, |e| digit(e.0))
        } else {
            radix_pass(&scratch, items, BUCKETS, |e| digit(e.0))
        };
        if moved {
            passes_done += 1;
        }
    }
    if passes_done % 2 == 1 {
        std::mem::swap(items, &mut scratch);
    }
    // Order each run of equal digits by the whole key, then the payload.
    items.par_chunk_by_mut(|a, b| digit_of(a.0) == digit_of(b.0)).for_each(|run| {
        if run.len() > 1 {
            run.sort_unstable();
        }
    });
    Ok(())
}

/// A raw output pointer shared by the scatter tasks.
#[derive(Clone, Copy)]
struct Out<T>(*mut T);
// SAFETY: every task writes a disjoint set of positions (its own bucket offsets), see `radix_pass`.
unsafe impl<T: Send> Send for Out<T> {}
unsafe impl<T: Send> Sync for Out<T> {}

impl<T> Out<T> {
    /// The pointer to position `i` (a method, so closures capture the whole `Send` wrapper).
    fn at(&self, i: usize) -> *mut T {
        self.0.wrapping_add(i)
    }
}

/// One stable counting-sort pass of `src` into `dst` by `digit` (in `0..buckets`); `false` (and
/// `dst` untouched) when every element has the same digit.
fn radix_pass<T: Copy + Send + Sync>(
    src: &[T],
    dst: &mut Vec<T>,
    buckets: usize,
    digit: impl Fn(&T) -> usize + Sync,
) -> bool {
    scatter(src, dst, buckets, digit).is_some()
}

/// A stable counting-sort scatter of `src` into `dst` by `digit` (in `0..buckets`), in parallel
/// chunks; returns the start of every bucket in `dst` (plus `src.len()` at the end), or `None`
/// (and `dst` untouched) when every element has the same digit.
pub(crate) fn scatter<T: Copy + Send + Sync>(
    src: &[T],
    dst: &mut Vec<T>,
    buckets: usize,
    digit: impl Fn(&T) -> usize + Sync,
) -> Option<Vec<usize>> {
    let len = src.len();
    let chunk = len.div_ceil(rayon::current_num_threads() * 4).max(1 << 14);
    let hists: Vec<Vec<usize>> = src
        .par_chunks(chunk)
        .map(|c| {
            let mut h = vec![0usize; buckets];
            for e in c {
                h[digit(e)] += 1;
            }
            h
        })
        .collect();
    let mut offsets = vec![vec![0usize; buckets]; hists.len()];
    let mut starts = Vec::with_capacity(buckets + 1);
    let mut sum = 0;
    for b in 0..buckets {
        let total: usize = hists.iter().map(|h| h[b]).sum();
        if total == len {
            return None;
        }
        starts.push(sum);
        for (c, h) in hists.iter().enumerate() {
            offsets[c][b] = sum;
            sum += h[b];
        }
    }
    starts.push(len);
    dst.clear();
    dst.reserve(len);
    super::pdist::advise_huge(dst.as_ptr(), dst.capacity());
    let out = Out(dst.as_mut_ptr());
    src.par_chunks(chunk).zip(offsets).for_each(|(c, mut off)| {
        for e in c {
            let b = digit(e);
            // SAFETY: `off[b]` walks this chunk's own range of bucket `b` (prefix sums of the
            // histograms, bucket-major then chunk-major), so positions are in `0..len`, within
            // `dst`'s capacity, and no two tasks or elements write the same position.
            unsafe { out.at(off[b]).write(*e) };
            off[b] += 1;
        }
    });
    // SAFETY: the histograms count every element of `src` exactly once, so the scatter above
    // initialised all `len` positions.
    unsafe { dst.set_len(len) };
    Some(starts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_floats_with_nan_last() {
        let xs = [f64::NEG_INFINITY, -2.0, -0.0, 0.0, 1e-300, 0.5, 1.0, 3.0, f64::INFINITY];
        let keys: Vec<u64> = xs.iter().map(|&x| dist_key(x)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(dist_key(f64::NAN) > dist_key(f64::INFINITY) && dist_key(-f64::NAN) == u64::MAX);
        for x in xs {
            assert_eq!(key_dist(dist_key(x)).to_bits(), x.to_bits());
        }
        assert!(key_dist(u64::MAX).is_nan());
    }

    #[test]
    fn radix_equals_comparison_sort() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (n, spread) in [(100_000usize, 1000.0), (70_000, 1e-9), (50_000, 0.0)] {
            let mut items: Vec<(u64, u32)> = (0..n as u32)
                .map(|i| {
                    let r = next();
                    let x = if r % 97 == 0 { f64::NAN } else { 1.0 + (r % 4096) as f64 / 4096.0 * spread };
                    (dist_key(x), i)
                })
                .collect();
            items.reverse();
            let mut expected = items.clone();
            expected.sort_unstable();
            sort_by_key_then_payload(&mut items).unwrap();
            assert_eq!(items, expected, "n={n} spread={spread}");
        }
    }
}
