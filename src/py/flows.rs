//! `NativeFlowReader`: a capture file, or a packet reader's source (a file reader, a live
//! capture), as a stream of flow record batches for Python.
//!
//! As `NativeReader`: each batch is built with the GIL released, the GIL is taken back between
//! batches to check for Ctrl-C, and the reader sits behind a mutex only ever locked with the GIL
//! released. A live capture keeps its handle here, so that `stop()` and the capture's drop
//! counters work as they do on the packet reader it came from.

use std::path::PathBuf;
#[cfg(feature = "live")]
use std::sync::Arc;
use std::sync::Mutex;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use pyo3_arrow::{PyRecordBatch, PyRecordBatchReader, PySchema, PyTable};

use super::errors::to_py;
use super::reader::NativeReader;
use crate::error::Error;
use crate::flow::{FlowOptions, FlowReader, FrameMeter, MeterStats};
#[cfg(feature = "live")]
use crate::source::live::LiveHandle;

#[pyclass(module = "pktstream._native", name = "NativeFlowReader", frozen)]
pub(crate) struct NativeFlowReader {
    inner: Mutex<Option<FlowReader>>,
    schema: SchemaRef,
    path: PathBuf,
    file_size: Option<u64>,
    #[cfg(feature = "live")]
    live: Option<Arc<LiveHandle>>,
}

fn seconds_to_ns(name: &str, s: f64) -> PyResult<i64> {
    if !(s.is_finite() && s > 0.0 && s < 1e9) {
        return Err(PyValueError::new_err(format!("{name} must be a positive number of seconds, not {s}")));
    }
    Ok((s * 1e9).round() as i64)
}

/// The meter's options as `pktstream._flows` passes them: a dict with every key.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub(crate) struct MeterArgs {
    idle_timeout: f64,
    active_timeout: f64,
    tcp_close: bool,
    tcp_close_grace: f64,
    accounting: String,
    statistics: bool,
    server_name: bool,
    columns: Option<Vec<String>>,
    max_flows: usize,
    batch_size: usize,
}

impl MeterArgs {
    fn options(&self) -> PyResult<FlowOptions> {
        Ok(FlowOptions {
            idle_timeout_ns: seconds_to_ns("idle_timeout", self.idle_timeout)?,
            active_timeout_ns: seconds_to_ns("active_timeout", self.active_timeout)?,
            tcp_close: self.tcp_close,
            tcp_close_grace_ns: seconds_to_ns("tcp_close_grace", self.tcp_close_grace)?,
            accounting: self.accounting.parse().map_err(to_py)?,
            statistics: self.statistics,
            server_name: self.server_name,
            max_flows: self.max_flows,
        })
    }
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

/// Where the flows come from: a path, or the source of a packet reader.
struct Opened {
    reader: FlowReader,
    path: PathBuf,
    #[cfg(feature = "live")]
    live: Option<Arc<LiveHandle>>,
}

fn used_up() -> PyErr {
    to_py(Error::InvalidArgument("the packet reader was already consumed or closed".into()))
}

/// Opens `source`: a `NativeReader` of a file or a live capture (whose source the meter takes
/// over from where the reader stopped) or a path.
fn open(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    opts: FlowOptions,
    columns: Option<&[String]>,
    batch_size: usize,
    strict: bool,
    bpf: Option<&str>,
) -> PyResult<Opened> {
    let native = source.cast::<NativeReader>().ok();
    if native.is_some() && bpf.is_some() {
        return Err(PyValueError::new_err(
            "bpf applies to a capture path: a packet reader's own filter (its bpf=) already applies to its packets",
        ));
    }
    if let Some(native) = native {
        let native = native.get();
        let (packets, path) = native.take(py).ok_or_else(used_up)?;
        let source = packets.into_source().ok_or_else(used_up)?;
        #[allow(unused_mut)]
        let mut reader =
            py.detach(|| FlowReader::from_source(source, opts.clone(), columns, batch_size, strict)).map_err(to_py)?;
        #[cfg(feature = "live")]
        {
            let live = native.live_handle();
            if live.is_some() {
                reader.expire_on_idle(true);
            }
            return Ok(Opened { reader, path, live });
        }
        #[cfg(not(feature = "live"))]
        return Ok(Opened { reader, path });
    }
    let path: PathBuf = source.extract()?;
    let reader = py.detach(|| FlowReader::open(&path, opts, columns, batch_size, strict, bpf)).map_err(to_py)?;
    #[cfg(feature = "live")]
    return Ok(Opened { reader, path, live: None });
    #[cfg(not(feature = "live"))]
    Ok(Opened { reader, path })
}

#[pymethods]
impl NativeFlowReader {
    /// `source` is a capture's path, or a `NativeReader` (a file's or a live capture's) whose
    /// source the meter takes over (the packet reader reads nothing more).
    #[new]
    #[pyo3(signature = (source, meter, *, strict=false, bpf=None))]
    fn new(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        meter: MeterArgs,
        strict: bool,
        bpf: Option<&str>,
    ) -> PyResult<Self> {
        let opts = meter.options()?;
        let (columns, batch_size) = (meter.columns.as_deref(), meter.batch_size);
        let mut opened = open(py, source, opts, columns, batch_size, strict, bpf)?;
        // Come back for Ctrl-C every ~100 ms of reading, even while no flow ends.
        opened.reader.yield_every(1 << 18);
        Ok(Self {
            schema: opened.reader.schema(),
            file_size: opened.reader.info().file_size,
            inner: Mutex::new(Some(opened.reader)),
            path: opened.path,
            #[cfg(feature = "live")]
            live: opened.live,
        })
    }

    /// Ends a live capture: the flows still active are flushed, then the stream ends. Nothing
    /// for a file.
    fn stop(&self) {
        #[cfg(feature = "live")]
        if let Some(handle) = &self.live {
            handle.stop();
        }
    }

    /// Whether the flows come from a live capture.
    #[getter]
    fn live(&self) -> bool {
        #[cfg(feature = "live")]
        return self.live.is_some();
        #[cfg(not(feature = "live"))]
        false
    }

    /// The next batch of ended flows, or None once the capture is metered and flushed.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<PyRecordBatch>> {
        Ok(self.next(py)?.map(PyRecordBatch::new))
    }

    /// Every remaining flow as one table. On a live capture Ctrl-C ends the capture: the flows
    /// so far are flushed and returned rather than lost.
    fn read_all(&self, py: Python<'_>) -> PyResult<PyTable> {
        let mut batches = Vec::new();
        loop {
            match self.next(py) {
                Ok(Some(batch)) => batches.push(batch),
                Ok(None) => break,
                Err(e) if self.live() && e.is_instance_of::<PyKeyboardInterrupt>(py) => self.stop(),
                Err(e) => return Err(e),
            }
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
            meter_stats_into(&d, &s)?;
            d.set_item("bytes_read", bytes_read)?;
            d.set_item("format", format)?;
            d.set_item("warnings", warnings)?;
        }
        #[cfg(feature = "live")]
        if let Some(handle) = &self.live {
            super::live::stats_into(&d, &handle.stats())?;
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

    /// Releases the file (stops a live capture); later reads return nothing.
    fn close(&self, py: Python<'_>) {
        self.stop();
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

fn meter_stats_into(d: &Bound<'_, PyDict>, s: &MeterStats) -> PyResult<()> {
    d.set_item("packets", s.packets)?;
    d.set_item("filtered", s.filtered)?;
    d.set_item("metered", s.metered)?;
    d.set_item("not_ip", s.not_ip)?;
    d.set_item("fragments", s.fragments)?;
    d.set_item("flows", s.flows)?;
    d.set_item("active", s.active)?;
    d.set_item("evicted", s.evicted)?;
    Ok(())
}

/// A flow meter fed with batches of frames (a `binary` consumer's batches), for Python.
#[pyclass(module = "pktstream._native", name = "NativeFlowMeter", frozen)]
pub(crate) struct NativeFlowMeter {
    inner: Mutex<FrameMeter>,
    schema: SchemaRef,
}

impl NativeFlowMeter {
    /// Runs `f` on the meter with the GIL released, then every batch of ended flows.
    fn with(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut FrameMeter) -> Result<(), Error> + Send,
    ) -> PyResult<Vec<PyRecordBatch>> {
        py.detach(|| {
            let mut meter = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut meter)?;
            let mut out = Vec::new();
            while let Some(batch) = meter.next_batch()? {
                out.push(PyRecordBatch::new(batch));
            }
            Ok(out)
        })
        .map_err(to_py)
    }
}

#[pymethods]
impl NativeFlowMeter {
    #[new]
    #[pyo3(signature = (meter, *, timestamp_unit="us"))]
    fn new(meter: MeterArgs, timestamp_unit: &str) -> PyResult<Self> {
        let opts = meter.options()?;
        let unit =
            timestamp_unit.parse().map_err(|e: crate::kafka::KafkaError| PyValueError::new_err(e.to_string()))?;
        let frames = FrameMeter::new(opts, meter.columns.as_deref(), meter.batch_size, unit).map_err(to_py)?;
        Ok(Self { schema: frames.schema(), inner: Mutex::new(frames) })
    }

    /// Meters a batch of frames; returns the batches of flows that ended.
    fn update(&self, py: Python<'_>, batch: PyRecordBatch) -> PyResult<Vec<PyRecordBatch>> {
        let batch = batch.into_inner();
        self.with(py, move |m| m.push(&batch))
    }

    /// Ends every active flow; returns them in batches.
    fn finish(&self, py: Python<'_>) -> PyResult<Vec<PyRecordBatch>> {
        self.with(py, |m| {
            m.finish();
            Ok(())
        })
    }

    #[getter]
    fn schema(&self) -> PySchema {
        PySchema::new(self.schema.clone())
    }

    /// Counters so far, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (s, empty, kafka_time) = py.detach(|| self.inner.lock().unwrap_or_else(|p| p.into_inner()).stats());
        let d = PyDict::new(py);
        meter_stats_into(&d, &s)?;
        d.set_item("empty", empty)?;
        d.set_item("kafka_timestamps", kafka_time)?;
        Ok(d)
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
    m.add_class::<NativeFlowMeter>()?;
    m.add_function(wrap_pyfunction!(flow_schema, m)?)?;
    Ok(())
}
