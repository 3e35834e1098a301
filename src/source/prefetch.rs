//! Reading ahead on a second thread.
//!
//! `read()` copying the file into user memory is a fifth of a decode, and inflating a gzip
//! capture costs more than decoding it. A reader thread does both into 1 MiB chunks while the
//! caller decodes the previous one, so the decoding thread only parses. Each chunk keeps
//! [`HEAD`] bytes of headroom in front of its data, where the consumer moves the unparsed tail of
//! the previous chunk (a record cut by the chunk boundary), so records stay contiguous without
//! copying the chunk itself. At most two filled chunks wait in the channel: memory stays bounded.
//!
//! The end of the stream is an explicit message (an empty chunk), never the channel closing: a
//! reader thread that panics passes the panic on as an error, and a channel that closes without
//! that message (a thread that died any other way) is an error too, so a dead read-ahead can never
//! look like a clean end of file.

use std::cell::Cell;
use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
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
    /// What the reader thread's last message said, once it has been received.
    state: Cell<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// The end of the stream was received: the channel closing is expected.
    Ended,
    /// An error was received (and handed out): asking again repeats an error of that kind.
    Failed(io::ErrorKind),
}

impl Prefetch {
    /// Starts the reader thread. It ends at end of stream, on a read error (which it passes on),
    /// or when this `Prefetch` is dropped.
    pub(crate) fn spawn(mut inner: Box<dyn Read + Send>) -> io::Result<Self> {
        let (filled_tx, filled) = sync_channel::<Filled>(2);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(4);
        std::thread::Builder::new().name("pktstream-read".into()).spawn(move || loop {
            let mut buf = empty_rx.try_recv().unwrap_or_else(|_| vec![0u8; HEAD + CHUNK]);
            // A panicking reader (a bug in a decompressor, a custom `Read`) must reach the
            // consumer as an error, not as the channel closing.
            let result = catch_unwind(AssertUnwindSafe(|| loop {
                match inner.read(&mut buf[HEAD..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            }))
            .unwrap_or_else(|panic| {
                Err(io::Error::other(format!("read-ahead thread panicked: {}", panic_message(&*panic))))
            });
            let last = !matches!(result, Ok(n) if n > 0);
            if filled_tx.send(result.map(|n| (buf, HEAD + n))).is_err() || last {
                return;
            }
        })?;
        Ok(Self { filled, empty, state: Cell::new(State::Running) })
    }

    /// The next chunk, its data in `buf[HEAD..end]`; `Ok(None)` at end of stream. After waiting
    /// [`WAIT`] for a slow source it returns `ErrorKind::TimedOut`: nothing is lost, call again.
    pub(crate) fn next(&self) -> io::Result<Option<(Vec<u8>, usize)>> {
        match self.state.get() {
            State::Running => {}
            State::Ended => return Ok(None),
            State::Failed(kind) => return Err(io::Error::new(kind, "the read-ahead failed earlier")),
        }
        match self.filled.recv_timeout(WAIT) {
            Ok(Ok((buf, end))) if end > HEAD => Ok(Some((buf, end))),
            Ok(Ok(_)) => {
                self.state.set(State::Ended);
                Ok(None)
            }
            Ok(Err(e)) => {
                self.state.set(State::Failed(e.kind()));
                Err(e)
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.state.set(State::Failed(io::ErrorKind::Other));
                Err(io::Error::other("read-ahead thread stopped before the end of the stream"))
            }
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

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Its bytes, then a read error (or a panic).
    pub(crate) struct Failing {
        pub(crate) data: io::Cursor<Vec<u8>>,
        pub(crate) panic: bool,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.data.read(buf)? {
                0 if self.panic => panic!("injected reader panic"),
                0 => Err(io::Error::other("injected read error")),
                n => Ok(n),
            }
        }
    }

    fn drain(p: &Prefetch) -> io::Result<usize> {
        let mut total = 0;
        loop {
            match p.next() {
                Ok(Some((buf, end))) => {
                    total += end - HEAD;
                    p.recycle(buf);
                }
                Ok(None) => return Ok(total),
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e),
            }
        }
    }

    #[test]
    fn clean_end_is_eof_and_stays_eof() {
        let p = Prefetch::spawn(Box::new(io::Cursor::new(vec![1u8; 3 * CHUNK + 5]))).unwrap();
        assert_eq!(drain(&p).unwrap(), 3 * CHUNK + 5);
        assert!(p.next().unwrap().is_none());
    }

    #[test]
    fn read_error_and_panic_are_errors_not_eof() {
        for panic in [false, true] {
            let data = io::Cursor::new(vec![1u8; 2 * CHUNK + 7]);
            let p = Prefetch::spawn(Box::new(Failing { data, panic })).unwrap();
            let err = drain(&p).unwrap_err();
            let want = if panic { "read-ahead thread panicked: injected reader panic" } else { "injected read error" };
            assert_eq!(err.to_string(), want);
            // The thread is gone now; asking again is still an error, never a clean end.
            let again = loop {
                match p.next() {
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                    other => break other,
                }
            };
            let again = again.unwrap_err();
            assert_eq!(again.kind(), io::ErrorKind::Other);
            assert!(again.to_string().contains("failed earlier"), "{again}");
        }
    }

    #[test]
    fn a_thread_that_vanishes_is_an_error() {
        // A channel closed without the end message: what a thread killed any other way leaves.
        let (filled_tx, filled) = sync_channel::<Filled>(2);
        let (empty, _empty_rx) = sync_channel::<Vec<u8>>(4);
        filled_tx.send(Ok((vec![0u8; HEAD + 10], HEAD + 10))).unwrap();
        drop(filled_tx);
        let p = Prefetch { filled, empty, state: Cell::new(State::Running) };
        assert!(p.next().unwrap().is_some());
        let err = p.next().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other);
        assert!(err.to_string().contains("stopped before the end"), "{err}");
    }
}
