//! Kafka for Python: produce capture files and Arrow streams, consume into record batches.
//!
//! All Kafka work runs with the GIL released. The core calls back into a `control` closure once
//! per batch and about ten times a second while waiting; only there is the GIL taken, to check
//! for Ctrl-C and to call the user's progress callback. A raised exception (Ctrl-C or from the
//! callback) stops the work, the queued messages are still awaited, and the exception is raised
//! with the final report attached as its `report` attribute.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_schema::SchemaRef;
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyErr;
use pyo3_arrow::{PyArray, PyRecordBatch, PyRecordBatchReader, PySchema};

use super::errors::to_py;
use crate::error::Error;
use crate::kafka::rebalance::{HookCommit, RebalanceHook};
use crate::kafka::{
    consumer_config, produce_capture, producer_config, pump, ArrowStream, BatchProducer, Capture, Consumer,
    ConsumerOptions, Format, KafkaError, KeySpec, ProduceOptions, ProduceReport, Progress, TsUnit,
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
    pub(super) progress: Option<Py<PyAny>>,
    pub(super) raised: Option<PyErr>,
}

impl Control {
    pub(super) fn check(&mut self, p: &Progress) -> crate::kafka::Result<()> {
        if self.raised.is_some() {
            // Already stopping: keep awaiting what was queued, unless Ctrl-C comes again.
            return Python::attach(|py| py.check_signals()).map_err(|_| KafkaError::Core(Error::Interrupted));
        }
        let outcome = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(cb) = &self.progress {
                cb.call1(py, (p.rows, p.messages, p.delivered, p.failed, p.source_bytes))?;
            }
            Ok(())
        });
        outcome.map_err(|e| {
            self.raised = Some(e);
            KafkaError::Core(Error::Interrupted)
        })
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
        Err(KafkaError::Core(Error::Interrupted)) if control.raised.is_some() => {
            return Err(control.raised.unwrap_or_else(|| PyValueError::new_err("interrupted")));
        }
        Err(e) => return Err(kafka_to_py(e)),
    };
    let dict = report_dict(py, &report)?;
    if let Some(err) = control.raised {
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
    let mut control = Control { progress, raised: None };
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
    let mut control = Control { progress, raised: None };
    let outcome = py.detach(|| {
        let producer = BatchProducer::new(cfg, opts)?;
        pump(&mut ArrowStream(reader), producer, &mut |p| control.check(p))
    });
    finish_report(py, outcome, control)
}

/// The Python rebalance callbacks. `on_revoke(partitions)` returns `(commit_returned, offsets)`;
/// an exception it raises is kept and raised by the next `read_batch`.
struct PyHook {
    on_revoke: Option<Py<PyAny>>,
    on_assign: Option<Py<PyAny>>,
    raised: Mutex<Option<PyErr>>,
}

impl PyHook {
    fn keep(&self, e: PyErr) {
        let mut r = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        r.get_or_insert(e);
    }

    fn take(&self) -> Option<PyErr> {
        self.raised.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl RebalanceHook for PyHook {
    fn revoking(&self, partitions: &[(String, i32)]) -> HookCommit {
        let Some(cb) = &self.on_revoke else {
            return HookCommit::default();
        };
        Python::attach(|py| {
            let out =
                cb.call1(py, (partitions.to_vec(),)).and_then(|r| r.extract::<(bool, Vec<(String, i32, i64)>)>(py));
            match out {
                Ok((returned, offsets)) => HookCommit { returned, offsets },
                Err(e) => {
                    self.keep(e);
                    HookCommit::default()
                }
            }
        })
    }

    fn assigned(&self, partitions: &[(String, i32)]) {
        if let Some(cb) = &self.on_assign {
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (partitions.to_vec(),)) {
                    self.keep(e);
                }
            });
        }
    }
}

/// A Kafka consumer returning Arrow record batches (see `pktstream.Consumer`).
#[pyclass(module = "pktstream._native", name = "NativeConsumer", frozen)]
pub(crate) struct NativeConsumer {
    inner: Mutex<Option<Consumer>>,
    redacted: Vec<(String, String)>,
    hook: Mutex<Option<Arc<PyHook>>>,
}

impl NativeConsumer {
    /// An exception a rebalance callback raised, if any (taken).
    fn hook_error(&self) -> Option<PyErr> {
        self.hook.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|h| h.take())
    }

    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Consumer) -> crate::kafka::Result<T> + Send,
    ) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_mut() {
                Some(c) => f(c),
                None => Err(KafkaError::invalid("the consumer is closed")),
            }
        })
        .map_err(kafka_to_py)
    }
}

#[pymethods]
impl NativeConsumer {
    #[new]
    #[pyo3(signature = (*, bootstrap_servers, group_id=None, format="json", schema=None, columns=None,
        addresses="string", timestamp_unit="us", config=None, headers=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        bootstrap_servers: &str,
        group_id: Option<&str>,
        format: &str,
        schema: Option<PySchema>,
        columns: Option<Vec<String>>,
        addresses: &str,
        timestamp_unit: &str,
        config: Option<&Bound<'_, PyDict>>,
        headers: bool,
    ) -> PyResult<Self> {
        let format: Format = format.parse().map_err(kafka_to_py)?;
        let packet = SchemaOptions::new(columns.as_deref(), addresses.parse().map_err(to_py)?).map_err(to_py)?;
        let schema: Option<SchemaRef> = schema.map(PySchema::into_inner);
        let opts = ConsumerOptions {
            format,
            schema,
            packet,
            timestamp_unit: timestamp_unit.parse::<TsUnit>().map_err(kafka_to_py)?,
            headers,
        };
        let cfg = consumer_config(bootstrap_servers, group_id, &config_pairs(config)?);
        let redacted = cfg.redacted();
        let consumer = Consumer::new(cfg, opts).map_err(kafka_to_py)?;
        Ok(Self { inner: Mutex::new(Some(consumer)), redacted, hook: Mutex::new(None) })
    }

    /// Joins the group on `topics`.
    #[pyo3(signature = (topics, timeout=10.0))]
    fn subscribe(&self, py: Python<'_>, topics: Vec<String>, timeout: f64) -> PyResult<()> {
        let t = seconds(timeout, "timeout")?;
        self.with(py, move |c| c.subscribe(&topics, t))
    }

    /// Assigns every partition of `topics` from the beginning; returns [(topic, partition, end)].
    #[pyo3(signature = (topics, timeout=10.0))]
    fn assign_all(&self, py: Python<'_>, topics: Vec<String>, timeout: f64) -> PyResult<Vec<(String, i32, i64)>> {
        let t = seconds(timeout, "timeout")?;
        self.with(py, move |c| c.assign_all(&topics, t))
    }

    /// Reads exactly these (topic, partition, offset) from the given offsets, without a group.
    #[pyo3(signature = (partitions, timeout=10.0))]
    fn assign(&self, py: Python<'_>, partitions: Vec<(String, i32, i64)>, timeout: f64) -> PyResult<()> {
        let _ = seconds(timeout, "timeout")?;
        self.with(py, move |c| c.assign(&partitions))
    }

    /// Sets (or with `None`s, removes) the rebalance callbacks: `on_revoke(partitions) ->
    /// (commit_returned, [(topic, partition, next_offset)])` and `on_assign(partitions)`. They run
    /// inside `read_batch`/`close` and must not call this consumer.
    #[pyo3(signature = (on_revoke=None, on_assign=None))]
    fn set_rebalance_callbacks(
        &self,
        py: Python<'_>,
        on_revoke: Option<Py<PyAny>>,
        on_assign: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let hook = (on_revoke.is_some() || on_assign.is_some())
            .then(|| Arc::new(PyHook { on_revoke, on_assign, raised: Mutex::new(None) }));
        *self.hook.lock().unwrap_or_else(|p| p.into_inner()) = hook.clone();
        self.with(py, move |c| {
            c.set_rebalance_hook(hook.map(|h| h as Arc<dyn RebalanceHook>));
            Ok(())
        })
    }

    /// Up to `max_rows` rows, waiting at most `timeout` seconds; an empty batch if none came.
    /// An exception from a rebalance callback is raised once the rows read with it are returned.
    #[pyo3(signature = (max_rows=65536, timeout=1.0))]
    fn read_batch(&self, py: Python<'_>, max_rows: usize, timeout: f64) -> PyResult<PyRecordBatch> {
        if let Some(e) = self.hook_error() {
            return Err(e);
        }
        let t = seconds(timeout, "timeout")?;
        let mut raised: Option<PyErr> = None;
        let out = py.detach(|| {
            let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let Some(c) = guard.as_mut() else {
                return Err(KafkaError::invalid("the consumer is closed"));
            };
            c.read_batch(max_rows, t, &mut || {
                Python::attach(|py| py.check_signals()).map_err(|e| {
                    raised = Some(e);
                    KafkaError::Core(Error::Interrupted)
                })
            })
        });
        if let Some(e) = raised {
            return Err(e);
        }
        let batch = out.map_err(kafka_to_py)?;
        if batch.num_rows() == 0 {
            if let Some(e) = self.hook_error() {
                return Err(e);
            }
        }
        Ok(PyRecordBatch::new(batch))
    }

    /// Commits the offsets of everything handed out so far.
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |c| c.commit())
    }

    /// Commits explicit next offsets: [(topic, partition, next_offset)].
    fn commit_offsets(&self, py: Python<'_>, offsets: Vec<(String, i32, i64)>) -> PyResult<()> {
        self.with(py, move |c| c.commit_offsets(&offsets))
    }

    /// Moves the read position of an assigned partition (-2: beginning, -1: end).
    #[pyo3(signature = (topic, partition, offset, timeout=10.0))]
    fn seek(&self, py: Python<'_>, topic: String, partition: i32, offset: i64, timeout: f64) -> PyResult<()> {
        let t = seconds(timeout, "timeout")?;
        self.with(py, move |c| c.seek(&topic, partition, offset, t))
    }

    /// librdkafka's position of an assigned partition (after the last message or transaction
    /// marker passed), or None before anything was read.
    fn position(&self, py: Python<'_>, topic: String, partition: i32) -> PyResult<Option<i64>> {
        self.with(py, move |c| c.position(&topic, partition))
    }

    /// (low, high) watermarks of a partition: its earliest available offset and its end.
    #[pyo3(signature = (topic, partition, timeout=10.0))]
    fn watermarks(&self, py: Python<'_>, topic: String, partition: i32, timeout: f64) -> PyResult<(i64, i64)> {
        let t = seconds(timeout, "timeout")?;
        self.with(py, move |c| c.watermarks(&topic, partition, t))
    }

    /// [(topic, partition, ms since the epoch)] -> [(topic, partition, offset or None)]: the
    /// earliest offset whose timestamp is at or after the time; None when no message is.
    #[pyo3(signature = (timestamps, timeout=10.0))]
    fn offsets_for_times(
        &self,
        py: Python<'_>,
        timestamps: Vec<(String, i32, i64)>,
        timeout: f64,
    ) -> PyResult<Vec<(String, i32, Option<i64>)>> {
        let t = seconds(timeout, "timeout")?;
        self.with(py, move |c| c.offsets_for_times(&timestamps, t))
    }

    /// (rebalances that revoked partitions, partitions revoked in all).
    fn revocations(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        self.with(py, |c| Ok(c.revocations()))
    }

    /// [(topic, partition, next offset)] this member committed (the highest per partition).
    fn committed_by_me(&self, py: Python<'_>) -> PyResult<Vec<(String, i32, i64)>> {
        self.with(py, |c| Ok(c.committed_by_me().into_iter().map(|((t, p), o)| (t, p, o)).collect()))
    }

    /// The assigned (topic, partition) pairs.
    fn assignment(&self, py: Python<'_>) -> PyResult<Vec<(String, i32)>> {
        self.with(py, |c| c.assignment())
    }

    /// {(topic, partition): next offset} after what was handed out.
    fn positions(&self, py: Python<'_>) -> PyResult<Vec<(String, i32, i64)>> {
        self.with(py, |c| Ok(c.positions().iter().map(|((t, p), o)| (t.clone(), *p, *o)).collect()))
    }

    /// The configuration with secret values hidden.
    fn config(&self) -> Vec<(String, String)> {
        self.redacted.clone()
    }

    /// Leaves the group and releases the client.
    fn close(&self, py: Python<'_>) {
        let consumer = py.detach(|| {
            let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(c) = c.as_mut() {
                c.close();
            }
            c
        });
        py.detach(move || drop(consumer));
        // The callbacks refer back to the Python consumer: drop them with the client.
        *self.hook.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
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
