//! `NativeConsumer`: a Kafka consumer handing out Arrow record batches, with Python rebalance
//! callbacks.
//!
//! As everywhere in `src/py`, Kafka work runs with the GIL released; the rebalance callbacks take
//! it back only to call the user's `on_revoke` / `on_assign`, and an exception one raises is kept
//! and raised by the next `read_batch`.

use std::sync::{Arc, Mutex};

use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyErr;
use pyo3_arrow::{PyRecordBatch, PySchema};

use super::errors::to_py;
use super::kafka::{config_pairs, kafka_to_py, seconds};
use crate::error::Error;
use crate::kafka::rebalance::{HookCommit, RebalanceHook};
use crate::kafka::{consumer_config, Consumer, ConsumerOptions, Format, KafkaError, TsUnit};
use crate::schema::SchemaOptions;

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
