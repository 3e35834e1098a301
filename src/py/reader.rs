//! `NativeReader`: a capture file or a live capture as a stream of Arrow record batches.
//!
//! Both are a [`PacketReader`] (a live capture is just another record source), so one class
//! serves both and the Python wrappers (`PacketReader`, `LiveReader`) differ only in what they
//! add. What a live capture adds here is its [`LiveHandle`]: `stop()`, the capture counters in
//! `stats()`, and Ctrl-C in `read_all` ending the capture instead of losing it.
//!
//! Each batch is read with the GIL released. Signals are checked *before* a read, never between
//! a read and its return, so a batch that was read is always handed out (Ctrl-C loses nothing
//! already captured), and a read interrupted by a signal or a live read timeout comes back here
//! to check. The reader sits behind a mutex that is only ever locked with the GIL released, so two
//! Python threads sharing a reader cannot deadlock.

use std::path::PathBuf;
#[cfg(feature = "live")]
use std::sync::Arc;
use std::sync::Mutex;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use pyo3::IntoPyObjectExt;
use pyo3_arrow::{PyRecordBatch, PyRecordBatchReader, PySchema, PyTable};

use super::errors::to_py;
use crate::error::Error;
use crate::reader::{PacketReader, ReadOptions};
use crate::schema::SchemaOptions;
#[cfg(feature = "live")]
use crate::source::live::LiveHandle;

/// What a live capture adds to a reader.
#[cfg(feature = "live")]
pub(crate) struct Live {
    /// Stops the capture and publishes its counters.
    pub(crate) handle: Arc<LiveHandle>,
    /// The LINKTYPE_ value of every packet.
    pub(crate) link_type: u16,
    /// Whether timestamps have nanosecond precision.
    pub(crate) nanosecond: bool,
}

#[pyclass(module = "pktstream._native", name = "NativeReader", frozen)]
pub(crate) struct NativeReader {
    inner: Mutex<Option<PacketReader>>,
    schema: SchemaRef,
    /// The file, or the interface of a live capture.
    path: PathBuf,
    file_size: Option<u64>,
    #[cfg(feature = "live")]
    live: Option<Live>,
}

impl NativeReader {
    /// Wraps a live capture's reader (see `pktstream._native.capture`).
    #[cfg(feature = "live")]
    pub(crate) fn live(reader: PacketReader, interface: &str, live: Live) -> Self {
        Self {
            schema: reader.schema(),
            file_size: None,
            inner: Mutex::new(Some(reader)),
            path: PathBuf::from(interface),
            live: Some(live),
        }
    }

    /// The live capture's handle; `None` for a file.
    #[cfg(feature = "live")]
    pub(crate) fn live_handle(&self) -> Option<Arc<LiveHandle>> {
        self.live.as_ref().map(|l| l.handle.clone())
    }

    fn is_live(&self) -> bool {
        #[cfg(feature = "live")]
        return self.live.is_some();
        #[cfg(not(feature = "live"))]
        false
    }

    /// Takes the packet reader out with its path (a live capture's interface), for a flow meter
    /// to take over its source; later reads return nothing.
    pub(crate) fn take(&self, py: Python<'_>) -> Option<(PacketReader, PathBuf)> {
        let reader = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take())?;
        Some((reader, self.path.clone()))
    }

    fn next(&self, py: Python<'_>) -> PyResult<Option<RecordBatch>> {
        loop {
            // Before the read, never after: a batch that was read is always returned.
            py.check_signals()?;
            let batch = py.detach(|| {
                let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                match guard.as_mut() {
                    Some(reader) => reader.next_batch(),
                    None => Ok(None),
                }
            });
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
        Ok(Self {
            schema: reader.schema(),
            file_size: reader.info().file_size,
            inner: Mutex::new(Some(reader)),
            path,
            #[cfg(feature = "live")]
            live: None,
        })
    }

    /// The next record batch (for a live capture: full, or whatever arrived within `timeout`),
    /// or None at the end of the file or once the capture stopped.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<PyRecordBatch>> {
        Ok(self.next(py)?.map(PyRecordBatch::new))
    }

    /// Every remaining batch as one table. On a live capture Ctrl-C ends the capture: the
    /// packets captured so far are returned rather than lost.
    fn read_all(&self, py: Python<'_>) -> PyResult<PyTable> {
        let mut batches = Vec::new();
        loop {
            match self.next(py) {
                Ok(Some(batch)) => batches.push(batch),
                Ok(None) => break,
                Err(e) if self.is_live() && e.is_instance_of::<PyKeyboardInterrupt>(py) => self.stop(),
                Err(e) => return Err(e),
            }
        }
        PyTable::try_new(batches, self.schema.clone())
    }

    /// Ends a live capture: the next read returns what is buffered, then None. Nothing for a
    /// file.
    fn stop(&self) {
        #[cfg(feature = "live")]
        if let Some(live) = &self.live {
            live.handle.stop();
        }
    }

    #[getter]
    fn schema(&self) -> PySchema {
        PySchema::new(self.schema.clone())
    }

    /// The file (a path), or the interface of a live capture (a str).
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.is_live() {
            return self.path.to_string_lossy().into_bound_py_any(py);
        }
        self.path.clone().into_bound_py_any(py)
    }

    #[getter]
    fn file_size(&self) -> Option<u64> {
        self.file_size
    }

    /// Counters and format details so far, as a dict. A live capture's add libpcap's counters
    /// (received, dropped_kernel, dropped_interface, dropped_pktstream).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snapshot = py.detach(|| {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(|r| (r.stats().clone(), r.info().clone(), r.bytes_read(), r.warnings().to_vec()))
        });
        let file = !self.is_live();
        let d = PyDict::new(py);
        if let Some((s, info, bytes_read, warnings)) = snapshot {
            d.set_item("packets", s.packets)?;
            if file {
                d.set_item("filtered", s.filtered)?;
            }
            d.set_item("decode_errors", s.decode_errors)?;
            let link_types = PyDict::new(py);
            for (lt, n) in &s.link_types {
                link_types.set_item(*lt, *n)?;
            }
            d.set_item("link_types", link_types)?;
            d.set_item("first_ts_ns", s.first_ts_ns)?;
            d.set_item("last_ts_ns", s.last_ts_ns)?;
            d.set_item("bytes_read", bytes_read)?;
            if file {
                d.set_item("file_size", info.file_size)?;
                d.set_item("format", info.format)?;
                d.set_item("gzip", info.gzip)?;
                d.set_item("big_endian", info.big_endian)?;
                d.set_item("warnings", warnings)?;
            }
        }
        #[cfg(feature = "live")]
        if let Some(live) = &self.live {
            super::live::stats_into(&d, &live.handle.stats())?;
            d.set_item("interface", self.path.to_string_lossy())?;
            d.set_item("link_type", live.link_type)?;
            d.set_item("format", "live")?;
            d.set_item("timestamp_precision", if live.nanosecond { "ns" } else { "us" })?;
            d.set_item("warnings", Vec::<String>::new())?;
        }
        Ok(d)
    }

    /// Problems that ended the file early (lax mode); none for a live capture.
    fn warnings(&self, py: Python<'_>) -> Vec<String> {
        py.detach(|| {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(|r| r.warnings().to_vec()).unwrap_or_default()
        })
    }

    /// Releases the file, or stops the capture and releases the interface (the final counters
    /// stay in `stats`); later reads return nothing.
    fn close(&self, py: Python<'_>) {
        self.stop();
        let reader = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take());
        py.detach(move || drop(reader));
    }

    /// Exports the rest of the stream through the Arrow C stream interface (single use). A live
    /// capture's consumer reads until the capture ends; Ctrl-C (checked at every read timeout)
    /// ends the stream with an error.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reader = py
            .detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take())
            .ok_or_else(|| to_py(Error::InvalidArgument("the reader was already consumed or closed".into())))?;
        #[cfg(feature = "live")]
        let stream: Box<dyn arrow_array::RecordBatchReader + Send> =
            if self.is_live() { super::live::stream(reader) } else { Box::new(reader) };
        #[cfg(not(feature = "live"))]
        let stream: Box<dyn arrow_array::RecordBatchReader + Send> = Box::new(reader);
        let exported = Bound::new(py, PyRecordBatchReader::new(stream))?;
        exported.call_method1("__arrow_c_stream__", (requested_schema,))
    }
}
