//! Condensed pairwise distances within one matrix, exactly scipy's `pdist` layout.
//!
//! The output is the upper triangle in row-major order: `(0,1), (0,2), ..., (0,n-1), (1,2), ...`,
//! `n(n-1)/2` values. Work is split into blocks of consecutive rows holding about the same number
//! of pairs (early rows have more), and each rayon task writes only its own slice of the output,
//! so there is no synchronisation and no unsafe code.

use rayon::prelude::*;

use super::metric::{row_to_rows, Kernel};
use super::{check_matrix, try_zeroed, DistanceError, Metric, Result, Zeroable};

/// Pairs per parallel task, below which splitting costs more than it saves.
const MIN_PAIRS_PER_TASK: usize = 1 << 15;

/// Number of pairs of `n` rows, `n(n-1)/2`, or `None` on overflow.
pub fn pair_count(n: usize) -> Option<usize> {
    if n < 2 {
        return Some(0);
    }
    if n % 2 == 0 {
        (n / 2).checked_mul(n - 1)
    } else {
        n.checked_mul((n - 1) / 2)
    }
}

/// Number of pairs of `n` rows, `n(n-1)/2`, exact (for sizes and messages; never overflows).
pub fn pair_count_u128(n: usize) -> u128 {
    let n = n as u128;
    n * n.saturating_sub(1) / 2
}

/// The pair count of `n` rows as a `usize` for an allocation of `T`s, or `OutOfMemory` when it
/// overflows or could not fit in memory anyway (`what` says whose pairs, e.g. "pdist of 9 rows").
pub(crate) fn checked_pairs<T>(n: usize, what: impl FnOnce() -> String) -> Result<usize> {
    let count = pair_count_u128(n);
    let describe = || format!("{}: {count} pairs", what());
    super::alloc_bytes::<T>(count, describe)?;
    pair_count(n).ok_or_else(|| DistanceError::OutOfMemory {
        what: format!("{n} rows: {count} pairs"),
        bytes: count.saturating_mul(std::mem::size_of::<T>() as u128),
    })
}

/// Condensed distances of the `n` rows of `x` (`n * d` values, row-major).
///
/// ```
/// use pktstream::distance::{pdist, Metric};
/// let x = [0.0, 0.0, 3.0, 4.0, 6.0, 8.0]; // 3 rows x 2 features
/// assert_eq!(pdist(&x, 3, 2, Metric::Euclidean).unwrap(), vec![5.0, 10.0, 5.0]);
/// ```
pub fn pdist(x: &[f64], n: usize, d: usize, metric: Metric) -> Result<Vec<f64>> {
    check_matrix("pdist input", x, n, d)?;
    let len = checked_pairs::<f64>(n, || format!("pdist of {n} rows"))?;
    let mut out = zeroed(len, || format!("pdist of {n} rows: {len} distances"))?;
    pdist_into(x, n, d, metric, &mut out)?;
    Ok(out)
}

/// `len` zeros for a large output about to be written once, in parallel, or `OutOfMemory` (the
/// allocation is fallible: see [`super::try_zeroed`]).
///
/// Large zeroed vectors come from `calloc` as fresh, untouched pages that the first write faults
/// in one 4 KiB page at a time; for 100 MB of pairs that costs more than computing them (~60 ms
/// of CPU for 12.5M distances, against ~40 ms for the arithmetic). On Linux the pages are
/// therefore marked `MADV_HUGEPAGE` before the first write, so they fault in as 2 MiB pages
/// where the system allows it (transparent huge pages in `madvise` or `always` mode). The advice
/// is only a hint: any failure leaves ordinary pages.
pub(crate) fn zeroed<T: Zeroable>(len: usize, what: impl FnOnce() -> String) -> Result<Vec<T>> {
    let v = try_zeroed(len, what)?;
    advise_huge(v.as_ptr(), v.len());
    Ok(v)
}

/// Advises `MADV_HUGEPAGE` for the untouched memory at `ptr`, `len` values of `T` (see
/// [`zeroed`]); below 4 MiB, does nothing.
#[cfg(target_os = "linux")]
pub(crate) fn advise_huge<T>(ptr: *const T, len: usize) {
    const PAGE: usize = 4096;
    const MADV_HUGEPAGE: i32 = 14;
    extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
    }
    let bytes = len.saturating_mul(std::mem::size_of::<T>());
    if bytes < 4 << 20 {
        return;
    }
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + bytes) / PAGE * PAGE;
    if end > start {
        // SAFETY: `start..end` lies within the allocation and is page-aligned; MADV_HUGEPAGE
        // changes neither the contents nor the validity of the mapping, only how later page
        // faults are served. The result is ignored on purpose (the advice is optional).
        unsafe {
            madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn advise_huge<T>(_: *const T, _: usize) {}

/// [`pdist`] into a caller-provided slice of exactly `n(n-1)/2` values.
pub fn pdist_into(x: &[f64], n: usize, d: usize, metric: Metric, out: &mut [f64]) -> Result<()> {
    check_matrix("pdist input", x, n, d)?;
    if pair_count(n) != Some(out.len()) {
        return Err(super::DistanceError::Shape(format!("pdist output: {} values for {n} rows", out.len())));
    }
    if n < 2 {
        return Ok(());
    }
    let aux = metric.row_aux(x, n, d);
    crate::dispatch_metric!(metric, k => run(k, x, d, &aux, out));
    Ok(())
}

/// Distances of row `i` to rows `i+1..` into `out` (length `n - 1 - i`).
#[inline(always)]
pub(crate) fn row_upper<K: Kernel>(k: K, x: &[f64], d: usize, aux: &[f64], i: usize, out: &mut [f64]) {
    row_to_rows(k, &x[i * d..(i + 1) * d], aux[i], &x[(i + 1) * d..], &aux[i + 1..], out);
}

fn run<K: Kernel>(k: K, x: &[f64], d: usize, aux: &[f64], out: &mut [f64]) {
    par_rows(aux.len(), out, |i, row| row_upper(k, x, d, aux, i, row));
}

/// Calls `f(i, slice)` for every row `i` of a condensed output of `n` rows, where `slice` is the
/// row's `n - 1 - i` values of `out`. Rows go in blocks of about equal pair counts, in parallel.
pub(crate) fn par_rows<T: Send>(n: usize, out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    if n < 2 {
        return;
    }
    let tasks = rayon::current_num_threads() * 4;
    let per_task = (out.len() / tasks).max(MIN_PAIRS_PER_TASK);
    // Cut the rows into blocks of about `per_task` pairs, each with its own output slice.
    let mut blocks = Vec::new();
    let mut rest = out;
    let mut start = 0;
    while start < n - 1 {
        let (mut end, mut len) = (start, 0);
        while end < n - 1 && len < per_task {
            len += n - 1 - end;
            end += 1;
        }
        let (head, tail) = rest.split_at_mut(len.min(rest.len()));
        blocks.push((start, end, head));
        rest = tail;
        start = end;
    }
    let run_block = |(start, end, slice): (usize, usize, &mut [T])| {
        let mut rest = slice;
        for i in start..end {
            let (row, tail) = rest.split_at_mut((n - 1 - i).min(rest.len()));
            f(i, row);
            rest = tail;
        }
    };
    if blocks.len() == 1 {
        blocks.into_iter().for_each(run_block);
    } else {
        blocks.into_par_iter().for_each(run_block);
    }
}
