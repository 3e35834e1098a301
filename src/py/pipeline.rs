//! Binding of the windowed pipeline (`crate::distance::pipeline`): `pipelines.netflow_distances`.
//!
//! The whole run happens with the GIL released. It is taken only in the control callbacks: about
//! every 100 ms while waiting (for Ctrl-C) and once per read (Ctrl-C, then the Python callback that
//! logs large groups and reports progress). Whatever ends the run, the report comes back: as the
//! return value, or as the `report` attribute of the exception raised.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3_arrow::PySchema;

use super::distance::{options, to_py as distance_to_py};
use super::errors::Stop;
use super::kafka::{config_pairs, kafka_to_py, seconds};
use crate::distance::pipeline::{self, driver::Control, EventSpec, Normalize, PipelineConfig, PipelineError, Report};
use crate::distance::LargeGroupInfo;
use crate::error::Error;
use crate::kafka::{consumer_config, producer_config, Format, KafkaError};

mod exc {
    use pyo3::import_exception;
    import_exception!(pktstream.exceptions, DeliveryError);
}

fn report_dict<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("events", r.events)?;
    d.set_item("invalid", r.invalid)?;
    d.set_item("late_events", r.late_events)?;
    d.set_item("large_groups", r.large_groups)?;
    d.set_item("large_group_events", r.large_group_events)?;
    d.set_item("windows", r.windows)?;
    d.set_item("pairs", r.pairs)?;
    d.set_item("delivered", r.delivered)?;
    d.set_item("commits", r.commits)?;
    let committed = PyDict::new(py);
    for (t, p, o) in &r.committed {
        committed.set_item((t, p), o)?;
    }
    d.set_item("committed", committed)?;
    d.set_item("seconds", r.seconds)?;
    d.set_item("active_seconds", r.active_seconds)?;
    d.set_item("stopped", r.stopped)?;
    Ok(d)
}

/// Ctrl-C and the Python progress callback, with the GIL taken briefly.
struct PyControl {
    progress: Option<Py<PyAny>>,
    stop: Stop,
}

impl Control for PyControl {
    fn interrupted(&mut self) -> crate::kafka::Result<()> {
        Ok(self.stop.check(|_| Ok(()))?)
    }

    fn progress(&mut self, report: &Report, large: &[LargeGroupInfo]) -> crate::kafka::Result<()> {
        let Self { progress, stop } = self;
        Ok(stop.check(|py| match progress {
            Some(cb) => {
                let large: Vec<(String, Option<i64>, usize)> =
                    large.iter().map(|g| (g.key.clone(), g.window, g.events)).collect();
                cb.call1(py, (report_dict(py, report)?, large)).map(drop)
            }
            None => Ok(()),
        })?)
    }
}

/// `None`, `"log1p"`, or one `(offset, scale)` or `None` per feature.
fn normalize(value: Option<&Bound<'_, PyAny>>, d: usize) -> PyResult<Normalize> {
    let Some(v) = value else { return Ok(Normalize::None) };
    if v.is_instance_of::<PyString>() {
        return match v.extract::<String>()?.as_str() {
            "log1p" => Ok(Normalize::Log1p),
            other => Err(PyValueError::new_err(format!("normalize must be None or 'log1p', not {other:?}"))),
        };
    }
    let each: Vec<Option<(f64, f64)>> = v.extract()?;
    if each.len() != d {
        return Err(PyValueError::new_err(format!("normalize: {} entries for {d} features", each.len())));
    }
    Ok(Normalize::Affine(each))
}

fn raise(e: PipelineError, control: &PyControl) -> PyErr {
    match e {
        PipelineError::Kafka(KafkaError::Core(Error::Interrupted)) if control.stop.is_set() => {
            control.stop.take().unwrap_or_else(|| PyValueError::new_err("interrupted"))
        }
        PipelineError::Kafka(e) => kafka_to_py(e),
        PipelineError::Distance(e) => distance_to_py(e),
        PipelineError::Delivery { failed, messages, first, code } => {
            let message = format!("{failed} of {messages} messages were not delivered; first error: {first}");
            exc::DeliveryError::new_err((message, code))
        }
    }
}

/// Runs the netflow distance pipeline; returns the report as a dict (see the module docs).
#[pyfunction]
#[pyo3(signature = (in_topics, out_topic, *, bootstrap_servers, group_id, key, id, time, features, window,
    allowed_lateness, metric, normalize, top_k, max_distance, max_group_events, on_large_group, max_events,
    idle_timeout, idle_partition_timeout, batch_size, schema, config, assignment_wait, progress))]
#[allow(clippy::too_many_arguments)]
fn netflow_pipeline(
    py: Python<'_>,
    in_topics: Vec<String>,
    out_topic: String,
    bootstrap_servers: &str,
    group_id: &str,
    key: String,
    id: String,
    time: String,
    features: Vec<String>,
    window: i64,
    allowed_lateness: i64,
    metric: &str,
    normalize: Option<&Bound<'_, PyAny>>,
    top_k: Option<usize>,
    max_distance: Option<f64>,
    max_group_events: Option<usize>,
    on_large_group: &str,
    max_events: Option<u64>,
    idle_timeout: Option<f64>,
    idle_partition_timeout: f64,
    batch_size: usize,
    schema: PySchema,
    config: Option<&Bound<'_, PyDict>>,
    assignment_wait: f64,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyDict>> {
    let pairs = options(metric, top_k, max_distance, true, max_group_events, on_large_group)?;
    let normalize = self::normalize(normalize, features.len())?;
    let user = config_pairs(config)?;
    let cfg = PipelineConfig {
        in_topics,
        out_topic,
        consumer: consumer_config(bootstrap_servers, Some(group_id), &user),
        producer: producer_config(bootstrap_servers, Format::Json, &user),
        schema: schema.into_inner(),
        spec: EventSpec { key, id, time, features, normalize },
        window,
        allowed_lateness,
        pairs,
        max_events,
        idle_timeout: idle_timeout.map(|t| seconds(t, "idle_timeout")).transpose()?,
        idle_partition_timeout,
        batch_size,
        assignment_wait: seconds(assignment_wait, "assignment_wait")?,
        connect_timeout: Duration::from_secs(10),
    };
    let mut control = PyControl { progress, stop: Stop::default() };
    let (report, outcome) = py.detach(|| pipeline::run(cfg, &mut control));
    let dict = report_dict(py, &report)?;
    match outcome {
        Ok(()) => Ok(dict.unbind()),
        Err(e) => {
            let err = raise(e, &control);
            let _ = err.value(py).setattr("report", &dict);
            Err(err)
        }
    }
}

/// Registers the pipeline function.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(netflow_pipeline, m)?)?;
    Ok(())
}
