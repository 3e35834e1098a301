//! The archive for Python: `archive.archive()` and `archive.query()` run here, GIL released.
//!
//! Local directories are handled entirely in Rust. Any other pyarrow filesystem is reached
//! through Python objects: a target with `open(name)`, `publish(stream, name)` and
//! `clean_parts(prefix)` for the archiver, an `opener(name)` returning a readable stream for the
//! query. Their bytes cross in chunks of about 1 MiB, the GIL taken once per chunk.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use pyo3::exceptions::{PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::{to_py, Stop};
use super::kafka::{config_pairs, kafka_to_py, seconds};
use super::pystream::{buffered, py_io, PyRead, PyWrite};
use crate::archive::names;
use crate::archive::query::{self, Filter, LocalFiles, Opener, QueryFile};
use crate::archive::rolling::{ArchiveReport, FileOut, LocalDir, RollOptions, Target};
use crate::archive::writer::{self, ArchiveError, ArchiveOptions};
use crate::error::Error;
use crate::kafka::{consumer_config, Consumer, ConsumerOptions, Format, TsUnit};
use crate::schema::SchemaOptions;

/// A file on a pyarrow filesystem being written: `target.open(name)`'s stream, published by
/// `target.publish(stream, name)`.
struct PyFileOut {
    target: Py<PyAny>,
    out: BufWriter<PyWrite>,
    name: String,
}

impl Write for PyFileOut {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.out.write(data)
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl FileOut for PyFileOut {
    fn publish(self: Box<Self>) -> io::Result<String> {
        let PyWrite(stream) = self.out.into_inner().map_err(|e| e.into_error())?;
        Python::attach(|py| self.target.call_method1(py, "publish", (stream, &self.name))?.extract(py)).map_err(py_io)
    }

    fn discard(self: Box<Self>) -> io::Result<()> {
        // What is still buffered is dropped, not written.
        let (PyWrite(stream), _) = self.out.into_parts();
        Python::attach(|py| stream.call_method0(py, "close").map(drop)).map_err(py_io)
    }
}

/// A target implemented in Python (archive.py's `_Target` for pyarrow filesystems).
struct PyTarget(Py<PyAny>);

impl Target for PyTarget {
    fn create(&mut self, name: &str) -> io::Result<Box<dyn FileOut>> {
        let stream = Python::attach(|py| self.0.call_method1(py, "open", (name,))).map_err(py_io)?;
        let target = Python::attach(|py| self.0.clone_ref(py));
        Ok(Box::new(PyFileOut { target, out: buffered(stream), name: name.to_string() }))
    }

    fn clean_parts(&mut self, prefix: &str) -> io::Result<()> {
        Python::attach(|py| self.0.call_method1(py, "clean_parts", (prefix,)).map(drop)).map_err(py_io)
    }
}

/// Opens files through a Python callable `opener(name) -> readable stream`.
struct PyOpener(Py<PyAny>);

impl Opener for PyOpener {
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        let stream = Python::attach(|py| self.0.call1(py, (name,))).map_err(py_io)?;
        Ok(Box::new(PyRead::new(stream)))
    }
}

fn report_dict<'py>(py: Python<'py>, r: &ArchiveReport, topic: &str) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("packets", r.packets)?;
    d.set_item("files", r.files)?;
    d.set_item("bytes", r.bytes)?;
    d.set_item("bad_timestamps", r.bad_timestamps)?;
    d.set_item("skipped", r.skipped)?;
    let committed = PyDict::new(py);
    for (p, o) in &r.committed {
        committed.set_item((topic, *p), *o)?;
    }
    d.set_item("committed", committed)?;
    d.set_item("paths", r.paths.clone())?;
    d.set_item("interrupted", r.interrupted)?;
    Ok(d)
}

fn archive_to_py(e: ArchiveError) -> PyErr {
    match e {
        ArchiveError::Kafka(k) => kafka_to_py(k),
        ArchiveError::Io { what, source } => match source.raw_os_error() {
            Some(errno) => PyOSError::new_err((errno, format!("archive {what}: {source}"))),
            None => PyOSError::new_err(format!("archive {what}: {source}")),
        },
        ArchiveError::Batch(m) => super::errors::PktstreamError::new_err(m),
    }
}

/// Archives a raw topic into rolling pcap files: into the local directory `output`, or through
/// `target` (a Python object, for pyarrow filesystems). Returns the report as a dict; on Ctrl-C
/// (or an exception from `progress`) the files are closed and committed, and the exception is
/// raised with the report dict as its `report` attribute.
#[pyfunction]
#[pyo3(signature = (topic, output=None, *, target=None, bootstrap_servers, group_id, roll_packets, roll_seconds,
                    timestamp_unit="us", idle_timeout=None, max_packets=None, config=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn archive_run(
    py: Python<'_>,
    topic: String,
    output: Option<PathBuf>,
    target: Option<Py<PyAny>>,
    bootstrap_servers: &str,
    group_id: &str,
    roll_packets: u64,
    roll_seconds: f64,
    timestamp_unit: &str,
    idle_timeout: Option<f64>,
    max_packets: Option<u64>,
    config: Option<&Bound<'_, PyDict>>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyDict>> {
    if roll_packets < 1 || roll_seconds.is_nan() || roll_seconds <= 0.0 {
        return Err(PyValueError::new_err("roll_packets must be at least 1 and roll_seconds positive"));
    }
    let unit: TsUnit = timestamp_unit.parse().map_err(kafka_to_py)?;
    let roll = RollOptions {
        roll_packets,
        roll_ns: (roll_seconds * 1e9).min(i64::MAX as f64).max(1.0) as i64,
        nanosecond: timestamp_unit == "ns",
    };
    let opts = ArchiveOptions {
        topic: topic.clone(),
        roll,
        unit,
        idle_timeout: idle_timeout.map(|t| seconds(t, "idle_timeout")).transpose()?,
        max_packets,
    };
    let target: Box<dyn Target> = match (target, output) {
        (Some(t), _) => Box::new(PyTarget(t)),
        (None, Some(dir)) => Box::new(LocalDir::new(&dir).map_err(|e| to_py(Error::Io { path: dir, source: e }))?),
        (None, None) => return Err(PyValueError::new_err("give an output directory or a target")),
    };
    let cfg = consumer_config(bootstrap_servers, Some(group_id), &config_pairs(config)?);
    let copts = ConsumerOptions {
        format: Format::Binary,
        schema: None,
        packet: SchemaOptions::default(),
        timestamp_unit: unit,
        headers: false,
    };
    let mut consumer = Consumer::new(cfg, copts).map_err(kafka_to_py)?;
    let stop = Stop::default();
    let result = py.detach(|| {
        let mut interrupted = || Ok(stop.check(|_| Ok(()))?);
        let mut progress_cb = |r: &ArchiveReport| {
            Ok(stop.check(|py| match &progress {
                Some(cb) => cb.call1(py, (report_dict(py, r, &topic)?,)).map(drop),
                None => Ok(()),
            })?)
        };
        writer::run(&mut consumer, target, &opts, &mut progress_cb, &mut interrupted)
    });
    // Leaving the group can wait on the broker: never with the GIL held.
    py.detach(move || drop(consumer));
    let report = result.map_err(archive_to_py)?;
    let d = report_dict(py, &report, &opts.topic)?;
    if report.interrupted {
        let e = stop.take().unwrap_or_else(|| PyKeyboardInterrupt::new_err(()));
        e.value(py).setattr("report", &d)?;
        return Err(e);
    }
    Ok(d.unbind())
}

/// Merges the rolled `files` ([(name, first_ts_ns)]) that match into one time-ordered pcap at
/// `output`; returns {"packets", "files_opened", "records_read", "max_open"}. `opener(name)`
/// opens a file on another filesystem; without it the names are local paths.
#[pyfunction]
#[pyo3(signature = (files, output, *, start=None, end=None, src_ip=None, dst_ip=None, port=None, proto=None,
                    bpf=None, opener=None))]
#[allow(clippy::too_many_arguments)]
fn archive_query(
    py: Python<'_>,
    files: Vec<(String, i64)>,
    output: PathBuf,
    start: Option<i64>,
    end: Option<i64>,
    src_ip: Option<&str>,
    dst_ip: Option<&str>,
    port: Option<u16>,
    proto: Option<u8>,
    bpf: Option<String>,
    opener: Option<Py<PyAny>>,
) -> PyResult<Py<PyDict>> {
    let ip = |s: Option<&str>, what: &str| {
        s.map(|s| s.parse().map_err(|_| PyValueError::new_err(format!("{what} {s:?} is not an IP address"))))
            .transpose()
    };
    let filter = Filter { start, end, src_ip: ip(src_ip, "src_ip")?, dst_ip: ip(dst_ip, "dst_ip")?, port, proto, bpf };
    let files: Vec<QueryFile> = files.into_iter().map(|(name, first_ts_ns)| QueryFile { name, first_ts_ns }).collect();
    let opener: Box<dyn Opener + Send + Sync> = match opener {
        Some(o) => Box::new(PyOpener(o)),
        None => Box::new(LocalFiles),
    };
    let stop = Stop::default();
    let result = py.detach(|| query::query(&files, opener.as_ref(), &filter, &output, &mut || stop.check(|_| Ok(()))));
    if let Some(e) = stop.take() {
        return Err(e);
    }
    let r = result.map_err(to_py)?;
    let d = PyDict::new(py);
    d.set_item("packets", r.packets)?;
    d.set_item("files_opened", r.files_opened)?;
    d.set_item("records_read", r.records_read)?;
    d.set_item("max_open", r.max_open)?;
    Ok(d.unbind())
}

/// Whether `name` is a part file of `prefix`'s rolled files that a process now gone left.
#[pyfunction]
fn archive_is_stale_part(name: &str, prefix: &str) -> bool {
    names::is_stale_part(name, prefix)
}

/// Registers the archive functions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(archive_run, m)?)?;
    m.add_function(wrap_pyfunction!(archive_query, m)?)?;
    m.add_function(wrap_pyfunction!(archive_is_stale_part, m)?)?;
    Ok(())
}
