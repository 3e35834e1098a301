//! Live capture for Python: `NativeLiveReader`, `produce_live` and `capture_to_pcap`.
//!
//! Every wait on libpcap runs with the GIL released. libpcap's read timeout brings control back
//! at least every `timeout` seconds, and that is where Ctrl-C is checked, so a quiet link stays
//! interruptible. A batch that was read is always handed out: signals are checked *before* a
//! read, never between a read and its return, so Ctrl-C loses nothing already captured. After
//! Ctrl-C, [`NativeLiveReader::stop`] ends the capture and the remaining rows can still be read.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use pyo3_arrow::{PyRecordBatch, PyRecordBatchReader, PySchema, PyTable};

use super::errors::to_py;
use super::kafka::{config_pairs, finish_report, kafka_to_py, options, produce_reader, Control};
use crate::error::Error;
use crate::kafka::{produce_raw, producer_config, Format};
use crate::reader::{PacketReader, ReadOptions};
use crate::schema::SchemaOptions;
use crate::source::live::{write_pcap, CaptureStats, LiveHandle, LiveOptions, LiveSource};

fn seconds(s: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| PyValueError::new_err(format!("{what} must be a non-negative number")))
}

#[allow(clippy::too_many_arguments)]
fn live_options(
    interface: &str,
    bpf: Option<String>,
    snaplen: u32,
    promisc: bool,
    buffer_size: Option<u32>,
    timeout: f64,
    immediate: bool,
    max_packets: Option<u64>,
    duration: Option<f64>,
) -> PyResult<LiveOptions> {
    let mut o = LiveOptions::new(interface);
    o.bpf = bpf;
    o.snaplen = snaplen;
    o.promisc = promisc;
    o.buffer_size = buffer_size;
    o.timeout = seconds(timeout, "timeout")?;
    o.immediate = immediate;
    o.max_packets = max_packets;
    o.duration = duration.map(|d| seconds(d, "duration")).transpose()?;
    Ok(o)
}

fn open(py: Python<'_>, opts: &LiveOptions) -> PyResult<LiveSource> {
    py.detach(|| LiveSource::open(opts)).map_err(to_py)
}

pub(crate) fn stats_into(d: &Bound<'_, PyDict>, s: &CaptureStats) -> PyResult<()> {
    d.set_item("captured", s.captured)?;
    d.set_item("received", s.received)?;
    d.set_item("dropped_kernel", s.dropped_kernel)?;
    d.set_item("dropped_interface", s.dropped_interface)?;
    d.set_item("dropped_pktstream", s.dropped_pktstream)?;
    Ok(())
}

/// A live capture as a stream of Arrow record batches (see `pktstream.capture`).
#[pyclass(module = "pktstream._native", name = "NativeLiveReader", frozen)]
pub(crate) struct NativeLiveReader {
    inner: Mutex<Option<PacketReader>>,
    handle: Arc<LiveHandle>,
    schema: SchemaRef,
    interface: String,
    link_type: u16,
    nanosecond: bool,
}

impl NativeLiveReader {
    /// Takes the packet reader out with the capture's handle and interface, for a flow meter to
    /// take over the capture; later reads return nothing.
    pub(crate) fn take(&self, py: Python<'_>) -> Option<(PacketReader, Arc<LiveHandle>, String)> {
        let reader = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take())?;
        Some((reader, self.handle.clone(), self.interface.clone()))
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
impl NativeLiveReader {
    #[new]
    #[pyo3(signature = (interface, *, bpf=None, snaplen=65535, promisc=false, buffer_size=None, timeout=0.1,
        immediate=false, max_packets=None, duration=None, batch_size=65536, columns=None, addresses="string"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        interface: &str,
        bpf: Option<String>,
        snaplen: u32,
        promisc: bool,
        buffer_size: Option<u32>,
        timeout: f64,
        immediate: bool,
        max_packets: Option<u64>,
        duration: Option<f64>,
        batch_size: usize,
        columns: Option<Vec<String>>,
        addresses: &str,
    ) -> PyResult<Self> {
        let schema = SchemaOptions::new(columns.as_deref(), addresses.parse().map_err(to_py)?).map_err(to_py)?;
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let opts =
            live_options(interface, bpf, snaplen, promisc, buffer_size, timeout, immediate, max_packets, duration)?;
        let source = open(py, &opts)?;
        let (handle, link_type, nanosecond) = (source.handle(), source.link_type(), source.nanosecond_timestamps());
        let reader =
            PacketReader::from_source(Box::new(source), ReadOptions { schema, batch_size, strict: true, bpf: None })
                .flush_on_idle(true);
        Ok(Self {
            schema: reader.schema(),
            inner: Mutex::new(Some(reader)),
            handle,
            interface: interface.to_string(),
            link_type,
            nanosecond,
        })
    }

    /// The next record batch (full, or whatever arrived within `timeout`), None once stopped.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<PyRecordBatch>> {
        Ok(self.next(py)?.map(PyRecordBatch::new))
    }

    /// Every batch until the capture ends. Ctrl-C ends it too: the packets captured so far are
    /// returned rather than lost.
    fn read_all(&self, py: Python<'_>) -> PyResult<PyTable> {
        let mut batches = Vec::new();
        loop {
            match self.next(py) {
                Ok(Some(batch)) => batches.push(batch),
                Ok(None) => break,
                Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => self.handle.stop(),
                Err(e) => return Err(e),
            }
        }
        PyTable::try_new(batches, self.schema.clone())
    }

    /// Ends the capture: the next read returns what is buffered, then None.
    fn stop(&self) {
        self.handle.stop();
    }

    #[getter]
    fn schema(&self) -> PySchema {
        PySchema::new(self.schema.clone())
    }

    /// The interface (in place of a file's path).
    #[getter]
    fn path(&self) -> String {
        self.interface.clone()
    }

    #[getter]
    fn file_size(&self) -> Option<u64> {
        None
    }

    /// Reader counters (packets, decode_errors, ...) and capture counters (received,
    /// dropped_kernel, dropped_interface, dropped_pktstream), as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let snapshot = py.detach(|| {
            let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(|r| (r.stats().clone(), r.bytes_read()))
        });
        let d = PyDict::new(py);
        if let Some((s, bytes)) = snapshot {
            d.set_item("packets", s.packets)?;
            d.set_item("decode_errors", s.decode_errors)?;
            let link_types = PyDict::new(py);
            for (lt, n) in &s.link_types {
                link_types.set_item(*lt, *n)?;
            }
            d.set_item("link_types", link_types)?;
            d.set_item("first_ts_ns", s.first_ts_ns)?;
            d.set_item("last_ts_ns", s.last_ts_ns)?;
            d.set_item("bytes_read", bytes)?;
        }
        stats_into(&d, &self.handle.stats())?;
        d.set_item("interface", &self.interface)?;
        d.set_item("link_type", self.link_type)?;
        d.set_item("format", "live")?;
        d.set_item("timestamp_precision", if self.nanosecond { "ns" } else { "us" })?;
        d.set_item("warnings", Vec::<String>::new())?;
        Ok(d)
    }

    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Stops the capture and releases the interface (the final counters stay in `stats`).
    fn close(&self, py: Python<'_>) {
        self.handle.stop();
        let reader = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take());
        py.detach(move || drop(reader));
    }

    /// Exports the rest of the capture through the Arrow C stream interface (single use). The
    /// consumer reads until the capture ends; Ctrl-C (checked at every read timeout) ends the
    /// stream with an error.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyCapsule>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reader = py
            .detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).take())
            .ok_or_else(|| to_py(Error::InvalidArgument("the reader was already consumed or closed".into())))?;
        let exported = Bound::new(py, PyRecordBatchReader::new(Box::new(LiveStream { reader })))?;
        exported.call_method1("__arrow_c_stream__", (requested_schema,))
    }
}

/// A live reader for consumers outside Python's control (the C stream): the GIL is released
/// while waiting, and a read timeout with nothing buffered checks for Ctrl-C instead of failing.
struct LiveStream {
    reader: PacketReader,
}

impl Iterator for LiveStream {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let reader = &mut self.reader;
            match Python::attach(|py| py.detach(|| reader.next_batch())) {
                Err(Error::Interrupted) => {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        return Some(Err(ArrowError::ExternalError(Box::new(e))));
                    }
                }
                other => return other.map_err(|e| ArrowError::ExternalError(Box::new(e))).transpose(),
            }
        }
    }
}

impl RecordBatchReader for LiveStream {
    fn schema(&self) -> SchemaRef {
        self.reader.schema()
    }
}

/// Captures from an interface into a topic; returns the report as a dict with a `capture` dict.
#[pyfunction]
#[pyo3(signature = (interface, topic, *, bootstrap_servers, format="raw", key=Some("flow"), columns=None,
    config=None, bpf=None, snaplen=65535, promisc=false, buffer_size=None, timeout=0.1, immediate=false,
    max_packets=None, duration=None, timestamp_unit="us", rows_per_message=10000, csv_delimiter=",",
    batch_size=65536, addresses="string", connect_timeout=10.0, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn produce_live(
    py: Python<'_>,
    interface: &str,
    topic: &str,
    bootstrap_servers: &str,
    format: &str,
    key: Option<&str>,
    columns: Option<Vec<String>>,
    config: Option<&Bound<'_, PyDict>>,
    bpf: Option<String>,
    snaplen: u32,
    promisc: bool,
    buffer_size: Option<u32>,
    timeout: f64,
    immediate: bool,
    max_packets: Option<u64>,
    duration: Option<f64>,
    timestamp_unit: &str,
    rows_per_message: usize,
    csv_delimiter: &str,
    batch_size: usize,
    addresses: &str,
    connect_timeout: f64,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyDict>> {
    let format: Format = format.parse().map_err(kafka_to_py)?;
    let opts = options(topic, format, key, columns, timestamp_unit, rows_per_message, csv_delimiter, connect_timeout)?;
    let cfg = producer_config(bootstrap_servers, format, &config_pairs(config)?);
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size must be at least 1"));
    }
    let live = live_options(interface, bpf, snaplen, promisc, buffer_size, timeout, immediate, max_packets, duration)?;
    let read = if format == Format::Raw {
        None
    } else {
        let reader_cols = crate::kafka::produce::reader_columns(opts.columns.as_deref(), &opts.key);
        let schema = SchemaOptions::new(reader_cols.as_deref(), addresses.parse().map_err(to_py)?).map_err(to_py)?;
        Some(ReadOptions { schema, batch_size, strict: true, bpf: None })
    };
    let source = open(py, &live)?;
    let handle = source.handle();
    let mut control = Control { progress, raised: None };
    // The source is dropped (and its final counters published) before `produce_*` returns.
    let outcome = match read {
        None => py.detach(|| produce_raw(cfg, Box::new(source), &opts, &mut |p| control.check(p)).map(|r| (r, None))),
        Some(read) => {
            let reader = PacketReader::from_source(Box::new(source), read).flush_on_idle(true);
            py.detach(|| produce_reader(cfg, opts, reader, &mut control))
        }
    };
    let capture = PyDict::new(py);
    stats_into(&capture, &handle.stats())?;
    match finish_report(py, outcome, control) {
        Ok(d) => {
            d.bind(py).set_item("capture", capture)?;
            Ok(d)
        }
        Err(e) => {
            // Ctrl-C and delivery problems carry the report: add the capture counters to it.
            if let Ok(report) = e.value(py).getattr("report") {
                if let Ok(report) = report.cast::<PyDict>() {
                    let _ = report.set_item("capture", capture);
                }
            }
            Err(e)
        }
    }
}

/// Captures from an interface into a pcap file until the capture ends or Ctrl-C; returns the
/// capture counters as a dict (`written` = packets in the file).
#[pyfunction]
#[pyo3(signature = (interface, path, *, bpf=None, snaplen=65535, promisc=false, buffer_size=None, timeout=0.1,
    immediate=false, max_packets=None, duration=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn capture_to_pcap(
    py: Python<'_>,
    interface: &str,
    path: PathBuf,
    bpf: Option<String>,
    snaplen: u32,
    promisc: bool,
    buffer_size: Option<u32>,
    timeout: f64,
    immediate: bool,
    max_packets: Option<u64>,
    duration: Option<f64>,
) -> PyResult<Py<PyDict>> {
    let live = live_options(interface, bpf, snaplen, promisc, buffer_size, timeout, immediate, max_packets, duration)?;
    let mut source = open(py, &live)?;
    let handle = source.handle();
    let file = std::fs::File::create(&path).map_err(|source| to_py(Error::Io { path: path.clone(), source }))?;
    let mut interrupted = false;
    let written = py.detach(|| {
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        let written = write_pcap(&mut source, out, &mut || {
            let ok = Python::attach(|py| py.check_signals()).is_ok();
            interrupted |= !ok;
            ok
        });
        drop(source);
        written
    });
    let written = written.map_err(to_py)?;
    let d = PyDict::new(py);
    stats_into(&d, &handle.stats())?;
    d.set_item("written", written)?;
    d.set_item("interrupted", interrupted)?;
    Ok(d.unbind())
}

/// Registers the live-capture class and functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeLiveReader>()?;
    m.add_function(wrap_pyfunction!(produce_live, m)?)?;
    m.add_function(wrap_pyfunction!(capture_to_pcap, m)?)?;
    Ok(())
}
