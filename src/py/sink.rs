//! `NativePcapWriter`: the core's pcap writer ([`crate::sink::pcap`]) for Python.
//!
//! It writes to a path (gzip-compressed when the name ends in `.gz`) entirely in Rust, or to any
//! Python object with a `write(bytes)` method (a pyarrow filesystem's output stream, `io.BytesIO`),
//! in 1 MiB chunks ([`super::pystream`]). Batches are written with the GIL
//! released (it is taken back only for a Python target's chunk writes).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use flate2::write::GzEncoder;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3_arrow::PyRecordBatch;

use super::pystream::{buffered, PyWrite};
use crate::sink::pcap::{PcapHeader, PcapWriter};

/// Where the records go.
enum Out {
    File(BufWriter<File>),
    Gzip(Box<GzEncoder<BufWriter<File>>>),
    Python(BufWriter<PyWrite>),
}

impl Out {
    /// Flushes everything; a gzip stream gets its trailer, a file is flushed to the kernel.
    fn finish(self) -> io::Result<()> {
        match self {
            Out::File(mut f) => f.flush(),
            Out::Gzip(g) => g.finish()?.flush(),
            Out::Python(mut p) => p.flush(),
        }
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::File(f) => f.write(buf),
            Out::Gzip(g) => g.write(buf),
            Out::Python(p) => p.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Out::File(f) => f.write_all(buf),
            Out::Gzip(g) => g.write_all(buf),
            Out::Python(p) => p.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::File(f) => f.flush(),
            Out::Gzip(g) => g.flush(),
            Out::Python(p) => p.flush(),
        }
    }
}

#[pyclass(module = "pktstream._native", name = "NativePcapWriter", frozen)]
pub(crate) struct NativePcapWriter {
    inner: Mutex<Option<PcapWriter<Out>>>,
    /// `(packets, bytes)` at close, so the counts stay readable after it.
    closed_counts: OnceLock<(u64, u64)>,
}

fn to_py(e: io::Error) -> PyErr {
    match e.kind() {
        io::ErrorKind::InvalidInput => PyValueError::new_err(e.to_string()),
        _ => PyOSError::new_err(e.to_string()),
    }
}

fn closed() -> PyErr {
    PyValueError::new_err("the pcap writer is closed")
}

impl NativePcapWriter {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut PcapWriter<Out>) -> io::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                Some(w) => f(w).map_err(to_py),
                None => Err(closed()),
            }
        })
    }
}

#[pymethods]
impl NativePcapWriter {
    #[new]
    #[pyo3(signature = (target, *, link_type=1, snaplen=262_144, nanosecond=false, big_endian=false))]
    fn new(
        py: Python<'_>,
        target: &Bound<'_, PyAny>,
        link_type: u16,
        snaplen: u32,
        nanosecond: bool,
        big_endian: bool,
    ) -> PyResult<Self> {
        let out: Out = if target.hasattr("write")? {
            Out::Python(buffered(target.clone().unbind()))
        } else {
            let path: PathBuf = target.extract()?;
            let file = py.detach(|| File::create(&path)).map_err(|e| {
                PyOSError::new_err((e.raw_os_error().unwrap_or(0), e.to_string(), path.display().to_string()))
            })?;
            let gz = path.extension().is_some_and(|e| e == "gz");
            let file = BufWriter::with_capacity(1 << 20, file);
            if gz {
                Out::Gzip(Box::new(GzEncoder::new(file, flate2::Compression::new(6))))
            } else {
                Out::File(file)
            }
        };
        let header = PcapHeader { link_type, snaplen, nanosecond, big_endian };
        let writer = py.detach(|| PcapWriter::new(out, header)).map_err(to_py)?;
        Ok(Self { inner: Mutex::new(Some(writer)), closed_counts: OnceLock::new() })
    }

    /// Appends one packet.
    #[pyo3(signature = (ts_ns, frame, wirelen=None))]
    fn write(&self, py: Python<'_>, ts_ns: i64, frame: &[u8], wirelen: Option<u32>) -> PyResult<()> {
        let frame = frame.to_vec();
        self.with(py, move |w| w.write(ts_ns, &frame, wirelen.unwrap_or(0)))
    }

    /// Appends a batch's rows; returns `(written, skipped)`.
    fn write_batch(&self, py: Python<'_>, batch: PyRecordBatch) -> PyResult<(u64, u64)> {
        let batch = batch.into_inner();
        self.with(py, move |w| w.write_batch(&batch))
    }

    /// Packets written.
    #[getter]
    fn packets(&self, py: Python<'_>) -> PyResult<u64> {
        if let Some((packets, _)) = self.closed_counts.get() {
            return Ok(*packets);
        }
        self.with(py, |w| Ok(w.packets()))
    }

    /// Bytes written (before any compression), the file header included.
    #[getter]
    fn bytes(&self, py: Python<'_>) -> PyResult<u64> {
        if let Some((_, bytes)) = self.closed_counts.get() {
            return Ok(*bytes);
        }
        self.with(py, |w| Ok(w.bytes()))
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self, py: Python<'_>) -> bool {
        py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).is_none())
    }

    /// Flushes what is buffered and closes the output (a gzip stream gets its trailer). Closing a
    /// closed writer does nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let writer = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take());
        match writer {
            Some(w) => {
                let _ = self.closed_counts.set((w.packets(), w.bytes()));
                py.detach(|| w.into_inner().and_then(Out::finish)).map_err(to_py)
            }
            None => Ok(()),
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativePcapWriter>()
}
