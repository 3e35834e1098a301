//! Python file objects behind `io::Write` and `io::Read`, for the core's writers and readers
//! (`PcapWriter` on `io.BytesIO`, the archive and its query on a pyarrow filesystem's streams).
//!
//! Bytes cross in chunks of about 1 MiB and the GIL is taken once per chunk, so Python code runs
//! once per megabyte, not once per packet: wrap [`PyWrite`] in [`buffered`], and [`PyRead`]
//! asks for a chunk at a time.

use std::io::{self, BufWriter, Read, Write};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Bytes handed to or taken from Python at a time.
pub(crate) const CHUNK: usize = 1 << 20;

/// A Python exception as an I/O error (its message; the GIL is taken to read it).
pub(crate) fn py_io(e: PyErr) -> io::Error {
    io::Error::other(Python::attach(|py| e.value(py).to_string()))
}

/// A Python object's `write(bytes)`: one call per `write`, so use it through [`buffered`].
pub(crate) struct PyWrite(pub(crate) Py<PyAny>);

impl Write for PyWrite {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Python::attach(|py| self.0.call_method1(py, "write", (PyBytes::new(py, buf),)).map(drop)).map_err(py_io)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `stream.write` in 1 MiB chunks.
pub(crate) fn buffered(stream: Py<PyAny>) -> BufWriter<PyWrite> {
    BufWriter::with_capacity(CHUNK, PyWrite(stream))
}

/// A Python object's `read(n)` (returning bytes, or a pyarrow buffer), a chunk at a time.
pub(crate) struct PyRead {
    stream: Py<PyAny>,
    buf: Vec<u8>,
    at: usize,
}

impl PyRead {
    /// Reads `stream` from where it is.
    pub(crate) fn new(stream: Py<PyAny>) -> Self {
        Self { stream, buf: Vec::new(), at: 0 }
    }
}

impl Read for PyRead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buf.len() {
            let chunk: Vec<u8> = Python::attach(|py| {
                let got = self.stream.call_method1(py, "read", (CHUNK,))?;
                got.extract::<Vec<u8>>(py).or_else(|_| got.call_method0(py, "to_pybytes")?.extract(py))
            })
            .map_err(py_io)?;
            self.buf = chunk;
            self.at = 0;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
