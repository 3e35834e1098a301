//! Reading ahead on a second thread.
//!
//! `read()` copying the file into user memory is a fifth of a decode, and inflating a gzip
//! capture costs more than decoding it. A reader thread does both into 1 MiB chunks while the
//! caller decodes the previous one, so the decoding thread only parses. Each chunk keeps
//! [`HEAD`] bytes of headroom in front of its data, where the consumer moves the unparsed tail of
//! the previous chunk (a record cut by the chunk boundary), so records stay contiguous without
//! copying the chunk itself. At most two filled chunks wait in the channel: memory stays bounded.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

/// Headroom in front of each chunk's data, for the previous chunk's unparsed tail.
pub(crate) const HEAD: usize = 64 << 10;
/// Bytes read per chunk.
const CHUNK: usize = 1 << 20;
/// How long a wait for the next chunk lasts before the caller gets a chance to check for Ctrl-C.
const WAIT: Duration = Duration::from_millis(200);

type Filled = io::Result<(Vec<u8>, usize)>;

pub(crate) struct Prefetch {
    filled: Receiver<Filled>,
    empty: SyncSender<Vec<u8>>,
}

impl Prefetch {
    /// Starts the reader thread. It ends at end of stream, on a read error (which it passes on),
    /// or when this `Prefetch` is dropped.
    pub(crate) fn spawn(mut inner: Box<dyn Read + Send>) -> io::Result<Self> {
        let (filled_tx, filled) = sync_channel::<Filled>(2);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(4);
        std::thread::Builder::new().name("pktstream-read".into()).spawn(move || loop {
            let mut buf = empty_rx.try_recv().unwrap_or_else(|_| vec![0u8; HEAD + CHUNK]);
            let result = loop {
                match inner.read(&mut buf[HEAD..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let last = !matches!(result, Ok(n) if n > 0);
            if filled_tx.send(result.map(|n| (buf, HEAD + n))).is_err() || last {
                return;
            }
        })?;
        Ok(Self { filled, empty })
    }

    /// The next chunk, its data in `buf[HEAD..end]`; `Ok(None)` at end of stream. After waiting
    /// [`WAIT`] for a slow source it returns `ErrorKind::TimedOut`: nothing is lost, call again.
    pub(crate) fn next(&self) -> io::Result<Option<(Vec<u8>, usize)>> {
        match self.filled.recv_timeout(WAIT) {
            Ok(Ok((buf, end))) if end > HEAD => Ok(Some((buf, end))),
            Ok(Ok(_)) | Err(RecvTimeoutError::Disconnected) => Ok(None),
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Hands a chunk-sized buffer back to the reader thread for reuse.
    pub(crate) fn recycle(&self, buf: Vec<u8>) {
        if buf.len() == HEAD + CHUNK {
            let _ = self.empty.try_send(buf);
        }
    }
}
