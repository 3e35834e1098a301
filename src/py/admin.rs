//! Topics and groups for Python: thin wrappers over `crate::kafka::admin` that release the GIL and
//! return plain tuples; `pktstream/admin.py` shapes them into tables and dataclasses.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::kafka::{config_pairs, kafka_to_py, seconds};
use crate::kafka::admin;
use crate::kafka::Config;

fn client_config(bootstrap_servers: &str, config: Option<&Bound<'_, PyDict>>) -> PyResult<Config> {
    Ok(Config::layered(&[("bootstrap.servers", bootstrap_servers)], &config_pairs(config)?))
}

/// Creates a topic; returns False if it already existed.
#[pyfunction]
#[pyo3(signature = (topic, *, partitions=1, bootstrap_servers, replication_factor=1, config=None, topic_config=None,
    timeout=10.0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_topic(
    py: Python<'_>,
    topic: &str,
    partitions: i32,
    bootstrap_servers: &str,
    replication_factor: i32,
    config: Option<&Bound<'_, PyDict>>,
    topic_config: Option<&Bound<'_, PyDict>>,
    timeout: f64,
) -> PyResult<bool> {
    let cfg = client_config(bootstrap_servers, config)?;
    let settings = config_pairs(topic_config)?;
    let timeout = seconds(timeout, "timeout")?;
    py.detach(|| admin::create_topic(&cfg, topic, partitions, replication_factor, &settings, timeout))
        .map_err(kafka_to_py)
}

/// Deletes a topic; returns False if it did not exist.
#[pyfunction]
#[pyo3(signature = (topic, *, bootstrap_servers, config=None, timeout=10.0))]
pub(crate) fn delete_topic(
    py: Python<'_>,
    topic: &str,
    bootstrap_servers: &str,
    config: Option<&Bound<'_, PyDict>>,
    timeout: f64,
) -> PyResult<bool> {
    let cfg = client_config(bootstrap_servers, config)?;
    let timeout = seconds(timeout, "timeout")?;
    py.detach(|| admin::delete_topic(&cfg, topic, timeout)).map_err(kafka_to_py)
}

/// [(name, partitions)] of every topic, or of `topic` only ([] if it does not exist).
#[pyfunction]
#[pyo3(signature = (*, bootstrap_servers, config=None, topic=None, timeout=10.0))]
pub(crate) fn list_topics(
    py: Python<'_>,
    bootstrap_servers: &str,
    config: Option<&Bound<'_, PyDict>>,
    topic: Option<&str>,
    timeout: f64,
) -> PyResult<Vec<(String, usize)>> {
    let cfg = client_config(bootstrap_servers, config)?;
    let timeout = seconds(timeout, "timeout")?;
    let topics = py.detach(|| admin::list_topics(&cfg, topic, timeout)).map_err(kafka_to_py)?;
    Ok(topics.into_iter().map(|t| (t.name, t.partitions)).collect())
}

type PartitionRow = (i32, i32, Vec<i32>, Vec<i32>, i64, i64);
type ConfigRow = (String, Option<String>, &'static str, bool);
type OffsetsRow = (String, i32, Option<i64>, i64, i64);

/// ([(partition, leader, replicas, isr, low, high)], [(config, value, source, is_sensitive)]).
#[pyfunction]
#[pyo3(signature = (topic, *, bootstrap_servers, config=None, timeout=10.0))]
pub(crate) fn describe_topic(
    py: Python<'_>,
    topic: &str,
    bootstrap_servers: &str,
    config: Option<&Bound<'_, PyDict>>,
    timeout: f64,
) -> PyResult<(Vec<PartitionRow>, Vec<ConfigRow>)> {
    let cfg = client_config(bootstrap_servers, config)?;
    let timeout = seconds(timeout, "timeout")?;
    let d = py.detach(|| admin::describe_topic(&cfg, topic, timeout)).map_err(kafka_to_py)?;
    let partitions = d.partitions.into_iter().map(|p| (p.partition, p.leader, p.replicas, p.isr, p.low, p.high));
    let configs = d.configs.into_iter().map(|c| (c.name, c.value, c.source, c.is_sensitive));
    Ok((partitions.collect(), configs.collect()))
}

/// [(group, state, protocol_type, members)].
#[pyfunction]
#[pyo3(signature = (*, bootstrap_servers, config=None, timeout=10.0))]
pub(crate) fn list_groups(
    py: Python<'_>,
    bootstrap_servers: &str,
    config: Option<&Bound<'_, PyDict>>,
    timeout: f64,
) -> PyResult<Vec<(String, String, String, usize)>> {
    let cfg = client_config(bootstrap_servers, config)?;
    let timeout = seconds(timeout, "timeout")?;
    let groups = py.detach(|| admin::list_groups(&cfg, timeout)).map_err(kafka_to_py)?;
    Ok(groups.into_iter().map(|g| (g.name, g.state, g.protocol_type, g.members)).collect())
}

/// [(topic, partition, committed or None, low, high)] of `group`.
#[pyfunction]
#[pyo3(signature = (group, *, bootstrap_servers, topics=None, config=None, timeout=10.0))]
pub(crate) fn group_offsets(
    py: Python<'_>,
    group: &str,
    bootstrap_servers: &str,
    topics: Option<Vec<String>>,
    config: Option<&Bound<'_, PyDict>>,
    timeout: f64,
) -> PyResult<Vec<OffsetsRow>> {
    let cfg = client_config(bootstrap_servers, config)?;
    let timeout = seconds(timeout, "timeout")?;
    let rows = py.detach(|| admin::group_offsets(&cfg, group, topics.as_deref(), timeout)).map_err(kafka_to_py)?;
    Ok(rows.into_iter().map(|r| (r.topic, r.partition, r.committed, r.low, r.high)).collect())
}

/// Registers the admin functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(create_topic, m)?)?;
    m.add_function(wrap_pyfunction!(delete_topic, m)?)?;
    m.add_function(wrap_pyfunction!(list_topics, m)?)?;
    m.add_function(wrap_pyfunction!(describe_topic, m)?)?;
    m.add_function(wrap_pyfunction!(list_groups, m)?)?;
    m.add_function(wrap_pyfunction!(group_offsets, m)?)?;
    Ok(())
}
