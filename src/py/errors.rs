//! Core errors to Python exceptions. The exception classes are defined in Python
//! (`pktstream/exceptions.py`) so users can import and subclass them without the native module.

use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyValueError};
use std::sync::Mutex;

use pyo3::{import_exception, PyErr, PyResult, Python};

use crate::error::Error;

import_exception!(pktstream.exceptions, PktstreamError);
import_exception!(pktstream.exceptions, FormatError);
import_exception!(pktstream.exceptions, CaptureError);

pub(crate) fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::NotFound { path } => {
            PyFileNotFoundError::new_err((2, "No such file or directory", path.display().to_string()))
        }
        Error::Io { path, source } => match source.raw_os_error() {
            Some(errno) => PyOSError::new_err((errno, source.to_string(), path.display().to_string())),
            None => PyOSError::new_err(message),
        },
        Error::Format { path, offset, record, .. } => {
            FormatError::new_err((message, path.display().to_string(), offset, record))
        }
        Error::InvalidArgument(m) => PyValueError::new_err(m),
        Error::Interrupted => PyKeyboardInterrupt::new_err(()),
        Error::Capture { interface, kind, .. } => CaptureError::new_err((message, interface, kind.as_str())),
        Error::Arrow(_) => PktstreamError::new_err(message),
    }
}

/// The Python exception that stops a long call running with the GIL released: Ctrl-C, or one a
/// user callback raised. The core sees [`Error::Interrupted`] and winds down (publishing,
/// committing, awaiting deliveries); the binding raises the kept exception when the call returns.
/// A mutex, not a cell, so closures sharing it can cross `py.detach`.
#[derive(Default)]
pub(crate) struct Stop(Mutex<Option<PyErr>>);

impl Stop {
    /// Takes the GIL, checks for Ctrl-C, then runs `callback` (a user's progress callback, or
    /// nothing). An exception is kept (the first one: what stopped the call) and becomes
    /// `Interrupted`.
    pub(crate) fn check(&self, callback: impl FnOnce(Python<'_>) -> PyResult<()>) -> Result<(), Error> {
        Python::attach(|py| {
            py.check_signals()?;
            callback(py)
        })
        .map_err(|e| {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
            Error::Interrupted
        })
    }

    /// Whether an exception was kept.
    pub(crate) fn is_set(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// The exception kept, if any.
    pub(crate) fn take(&self) -> Option<PyErr> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
