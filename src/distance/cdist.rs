//! Distances between every row of one matrix and every row of another, scipy's `cdist`.
//!
//! The output is `na x nb`, row-major; blocks of output rows are computed in parallel, each task
//! writing its own rows.

use rayon::prelude::*;

use super::metric::row_to_rows;
use super::{check_matrix, DistanceError, Metric, Result};

/// Output values per parallel task, below which splitting costs more than it saves.
const MIN_VALUES_PER_TASK: usize = 1 << 15;

/// The `na x nb` distances between the rows of `xa` (`na x d`) and `xb` (`nb x d`), row-major.
///
/// ```
/// use pktstream::distance::{cdist, Metric};
/// let a = [0.0, 0.0, 1.0, 1.0]; // 2 rows x 2 features
/// let b = [3.0, 4.0];           // 1 row
/// assert_eq!(cdist(&a, 2, &b, 1, 2, Metric::Cityblock).unwrap(), vec![7.0, 5.0]);
/// ```
pub fn cdist(xa: &[f64], na: usize, xb: &[f64], nb: usize, d: usize, metric: Metric) -> Result<Vec<f64>> {
    check_matrix("cdist XA", xa, na, d)?;
    check_matrix("cdist XB", xb, nb, d)?;
    let count = na as u128 * nb as u128;
    let what = || format!("cdist of {na} x {nb} rows: {count} distances");
    super::alloc_bytes::<f64>(count, what)?;
    let len = na
        .checked_mul(nb)
        .ok_or_else(|| DistanceError::OutOfMemory { what: what(), bytes: count.saturating_mul(8) })?;
    let mut out = super::pdist::zeroed(len, what)?;
    if len == 0 {
        return Ok(out);
    }
    let (aux_a, aux_b) = (metric.row_aux(xa, na, d), metric.row_aux(xb, nb, d));
    let rows_per_task = (MIN_VALUES_PER_TASK / nb).max(1).max(na / (rayon::current_num_threads() * 4)).max(1);
    crate::dispatch_metric!(metric, k => {
        out.par_chunks_mut(nb * rows_per_task).enumerate().for_each(|(t, chunk)| {
            for (r, row_out) in chunk.chunks_exact_mut(nb).enumerate() {
                let i = t * rows_per_task + r;
                row_to_rows(k, &xa[i * d..(i + 1) * d], aux_a[i], xb, &aux_b, row_out);
            }
        })
    });
    Ok(out)
}
