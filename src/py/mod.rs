//! The only PyO3 code: thin wrappers that convert arguments, release the GIL around work, check
//! for Ctrl-C between batches and map core errors to the `pktstream` exception hierarchy.

mod admin;
mod archive;
mod consumer;
mod distance;
mod errors;
mod flows;
mod kafka;
#[cfg(feature = "live")]
mod live;
mod pipeline;
mod pystream;
mod reader;
mod sink;

use pyo3::prelude::*;

use crate::schema::SchemaOptions;

/// The packet schema for a projection and address format, as an Arrow schema capsule object.
#[pyfunction]
#[pyo3(signature = (columns=None, addresses="string"))]
fn packet_schema(columns: Option<Vec<String>>, addresses: &str) -> PyResult<pyo3_arrow::PySchema> {
    let opts =
        SchemaOptions::new(columns.as_deref(), addresses.parse().map_err(errors::to_py)?).map_err(errors::to_py)?;
    Ok(pyo3_arrow::PySchema::new(opts.schema()))
}

/// The versions and features of this build and of the C libraries linked into it.
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Bound<'_, pyo3::types::PyDict>> {
    let info = crate::build_info::build_info();
    let d = pyo3::types::PyDict::new(py);
    d.set_item("version", info.version)?;
    d.set_item("librdkafka", info.librdkafka_version)?;
    d.set_item("librdkafka_features", info.librdkafka_features)?;
    d.set_item("libpcap", info.libpcap_version)?;
    Ok(d)
}

/// Registers the native module's contents.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<reader::NativeReader>()?;
    m.add_function(wrap_pyfunction!(packet_schema, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    kafka::register(m)?;
    admin::register(m)?;
    archive::register(m)?;
    distance::register(m)?;
    flows::register(m)?;
    sink::register(m)?;
    pipeline::register(m)?;
    #[cfg(feature = "live")]
    live::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    register(m)
}
