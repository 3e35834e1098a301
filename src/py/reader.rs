//! `NativeReader`: a capture file as a stream of Arrow record batches for Python.
//!
//! Each batch is read with the GIL released; between batches the GIL is taken back to check for
//! Ctrl-C, so a long read stays interruptible. The reader sits behind a mutex that is only ever
//! locked with the GIL released, so two Python threads sharing a reader cannot deadlock.

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
use crate::reader::{PacketReader, ReadOptions};
use crate::schema::SchemaOptions;

#[pyclass(module = "pktstream._native", name = "NativeReader", frozen)]
pub(crate) struct NativeReader {
    inner: Mutex<Option<PacketReader>>,
    schema: SchemaRef,
    path: PathBuf,
    file_size: Option<u64>,
}

impl NativeReader {
    /// Takes the packet reader out with its path, for a flow meter to take over its source;
    /// later reads return nothing.
    pub(crate) fn take(&self, py: Python<'_>) -> Option<(PacketReader, PathBuf)> {
        let reader = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take())?;
        Some((reader, self.path.clone()))
    }

    fn next(&self, py: Python<'_>) -> PyResult<Option<RecordBatch>> {
        loop {
            let batch = py.detach(|| {
                let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                match guard.as_mut() {
                    Some(reader) => reader.next_batch(),
                    None => Ok(None),
                }
            });
            // Ctrl-C raises here, between batches or after a blocking read was interrupted.
            py.check_signals()?;
            match batch {
                Err(Error::Interrupted) => continue,
                other => return other.map_err(to_py),
            }
        }
    }
}

#[pymethods]
impl NativeReader {
    #[new]
    #[pyo3(signature = (path, *, columns=None, batch_size=65536, addresses="string", strict=false, bpf=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        columns: Option<Vec<String>>,
        batch_size: usize,
        addresses: &str,
        strict: bool,
        bpf: Option<String>,
    ) -> PyResult<Self> {
        let schema = SchemaOptions::new(columns.as_deref(), addresses.parse().map_err(to_py)?).map_err(to_py)?;
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let opts = ReadOptions { schema, batch_size, strict, bpf };
        let reader = py.detach(|| PacketReader::open(&path, opts)).map_err(to_py)?;
        Ok(Self { schema: reader.schema(), file_size: reader.info().file_size, inner: Mutex::new(Some(reader)), path })
    }

    /// The next record batch, or None at the end of the file.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<PyRecordBatch>> {
        Ok(self.next(py)?.map(PyRecordBatch::new))
    }

    /// Every remaining batch as one table.
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

    /// Counters and format details so far, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snapshot = py.detach(|| {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(|r| {
                let s = r.stats().clone();
                let i = r.info().clone();
                (s, i, r.bytes_read(), r.warnings().to_vec())
            })
        });
        let d = PyDict::new(py);
        if let Some((s, info, bytes_read, warnings)) = snapshot {
            d.set_item("packets", s.packets)?;
            d.set_item("filtered", s.filtered)?;
            d.set_item("decode_errors", s.decode_errors)?;
            let link_types = PyDict::new(py);
            for (lt, n) in &s.link_types {
                link_types.set_item(*lt, *n)?;
            }
            d.set_item("link_types", link_types)?;
            d.set_item("first_ts_ns", s.first_ts_ns)?;
            d.set_item("last_ts_ns", s.last_ts_ns)?;
            d.set_item("bytes_read", bytes_read)?;
            d.set_item("file_size", info.file_size)?;
            d.set_item("format", info.format)?;
            d.set_item("gzip", info.gzip)?;
            d.set_item("big_endian", info.big_endian)?;
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
        let reader = py
            .detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take())
            .ok_or_else(|| to_py(Error::InvalidArgument("the reader was already consumed or closed".into())))?;
        let exported = Bound::new(py, PyRecordBatchReader::new(Box::new(reader)))?;
        exported.call_method1("__arrow_c_stream__", (requested_schema,))
    }
}
