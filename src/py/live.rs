//! Live capture for Python: `capture` (a `NativeReader` over an interface), `produce_live` and
//! `capture_to_pcap`.
//!
//! Every wait on libpcap runs with the GIL released. libpcap's read timeout brings control back
//! at least every `timeout` seconds, and that is where Ctrl-C is checked, so a quiet link stays
//! interruptible. The reader itself is the file reader's class ([`super::reader`]): a batch that
//! was read is always handed out, and after Ctrl-C `stop()` ends the capture and the remaining
//! rows can still be read.

use std::path::PathBuf;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::to_py;
use super::kafka::{capture_read_options, config_pairs, finish_report, kafka_to_py, options, seconds, Control};
use super::reader::{Live, NativeReader};
use crate::error::Error;
use crate::kafka::{produce_capture, producer_config, Capture, Format};
use crate::reader::{PacketReader, ReadOptions};
use crate::schema::SchemaOptions;
use crate::source::live::{write_pcap, CaptureStats, LiveOptions, LiveSource};

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

/// Opens a live capture as a `NativeReader` (see `pktstream.capture`).
#[pyfunction]
#[pyo3(signature = (interface, *, bpf=None, snaplen=65535, promisc=false, buffer_size=None, timeout=0.1,
    immediate=false, max_packets=None, duration=None, batch_size=65536, columns=None, addresses="string"))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn capture(
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
) -> PyResult<NativeReader> {
    let schema = SchemaOptions::new(columns.as_deref(), addresses.parse().map_err(to_py)?).map_err(to_py)?;
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size must be at least 1"));
    }
    let opts = live_options(interface, bpf, snaplen, promisc, buffer_size, timeout, immediate, max_packets, duration)?;
    let source = open(py, &opts)?;
    let live =
        Live { handle: source.handle(), link_type: source.link_type(), nanosecond: source.nanosecond_timestamps() };
    let reader =
        PacketReader::from_source(Box::new(source), ReadOptions { schema, batch_size, strict: true, bpf: None })
            .flush_on_idle(true);
    Ok(NativeReader::live(reader, interface, live))
}

/// A live reader as an Arrow stream, for consumers outside Python's control (the C stream).
pub(crate) fn stream(reader: PacketReader) -> Box<dyn RecordBatchReader + Send> {
    Box::new(LiveStream { reader })
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
    let read = match format {
        Format::Raw => None,
        _ => Some(capture_read_options(&opts, addresses, batch_size, true, None)?),
    };
    let source = open(py, &live)?;
    let handle = source.handle();
    let capture = match read {
        None => Capture::Frames(Box::new(source)),
        Some(read) => Capture::Packets(Box::new(PacketReader::from_source(Box::new(source), read).flush_on_idle(true))),
    };
    let mut control = Control::new(progress);
    // The source is dropped (and its final counters published) before `produce_capture` returns.
    let outcome = py.detach(|| produce_capture(cfg, opts, capture, &mut |p| control.check(p)));
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
    m.add_function(wrap_pyfunction!(capture, m)?)?;
    m.add_function(wrap_pyfunction!(produce_live, m)?)?;
    m.add_function(wrap_pyfunction!(capture_to_pcap, m)?)?;
    Ok(())
}
