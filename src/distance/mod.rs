//! Pairwise-distance kernels: scipy-compatible `pdist`/`cdist`, and grouped, windowed pairs.
//!
//! Why a home-made kernel instead of calling scipy: the classic netflow pipeline does not want a
//! distance matrix, it wants *rows* — `(key, window, id_1, id_2, distance)` sorted by distance —
//! and building and sorting those rows, not computing distances, is what costs (scipy computes
//! ~200M distances/s here, but scipy + argsort + gathering ids manages ~7M sorted rows/s). So the
//! grouped path computes each group's distances straight into sort keys, sorts them with a
//! radix sort ([`sort`]; all pairs as 8-byte words, see `words.rs`) and writes the ids straight
//! into the Arrow columns (other id types through Arrow's `take`), all multi-threaded with rayon.
//!
//! Layout: [`metric`] (the metrics and their inner loops), [`pdist`] / [`cdist`] (the matrix
//! kernels, row blocks in parallel), [`pairs`] (one group's pairs: all, `top_k` or `max_distance`),
//! [`rank`] (ordering Arrow keys and ids), [`stream`] (groups to Arrow record batches, streamed),
//! [`windowed`] (event-time tumbling windows with a watermark).
//!
//! Numerics follow scipy: everything is computed in `f64`; NaN and infinity propagate as in
//! `scipy.spatial.distance` (see [`metric::Metric`]).

pub mod cdist;
mod columns;
pub mod metric;
pub mod pairs;
pub mod pdist;
pub mod pipeline;
pub mod rank;
pub mod sort;
pub mod stream;
pub mod windowed;
mod words;

#[cfg(test)]
mod tests;

pub use cdist::cdist;
pub use metric::Metric;
pub use pairs::{LargeGroup, PairOptions, Pairs, LARGE_GROUP_TOP_K};
pub use pdist::pdist;
pub use stream::{LargeGroupInfo, PairStream, PairsInput};
pub use windowed::WindowedPairs;

/// Everything the distance kernels can fail with. All but [`DistanceError::OutOfMemory`] are
/// caller errors (bad shapes, names or options) that the binding layer maps to `ValueError`;
/// `OutOfMemory` becomes `MemoryError`.
#[derive(Debug, thiserror::Error)]
pub enum DistanceError {
    /// The metric name is not one of [`Metric::NAMES`].
    #[error("unknown metric {0:?}; expected one of: {names}", names = Metric::NAMES.join(", "))]
    UnknownMetric(String),

    /// A matrix's data length, row count and feature count disagree, or two matrices differ in
    /// their feature counts.
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// Any other invalid option or input (zero window, column of an unsupported type, ...).
    #[error("{0}")]
    InvalidArgument(String),

    /// An allocation whose size grows with the input (an `m x m` or `na x nb` output, a group's
    /// pairs, their sort scratch) was refused, would overflow, or asks for more than the machine's
    /// memory (RAM + swap). Nothing is allocated in that case and the process carries on.
    #[error(
        "out of memory: {what} would take {bytes} bytes ({human}); bound the events per group with \
         max_group_events (on_large_group='top_k' or 'skip'), keep fewer pairs with top_k or \
         max_distance, or split the rows (pdist/cdist) into blocks",
        human = human_bytes(*bytes)
    )]
    OutOfMemory {
        /// What the allocation was for, e.g. `the pairs of a group of 50000 events`.
        what: String,
        /// The bytes it would have taken.
        bytes: u128,
    },

    /// Building an Arrow array or batch failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// `1.5 GiB`-style size for messages.
fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The distance module's result alias.
pub type Result<T, E = DistanceError> = std::result::Result<T, E>;

/// Checks that `x` holds `n` rows of `d` features.
pub(crate) fn check_matrix(what: &str, x: &[f64], n: usize, d: usize) -> Result<()> {
    match n.checked_mul(d) {
        Some(len) if len == x.len() => Ok(()),
        _ => Err(DistanceError::Shape(format!("{what}: {} values is not {n} rows x {d} features", x.len()))),
    }
}

/// Allocations below this are not compared with the machine's memory (reading it costs a file
/// read once; small vectors are not where an out-of-memory comes from).
const CHECK_ABOVE_BYTES: usize = 64 << 20;

/// RAM + swap of the machine in bytes (Linux `/proc/meminfo`, read once), `None` when unknown.
///
/// Why check at all when the allocator can fail: with Linux's default heuristic overcommit (and
/// always with `vm.overcommit_memory = 1`), a request well beyond the free memory may still be
/// granted as untouched pages, and the out-of-memory killer then ends the process while the pages
/// are written. A request beyond all of RAM + swap can never be served, so it is refused here.
fn machine_memory() -> Option<u128> {
    static MEM: std::sync::OnceLock<Option<u128>> = std::sync::OnceLock::new();
    *MEM.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field = |name: &str| -> Option<u128> {
            let line = text.lines().find(|l| l.starts_with(name))?;
            line.split_whitespace().nth(1)?.parse::<u128>().ok().map(|kib| kib * 1024)
        };
        Some(field("MemTotal:")? + field("SwapTotal:").unwrap_or(0))
    })
}

/// The bytes of `len` values of `T`, checked: an `OutOfMemory` error naming `what` (e.g. "12
/// pairs of a group of 5 events") when the size overflows, exceeds `isize::MAX` or exceeds the
/// machine's memory.
pub(crate) fn alloc_bytes<T>(len: u128, what: impl FnOnce() -> String) -> Result<usize> {
    let bytes = len.saturating_mul(std::mem::size_of::<T>() as u128);
    let fits = bytes <= isize::MAX as u128
        && (bytes < CHECK_ABOVE_BYTES as u128 || machine_memory().is_none_or(|total| bytes <= total));
    if fits {
        Ok(bytes as usize)
    } else {
        Err(DistanceError::OutOfMemory { what: what(), bytes })
    }
}

/// An empty vector with room for exactly `len` values, or `OutOfMemory` (never an abort).
pub fn try_with_capacity<T>(len: usize, what: impl FnOnce() -> String) -> Result<Vec<T>> {
    let mut what = Some(what);
    let mut describe = || what.take().map_or_else(String::new, |f| f());
    alloc_bytes::<T>(len as u128, &mut describe)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| DistanceError::OutOfMemory {
        what: describe(),
        bytes: (len * std::mem::size_of::<T>()) as u128,
    })?;
    Ok(v)
}

/// Types whose all-zero bit pattern is a valid value (so a zeroed allocation is initialised).
///
/// # Safety
/// Only for types where every byte being zero is a valid value.
pub(crate) unsafe trait Zeroable: Copy {}
// SAFETY: zero bits are 0 / 0.0 for these, and a tuple of them has no padding that matters (the
// padding's value is never read).
unsafe impl Zeroable for u32 {}
unsafe impl Zeroable for u64 {}
unsafe impl Zeroable for f64 {}
unsafe impl Zeroable for (u64, u64) {}

/// `len` zeros from a fallible `calloc` (fresh, untouched pages for large sizes: see
/// [`pdist::advise_huge`]), or `OutOfMemory`.
pub(crate) fn try_zeroed<T: Zeroable>(len: usize, what: impl FnOnce() -> String) -> Result<Vec<T>> {
    let mut what = Some(what);
    let mut describe = || what.take().map_or_else(String::new, |f| f());
    let bytes = alloc_bytes::<T>(len as u128, &mut describe)?;
    if len == 0 || bytes == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(len)
        .map_err(|_| DistanceError::OutOfMemory { what: describe(), bytes: bytes as u128 })?;
    // SAFETY: `layout` has a non-zero size. A null result is handled; otherwise the block holds
    // `len` zeroed `T`s, valid values by `Zeroable`, allocated by the global allocator with exactly
    // the layout `Vec<T>` uses for capacity `len`, so `Vec` may own and free it.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<T>();
        if ptr.is_null() {
            return Err(DistanceError::OutOfMemory { what: describe(), bytes: bytes as u128 });
        }
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}
