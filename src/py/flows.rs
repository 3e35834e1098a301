//! `NativeFlowReader`: a capture file as a stream of flow record batches for Python.
//!
//! As `NativeReader`: each batch is built with the GIL released, the GIL is taken back between
//! batches to check for Ctrl-C, and the reader sits behind a mutex only ever locked with the GIL
//! released.

use std::path::PathBuf;
use std::sync::Mutex;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use pyo3_arrow::{PyRecordBatch, PyRecordBatchReader, PySchema, PyTable};

use super::errors::to_py;
use crate::error::Error;
use crate::flow::{FlowOptions, FlowReader};

#[pyclass(module = "pktstream._native", name = "NativeFlowReader", frozen)]
pub(crate) struct NativeFlowReader {
    inner: Mutex<Option<FlowReader>>,
    schema: SchemaRef,
    path: PathBuf,
    file_size: Option<u64>,
}

fn seconds_to_ns(name: &str, s: f64) -> PyResult<i64> {
    if !(s.is_finite() && s > 0.0 && s < 1e9) {
        return Err(PyValueError::new_err(format!("{name} must be a positive number of seconds, not {s}")));
    }
    Ok((s * 1e9).round() as i64)
}

impl NativeFlowReader {
    fn next(&self, py: Python<'_>) -> PyResult<Option<RecordBatch>> {
        loop {
            let batch = py.detach(|| {
                let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                match guard.as_mut() {
                    Some(reader) => reader.next_batch(),
                    None => Ok(None),
                }
            });
            py.check_signals()?;
            match batch {
                Err(Error::Interrupted) => continue,
                other => return other.map_err(to_py),
            }
        }
    }
}

#[pymethods]
impl NativeFlowReader {
    #[new]
    #[pyo3(signature = (
        path, *, idle_timeout=120.0, active_timeout=1800.0, tcp_close=false, tcp_close_grace=1.0,
        accounting="wire", statistics=false, server_name=false, columns=None, max_flows=1_000_000, batch_size=65536, strict=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        idle_timeout: f64,
        active_timeout: f64,
        tcp_close: bool,
        tcp_close_grace: f64,
        accounting: &str,
        statistics: bool,
        server_name: bool,
        columns: Option<Vec<String>>,
        max_flows: usize,
        batch_size: usize,
        strict: bool,
    ) -> PyResult<Self> {
        let opts = FlowOptions {
            idle_timeout_ns: seconds_to_ns("idle_timeout", idle_timeout)?,
            active_timeout_ns: seconds_to_ns("active_timeout", active_timeout)?,
            tcp_close,
            tcp_close_grace_ns: seconds_to_ns("tcp_close_grace", tcp_close_grace)?,
            accounting: accounting.parse().map_err(to_py)?,
            statistics,
            server_name,
            max_flows,
        };
        let mut reader =
            py.detach(|| FlowReader::open(&path, opts, columns.as_deref(), batch_size, strict)).map_err(to_py)?;
        // Come back for Ctrl-C every ~100 ms of reading, even while no flow ends.
        reader.yield_every(1 << 18);
        Ok(Self { schema: reader.schema(), file_size: reader.info().file_size, inner: Mutex::new(Some(reader)), path })
    }

    /// The next batch of ended flows, or None once the capture is metered and flushed.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<PyRecordBatch>> {
        Ok(self.next(py)?.map(PyRecordBatch::new))
    }

    /// Every remaining flow as one table.
    fn read_all(&self, py: Python<'_>) -> PyResult<PyTable> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next(py)? {
            batches.push(batch);
        }
        PyTable::try_new(batches, self.schema.clone())
    }

    #[getter]
    fn schema(&self) -> PySchema {
        PySchema::new(self.schema.clone())
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    #[getter]
    fn file_size(&self) -> Option<u64> {
        self.file_size
    }

    /// Counters so far, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snapshot = py.detach(|| {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(|r| (r.stats(), r.bytes_read(), r.info().format, r.warnings().to_vec()))
        });
        let d = PyDict::new(py);
        if let Some((s, bytes_read, format, warnings)) = snapshot {
            d.set_item("packets", s.packets)?;
            d.set_item("metered", s.metered)?;
            d.set_item("not_ip", s.not_ip)?;
            d.set_item("fragments", s.fragments)?;
            d.set_item("flows", s.flows)?;
            d.set_item("active", s.active)?;
            d.set_item("evicted", s.evicted)?;
            d.set_item("bytes_read", bytes_read)?;
            d.set_item("format", format)?;
            d.set_item("warnings", warnings)?;
        }
        Ok(d)
    }

    /// Problems that ended the file early (lax mode).
    fn warnings(&self, py: Python<'_>) -> Vec<String> {
        py.detach(|| {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(|r| r.warnings().to_vec()).unwrap_or_default()
        })
    }

    /// Releases the file; later reads return nothing.
    fn close(&self, py: Python<'_>) {
        let reader = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take());
        drop(reader);
    }

    /// Exports the rest of the stream through the Arrow C stream interface (single use).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut reader = py
            .detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take())
            .ok_or_else(|| to_py(Error::InvalidArgument("the flow reader was already consumed or closed".into())))?;
        reader.yield_every(0); // an Arrow stream consumer would take the pause for an error
        let exported = Bound::new(py, PyRecordBatchReader::new(Box::new(reader)))?;
        exported.call_method1("__arrow_c_stream__", (requested_schema,))
    }
}

/// The flow schema, as an Arrow schema capsule object.
#[pyfunction]
#[pyo3(signature = (statistics=false, columns=None, server_name=false))]
fn flow_schema(statistics: bool, columns: Option<Vec<String>>, server_name: bool) -> PyResult<PySchema> {
    let cols = crate::flow::FlowColumns::new(statistics, server_name, columns.as_deref()).map_err(to_py)?;
    Ok(PySchema::new(cols.schema()))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeFlowReader>()?;
    m.add_function(wrap_pyfunction!(flow_schema, m)?)?;
    Ok(())
}
