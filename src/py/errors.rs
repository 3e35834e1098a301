//! Core errors to Python exceptions. The exception classes are defined in Python
//! (`pktstream/exceptions.py`) so users can import and subclass them without the native module.

use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::{import_exception, PyErr};

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
