//! Bindings of the distance kernels (`crate::distance`): numpy in and out for `pdist`/`cdist`,
//! Arrow (PyCapsule interface) in and out for grouped and windowed pairs.
//!
//! Matrices are copied once into a contiguous `f64` buffer whatever their dtype (float64 or
//! float32) and order (C or Fortran): the copy is O(n) against the O(n^2) work, and it lets the
//! computation run with the GIL released on memory Python cannot touch. Every shape and option is
//! validated before any work, so bad input raises `ValueError` instead of panicking.

use std::sync::Mutex;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::ArrowError;
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3_arrow::{PyRecordBatchReader, PyTable};

use crate::distance::{
    try_with_capacity, DistanceError, LargeGroup, LargeGroupInfo, Metric, PairOptions, PairStream, PairsInput,
    WindowedPairs,
};

pub(super) fn to_py(e: DistanceError) -> PyErr {
    match e {
        DistanceError::Arrow(e) => PyRuntimeError::new_err(format!("arrow: {e}")),
        e @ DistanceError::OutOfMemory { .. } => PyMemoryError::new_err(e.to_string()),
        other => PyValueError::new_err(other.to_string()),
    }
}

fn arrow_err(e: ArrowError) -> PyErr {
    to_py(DistanceError::Arrow(e))
}

/// A 2-D float64/float32 numpy array (any memory order) as `(row-major f64 data, rows, cols)`.
/// The copy is allocated fallibly: a broadcast view of billions of rows raises `MemoryError`.
fn matrix(name: &str, x: &Bound<'_, PyAny>) -> PyResult<(Vec<f64>, usize, usize)> {
    let buffer = |n: usize, d: usize| -> PyResult<Vec<f64>> {
        let len = n.checked_mul(d).ok_or_else(|| {
            to_py(DistanceError::OutOfMemory {
                what: format!("{name}: {n} x {d} values"),
                bytes: n as u128 * d as u128 * 8,
            })
        })?;
        try_with_capacity(len, || format!("a float64 copy of {name} ({n} x {d})")).map_err(to_py)
    };
    if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f64>>() {
        let (n, d) = (a.shape()[0], a.shape()[1]);
        let mut data = buffer(n, d)?;
        // `as_slice` also accepts Fortran order (in memory order): only take it for C order.
        match a.as_slice() {
            Ok(s) if a.is_c_contiguous() => data.extend_from_slice(s),
            _ => data.extend(a.as_array().iter().copied()),
        }
        return Ok((data, n, d));
    }
    if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f32>>() {
        let (n, d) = (a.shape()[0], a.shape()[1]);
        let mut data = buffer(n, d)?;
        data.extend(a.as_array().iter().map(|&v| f64::from(v)));
        return Ok((data, n, d));
    }
    Err(PyValueError::new_err(format!("{name} must be a 2-D float64 or float32 numpy array")))
}

fn metric(name: &str) -> PyResult<Metric> {
    name.parse().map_err(to_py)
}

/// Condensed pairwise distances of the rows of `x` (scipy's `pdist`).
#[pyfunction]
#[pyo3(signature = (x, metric="euclidean"))]
fn pdist<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, metric: &str) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let m = self::metric(metric)?;
    let (data, n, d) = matrix("X", x)?;
    let out = py.detach(|| crate::distance::pdist(&data, n, d, m)).map_err(to_py)?;
    Ok(PyArray1::from_vec(py, out))
}

/// The `len(xa) x len(xb)` distances between two sets of rows (scipy's `cdist`).
#[pyfunction]
#[pyo3(signature = (xa, xb, metric="euclidean"))]
fn cdist<'py>(
    py: Python<'py>,
    xa: &Bound<'py, PyAny>,
    xb: &Bound<'py, PyAny>,
    metric: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let m = self::metric(metric)?;
    let (a, na, d) = matrix("XA", xa)?;
    let (b, nb, db) = matrix("XB", xb)?;
    if d != db {
        return Err(PyValueError::new_err(format!("XA has {d} features but XB has {db}")));
    }
    let out = py.detach(|| crate::distance::cdist(&a, na, &b, nb, d, m)).map_err(to_py)?;
    Ok(PyArray1::from_vec(py, out).reshape([na, nb])?.into_any())
}

pub(super) fn options(
    metric: &str,
    top_k: Option<usize>,
    max_distance: Option<f64>,
    sort: bool,
    max_group_events: Option<usize>,
    on_large_group: &str,
) -> PyResult<PairOptions> {
    let on_large_group: LargeGroup = on_large_group.parse().map_err(to_py)?;
    let opts =
        PairOptions { metric: self::metric(metric)?, top_k, max_distance, sort, max_group_events, on_large_group };
    opts.validate().map_err(to_py)?;
    Ok(opts)
}

/// The `key` and `id` columns of a table, its chunks concatenated.
fn key_and_id(table: PyTable) -> PyResult<(ArrayRef, ArrayRef)> {
    let (batches, schema) = table.into_inner();
    let batch = arrow_select::concat::concat_batches(&schema, &batches).map_err(arrow_err)?;
    let column = |name: &str| {
        batch.column_by_name(name).cloned().ok_or_else(|| PyValueError::new_err(format!("missing column {name:?}")))
    };
    Ok((column("key")?, column("id")?))
}

/// Large groups as `(key, window start ns or None, events)` tuples.
type LargeList = Vec<(String, Option<i64>, usize)>;

fn large_list(groups: Vec<LargeGroupInfo>) -> LargeList {
    groups.into_iter().map(|g| (g.key, g.window, g.events)).collect()
}

/// Grouped pairs of a table's rows as a stream of record batches (`pktstream.distance.pairs`),
/// and the groups over `max_group_events` as `(key, window start ns or None, events)`.
///
/// `table` holds the `key` and `id` columns; `features` the matching rows; `time` (int64 ns)
/// and `window` (ns) put rows into tumbling windows.
#[pyfunction]
#[pyo3(signature = (table, features, *, time=None, window=None, metric="euclidean", top_k=None, max_distance=None, sort=true, batch_size=1_048_576, max_group_events=None, on_large_group="top_k"))]
#[allow(clippy::too_many_arguments)]
fn pairs(
    py: Python<'_>,
    table: PyTable,
    features: &Bound<'_, PyAny>,
    time: Option<PyReadonlyArray1<'_, i64>>,
    window: Option<i64>,
    metric: &str,
    top_k: Option<usize>,
    max_distance: Option<f64>,
    sort: bool,
    batch_size: usize,
    max_group_events: Option<usize>,
    on_large_group: &str,
) -> PyResult<(PyRecordBatchReader, LargeList)> {
    let opts = options(metric, top_k, max_distance, sort, max_group_events, on_large_group)?;
    let (key, id) = key_and_id(table)?;
    let (x, n, d) = matrix("features", features)?;
    if n != key.len() {
        return Err(PyValueError::new_err(format!("{} rows but {n} feature rows", key.len())));
    }
    let time = time.map(|t| t.as_array().to_vec());
    let stream = py
        .detach(|| {
            let mut input = PairsInput::new(key, id, x, d)?;
            match (time, window) {
                (Some(t), Some(w)) => input = input.with_windows(&t, w)?,
                (None, None) => {}
                _ => return Err(DistanceError::InvalidArgument("time and window go together".into())),
            }
            PairStream::new(input, opts, batch_size)
        })
        .map_err(to_py)?;
    let large = large_list(stream.large_groups().to_vec());
    Ok((PyRecordBatchReader::new(Box::new(stream)), large))
}

/// Windowed pairs over pushed batches (`pktstream.distance.WindowedPairs`).
#[pyclass(module = "pktstream._native", name = "NativeWindowedPairs", frozen)]
struct NativeWindowedPairs {
    inner: Mutex<WindowedPairs>,
}

impl NativeWindowedPairs {
    fn run(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut WindowedPairs) -> Result<Vec<RecordBatch>, DistanceError> + Send,
    ) -> PyResult<PyTable> {
        let (batches, schema) = py
            .detach(|| {
                let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                f(&mut w).map(|b| (b, w.schema()))
            })
            .map_err(to_py)?;
        PyTable::try_new(batches, schema)
    }

    fn read<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&WindowedPairs) -> T + Send) -> T {
        py.detach(|| f(&self.inner.lock().unwrap_or_else(|p| p.into_inner())))
    }
}

#[pymethods]
impl NativeWindowedPairs {
    #[new]
    #[pyo3(signature = (window, n_features, *, allowed_lateness=0, metric="euclidean", top_k=None, max_distance=None, batch_size=1_048_576, max_group_events=None, on_large_group="top_k"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        window: i64,
        n_features: usize,
        allowed_lateness: i64,
        metric: &str,
        top_k: Option<usize>,
        max_distance: Option<f64>,
        batch_size: usize,
        max_group_events: Option<usize>,
        on_large_group: &str,
    ) -> PyResult<Self> {
        let opts = options(metric, top_k, max_distance, true, max_group_events, on_large_group)?;
        let inner = WindowedPairs::new(window, allowed_lateness, n_features, opts, batch_size).map_err(to_py)?;
        Ok(Self { inner: Mutex::new(inner) })
    }

    /// Buffers rows (`table` with `key` and `id`, int64 ns `time`, `features`); returns the
    /// pairs of the windows that closed.
    fn push(
        &self,
        py: Python<'_>,
        table: PyTable,
        time: PyReadonlyArray1<'_, i64>,
        features: &Bound<'_, PyAny>,
    ) -> PyResult<PyTable> {
        let (key, id) = key_and_id(table)?;
        let (x, n, _) = matrix("features", features)?;
        if n != key.len() {
            return Err(PyValueError::new_err(format!("{} rows but {n} feature rows", key.len())));
        }
        let time = time.as_array().to_vec();
        self.run(py, move |w| w.push(&key, &id, &time, &x))
    }

    /// Closes every open window; returns their pairs.
    fn flush(&self, py: Python<'_>) -> PyResult<PyTable> {
        self.run(py, |w| w.flush())
    }

    #[getter]
    fn late_events(&self, py: Python<'_>) -> u64 {
        self.read(py, |w| w.late_events())
    }

    #[getter]
    fn large_groups(&self, py: Python<'_>) -> u64 {
        self.read(py, |w| w.large_groups())
    }

    #[getter]
    fn large_group_events(&self, py: Python<'_>) -> u64 {
        self.read(py, |w| w.large_group_events())
    }

    /// The large groups of the windows closed since the last call, as `(key, window start ns,
    /// events)`.
    fn take_large_groups(&self, py: Python<'_>) -> LargeList {
        large_list(py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take_large_groups()))
    }

    #[getter]
    fn open_windows(&self, py: Python<'_>) -> usize {
        self.read(py, |w| w.open_windows())
    }

    #[getter]
    fn watermark(&self, py: Python<'_>) -> Option<i64> {
        self.read(py, |w| w.watermark())
    }
}

/// Registers the distance functions and classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pdist, m)?)?;
    m.add_function(wrap_pyfunction!(cdist, m)?)?;
    m.add_function(wrap_pyfunction!(pairs, m)?)?;
    m.add_class::<NativeWindowedPairs>()?;
    Ok(())
}
