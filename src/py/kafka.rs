//! Kafka for Python: produce capture files and Arrow streams; decode message values. The consumer
//! class is in `consumer.rs`.
//!
//! All Kafka work runs with the GIL released. The core calls back into a `control` closure once
//! per batch and about ten times a second while waiting; only there is the GIL taken, to check
//! for Ctrl-C and to call the user's progress callback. A raised exception (Ctrl-C or from the
//! callback) stops the work, the queued messages are still awaited, and the exception is raised
//! with the final report attached as its `report` attribute.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyErr;
use pyo3_arrow::{PyArray, PyRecordBatch, PyRecordBatchReader, PySchema};

use super::consumer::NativeConsumer;
use super::errors::{to_py, Stop};
use crate::error::Error;
use crate::kafka::{
    produce_capture, producer_config, pump, ArrowStream, BatchProducer, Capture, Format, KafkaError, KeySpec,
    ProduceOptions, ProduceReport, Progress, TsUnit,
};
use crate::reader::{PacketReader, ReadOptions};
use crate::schema::SchemaOptions;

/// The Python exception classes (defined in `pktstream/exceptions.py`).
mod exc {
    use pyo3::import_exception;
    import_exception!(pktstream.exceptions, KafkaError);
    import_exception!(pktstream.exceptions, KafkaConfigError);
    import_exception!(pktstream.exceptions, KafkaTimeoutError);
    import_exception!(pktstream.exceptions, KafkaSSLError);
    import_exception!(pktstream.exceptions, KafkaAuthenticationError);
    import_exception!(pktstream.exceptions, UnknownTopicError);
}

/// Kafka errors to the `pktstream.KafkaError` family.
pub(crate) fn kafka_to_py(e: KafkaError) -> PyErr {
    let message = e.to_string();
    match e {
        KafkaError::Kafka { code, retriable, fatal, .. } => match code.as_str() {
            "SSL" => exc::KafkaSSLError::new_err((message, code, retriable, fatal)),
            "AUTHENTICATION" | "SASL_AUTHENTICATION_FAILED" | "UNSUPPORTED_SASL_MECHANISM" | "ILLEGAL_SASL_STATE" => {
                exc::KafkaAuthenticationError::new_err((message, code, retriable, fatal))
            }
            _ => exc::KafkaError::new_err((message, code, retriable, fatal)),
        },
        KafkaError::Config(_) => exc::KafkaConfigError::new_err((message, "INVALID_ARG", false, false)),
        KafkaError::Timeout(_) => exc::KafkaTimeoutError::new_err((message, "TIMED_OUT", true, false)),
        KafkaError::UnknownTopic { .. } => {
            exc::UnknownTopicError::new_err((message, "UNKNOWN_TOPIC_OR_PART", false, false))
        }
        KafkaError::OutOfMemory(_) => PyMemoryError::new_err(message),
        KafkaError::Core(core) => to_py(core),
    }
}

pub(super) fn config_pairs(config: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(d) = config {
        for (k, v) in d.iter() {
            let key: String = k.extract()?;
            // librdkafka takes text values: True -> "true", 5 -> "5".
            let value = if let Ok(b) = v.extract::<bool>() { b.to_string() } else { v.str()?.to_string() };
            out.push((key, value));
        }
    }
    Ok(out)
}

pub(super) fn seconds(s: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| PyValueError::new_err(format!("{what} must be a non-negative number")))
}

/// Runs the control protocol: Ctrl-C and the progress callback, with the GIL taken briefly.
pub(super) struct Control {
    progress: Option<Py<PyAny>>,
    stop: Stop,
}

impl Control {
    /// Calls `progress(rows, messages, delivered, failed, source_bytes)` at each check, if given.
    pub(super) fn new(progress: Option<Py<PyAny>>) -> Self {
        Self { progress, stop: Stop::default() }
    }

    pub(super) fn check(&mut self, p: &Progress) -> crate::kafka::Result<()> {
        if self.stop.is_set() {
            // Already stopping: keep awaiting what was queued, unless Ctrl-C comes again.
            return Ok(self.stop.check(|_| Ok(()))?);
        }
        Ok(self.stop.check(|py| match &self.progress {
            Some(cb) => cb.call1(py, (p.rows, p.messages, p.delivered, p.failed, p.source_bytes)).map(drop),
            None => Ok(()),
        })?)
    }
}

fn report_dict<'py>(py: Python<'py>, r: &ProduceReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rows", r.rows)?;
    d.set_item("messages", r.messages)?;
    d.set_item("delivered", r.delivered)?;
    d.set_item("failed", r.failed)?;
    d.set_item("bytes", r.bytes)?;
    d.set_item("seconds", r.seconds)?;
    d.set_item("queued_seconds", r.queued_seconds)?;
    d.set_item("errors", r.errors.clone())?;
    d.set_item("error_code", r.error_code.clone())?;
    d.set_item("interrupted", r.interrupted)?;
    d.set_item("warnings", r.warnings.clone())?;
    d.set_item("partitions", r.partitions)?;
    Ok(d)
}

/// Turns the outcome into the report dict, or raises what stopped the work with the report on it.
pub(super) fn finish_report(
    py: Python<'_>,
    outcome: crate::kafka::Result<ProduceReport>,
    control: Control,
) -> PyResult<Py<PyDict>> {
    let report = match outcome {
        Ok(r) => r,
        Err(KafkaError::Core(Error::Interrupted)) if control.stop.is_set() => {
            return Err(control.stop.take().unwrap_or_else(|| PyValueError::new_err("interrupted")));
        }
        Err(e) => return Err(kafka_to_py(e)),
    };
    let dict = report_dict(py, &report)?;
    if let Some(err) = control.stop.take() {
        let _ = err.value(py).setattr("report", &dict);
        return Err(err);
    }
    Ok(dict.unbind())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn options(
    topic: &str,
    format: Format,
    key: Option<&str>,
    columns: Option<Vec<String>>,
    timestamp_unit: &str,
    rows_per_message: usize,
    csv_delimiter: &str,
    connect_timeout: f64,
) -> PyResult<ProduceOptions> {
    let mut o = ProduceOptions::new(topic, format);
    o.key = KeySpec::parse(key);
    o.columns = columns;
    o.timestamp_unit = timestamp_unit.parse::<TsUnit>().map_err(kafka_to_py)?;
    o.rows_per_message = rows_per_message;
    o.csv_delimiter = match csv_delimiter.as_bytes() {
        [b] => *b,
        _ => return Err(PyValueError::new_err("csv_delimiter must be a single ASCII character")),
    };
    o.connect_timeout = seconds(connect_timeout, "connect_timeout")?;
    Ok(o)
}

/// Streams a capture file into a topic; returns the report as a dict.
#[pyfunction]
#[pyo3(signature = (path, topic, *, bootstrap_servers, format="json", key=Some("flow"), columns=None, config=None,
    timestamp_unit="us", rows_per_message=10000, csv_delimiter=",", batch_size=65536, addresses="string",
    connect_timeout=10.0, progress=None, bpf=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn produce_pcap(
    py: Python<'_>,
    path: PathBuf,
    topic: &str,
    bootstrap_servers: &str,
    format: &str,
    key: Option<&str>,
    columns: Option<Vec<String>>,
    config: Option<&Bound<'_, PyDict>>,
    timestamp_unit: &str,
    rows_per_message: usize,
    csv_delimiter: &str,
    batch_size: usize,
    addresses: &str,
    connect_timeout: f64,
    progress: Option<Py<PyAny>>,
    bpf: Option<String>,
) -> PyResult<Py<PyDict>> {
    let format: Format = format.parse().map_err(kafka_to_py)?;
    let opts = options(topic, format, key, columns, timestamp_unit, rows_per_message, csv_delimiter, connect_timeout)?;
    let cfg = producer_config(bootstrap_servers, format, &config_pairs(config)?);
    if batch_size == 0 {
        return Err(PyValueError::new_err("batch_size must be at least 1"));
    }
    let capture = if format == Format::Raw {
        Capture::Frames(py.detach(|| crate::source::open_filtered(&path, bpf.as_deref())).map_err(to_py)?)
    } else {
        let read = capture_read_options(&opts, addresses, batch_size, false, bpf)?;
        Capture::Packets(Box::new(py.detach(|| PacketReader::open(&path, read)).map_err(to_py)?))
    };
    let mut control = Control::new(progress);
    let outcome = py.detach(|| produce_capture(cfg, opts, capture, &mut |p| control.check(p)));
    finish_report(py, outcome, control)
}

/// How a capture is read for the decoded formats: the columns to encode plus the key's.
pub(super) fn capture_read_options(
    opts: &ProduceOptions,
    addresses: &str,
    batch_size: usize,
    strict: bool,
    bpf: Option<String>,
) -> PyResult<ReadOptions> {
    let reader_cols = crate::kafka::produce::reader_columns(opts.columns.as_deref(), &opts.key);
    let schema = SchemaOptions::new(reader_cols.as_deref(), addresses.parse().map_err(to_py)?).map_err(to_py)?;
    Ok(ReadOptions { schema, batch_size, strict, bpf })
}

/// Streams any Arrow stream (`__arrow_c_stream__`) into a topic; returns the report as a dict.
#[pyfunction]
#[pyo3(signature = (data, topic, *, bootstrap_servers, format="json", key=None, columns=None, config=None,
    timestamp_unit="us", rows_per_message=10000, csv_delimiter=",", connect_timeout=10.0, progress=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn produce(
    py: Python<'_>,
    data: PyRecordBatchReader,
    topic: &str,
    bootstrap_servers: &str,
    format: &str,
    key: Option<&str>,
    columns: Option<Vec<String>>,
    config: Option<&Bound<'_, PyDict>>,
    timestamp_unit: &str,
    rows_per_message: usize,
    csv_delimiter: &str,
    connect_timeout: f64,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyDict>> {
    let format: Format = format.parse().map_err(kafka_to_py)?;
    let opts = options(topic, format, key, columns, timestamp_unit, rows_per_message, csv_delimiter, connect_timeout)?;
    let cfg = producer_config(bootstrap_servers, format, &config_pairs(config)?);
    let reader = data.into_reader()?;
    let mut control = Control::new(progress);
    let outcome = py.detach(|| {
        let producer = BatchProducer::new(cfg, opts)?;
        pump(&mut ArrowStream(reader), producer, &mut |p| control.check(p))
    });
    finish_report(py, outcome, control)
}

/// Decodes message values (a binary array) like a consumer would, without Kafka: for Spark's
/// Kafka source and other readers of raw messages. Returns the value columns, `_error`, and
/// `_message` (the index of the value each row came from: an `arrow` value holds many rows).
#[pyfunction]
#[pyo3(signature = (values, *, format="json", schema=None, columns=None, addresses="string", timestamp_unit="us",
    keys=None, timestamps_ms=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_values(
    py: Python<'_>,
    values: PyArray,
    format: &str,
    schema: Option<PySchema>,
    columns: Option<Vec<String>>,
    addresses: &str,
    timestamp_unit: &str,
    keys: Option<PyArray>,
    timestamps_ms: Option<PyArray>,
) -> PyResult<PyRecordBatch> {
    let format: Format = format.parse().map_err(kafka_to_py)?;
    let packet = SchemaOptions::new(columns.as_deref(), addresses.parse().map_err(to_py)?).map_err(to_py)?;
    let unit = timestamp_unit.parse::<TsUnit>().map_err(kafka_to_py)?;
    let values = binary_view(values.into_inner().0, "values")?;
    let keys = keys.map(|k| binary_view(k.into_inner().0, "keys")).transpose()?;
    let times = match timestamps_ms {
        Some(t) => {
            let t = arrow_cast::cast(t.array(), &arrow_schema::DataType::Int64)
                .map_err(|e| PyValueError::new_err(format!("timestamps_ms must be integers or timestamps: {e}")))?;
            Some(t)
        }
        None => None,
    };
    {
        use arrow_array::Array;
        check_len("keys", keys.as_ref().map(Array::len), values.len())?;
        check_len("timestamps_ms", times.as_ref().map(|t| t.len()), values.len())?;
    }
    let schema = schema.map(PySchema::into_inner);
    let batch = py
        .detach(|| -> crate::kafka::Result<arrow_array::RecordBatch> {
            use arrow_array::cast::AsArray;
            use arrow_array::Array;
            let mut out = crate::kafka::messages::MessageBatch::new(format, schema, &packet, unit)?;
            let times = times.as_ref().map(|t| t.as_primitive::<arrow_array::types::Int64Type>());
            for i in 0..values.len() {
                out.push(&crate::kafka::messages::MessageRef {
                    topic: "",
                    partition: 0,
                    offset: i as i64,
                    timestamp_ms: times.and_then(|t| t.is_valid(i).then(|| t.value(i))),
                    key: keys.as_ref().and_then(|k| k.is_valid(i).then(|| k.value(i))),
                    payload: values.is_valid(i).then(|| values.value(i)),
                    link_type: None,
                    wirelen: None,
                    headers: None,
                })?;
            }
            let b = out.finish()?;
            let keep: Vec<usize> = (0..b.num_columns())
                .filter(|&c| {
                    let name = b.schema_ref().field(c).name();
                    !matches!(name.as_str(), "_topic" | "_partition" | "_timestamp" | "_key")
                })
                .collect();
            let b = b.project(&keep).map_err(Error::from)?;
            // `_offset` here is the index of the source value.
            let mut fields: Vec<arrow_schema::Field> = b.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            if let Some(f) = fields.iter_mut().find(|f| f.name() == "_offset") {
                *f = f.clone().with_name("_message");
            }
            arrow_array::RecordBatch::try_new(
                std::sync::Arc::new(arrow_schema::Schema::new(fields)),
                b.columns().to_vec(),
            )
            .map_err(|e| KafkaError::Core(Error::from(e)))
        })
        .map_err(kafka_to_py)?;
    Ok(PyRecordBatch::new(batch))
}

/// A per-message argument must have one entry per value.
fn check_len(what: &str, len: Option<usize>, values: usize) -> PyResult<()> {
    match len {
        Some(n) if n != values => {
            Err(PyValueError::new_err(format!("{what} has {n} entries but values has {values}: one per message")))
        }
        _ => Ok(()),
    }
}

fn binary_view(a: arrow_array::ArrayRef, what: &str) -> PyResult<arrow_array::BinaryArray> {
    use arrow_array::cast::AsArray;
    let cast = arrow_cast::cast(&a, &arrow_schema::DataType::Binary)
        .map_err(|e| PyValueError::new_err(format!("{what} must be a binary (or string) array: {e}")))?;
    Ok(cast.as_binary::<i32>().clone())
}

/// Registers the Kafka functions and classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeConsumer>()?;
    m.add_function(wrap_pyfunction!(produce_pcap, m)?)?;
    m.add_function(wrap_pyfunction!(produce, m)?)?;
    m.add_function(wrap_pyfunction!(decode_values, m)?)?;
    Ok(())
}
