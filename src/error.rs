//! The one error type of the plain-Rust core.
//!
//! Every fallible core function returns [`Result`]. The binding layer (`src/py/errors.rs`) maps each
//! variant to one Python exception of the `pktstream.PktstreamError` hierarchy, so a caller can tell a
//! missing file from a corrupt one from an interrupted read without parsing message strings.
//! Malformed *packets* are not errors at all: they become rows with a `decode_status`.

use std::path::PathBuf;

/// Everything the core can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The capture file does not exist.
    #[error("{path}: no such file")]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },

    /// Any other I/O failure while opening or reading a capture.
    #[error("{path}: {source}")]
    Io {
        /// The capture being opened or read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The bytes are not a capture, or the capture's structure is corrupt at `offset`.
    #[error("{path}: {message} (at byte offset {offset}{})", record_suffix(*.record))]
    Format {
        /// The capture file.
        path: PathBuf,
        /// Byte offset of the problem in the capture's (decompressed) bytes.
        offset: u64,
        /// 1-based packet record number the problem was met at, when known.
        record: Option<u64>,
        /// What is wrong, e.g. `not a pcap or pcapng file: unknown magic number 0x...`.
        message: String,
    },

    /// A caller-supplied option is invalid (unknown column, zero batch size, ...).
    #[error("{0}")]
    InvalidArgument(String),

    /// A read was interrupted by a signal (Ctrl-C) or is still waiting on a slow source. Nothing
    /// was lost: check for a pending interrupt, then call again.
    #[error("interrupted")]
    Interrupted,

    /// A live capture could not start or failed: `message` is libpcap's, `kind` says what went wrong.
    #[error("{interface}: {message}")]
    Capture {
        /// The interface name as given.
        interface: String,
        /// The class of failure, for picking the Python exception.
        kind: CaptureErrorKind,
        /// libpcap's error text.
        message: String,
    },

    /// Building an Arrow batch failed (a bug if it ever happens: the builders are typed by the schema).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// What made a live capture fail (see [`Error::Capture`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureErrorKind {
    /// No interface of that name.
    NoSuchDevice,
    /// Not allowed to capture: root or the CAP_NET_RAW capability is needed.
    Permission,
    /// The BPF filter expression does not compile.
    Filter,
    /// Anything else libpcap reports.
    Other,
}

impl CaptureErrorKind {
    /// A stable name for the kind: `"no_such_device"`, `"permission"`, `"filter"`, `"other"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSuchDevice => "no_such_device",
            Self::Permission => "permission",
            Self::Filter => "filter",
            Self::Other => "other",
        }
    }
}

fn record_suffix(record: Option<u64>) -> String {
    record.map(|r| format!(", record {r}")).unwrap_or_default()
}

/// The core's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
