//! A buffered byte stream that hands out borrowed slices of whole records.
//!
//! `std::io::BufReader` would make every record cost a second copy; here the readers parse
//! records in place from one large buffer that is refilled by `read` calls (one kernel copy),
//! which is what keeps the file path near the speed of `cat`. Large files are read ahead on a
//! second thread ([`Prefetch`]), so that copy (and gzip inflation) overlaps decoding. The buffer
//! only grows to the size of the largest record, which the readers cap, so memory stays bounded
//! whatever the file size.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::prefetch::{Prefetch, HEAD};

/// Steady-state buffer size: large reads keep the file path near the speed of `cat`.
const CAPACITY: usize = 1 << 20;
/// First buffer size: small captures (and fuzzing) never pay for zeroing a whole MiB.
const INITIAL: usize = 64 << 10;

enum Input {
    /// `read` on the caller's thread (small files, pipes, in-memory streams).
    Direct(Box<dyn Read + Send>),
    /// Chunks read ahead by a reader thread (large files).
    Prefetched(Prefetch),
}

pub(crate) struct ByteSource {
    input: Input,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[pos]` (in decompressed bytes for gzip input).
    offset: u64,
    eof: bool,
}

impl ByteSource {
    pub(crate) fn new(inner: Box<dyn Read + Send>) -> Self {
        Self { input: Input::Direct(inner), buf: vec![0; INITIAL], pos: 0, end: 0, offset: 0, eof: false }
    }

    /// A source whose reads happen ahead, on a reader thread.
    pub(crate) fn prefetched(inner: Box<dyn Read + Send>) -> io::Result<Self> {
        let input = Input::Prefetched(Prefetch::spawn(inner)?);
        Ok(Self { input, buf: Vec::new(), pos: 0, end: 0, offset: 0, eof: false })
    }

    /// Makes up to `n` bytes available and returns how many are (fewer only at end of stream).
    /// `ErrorKind::Interrupted` (a signal) and `ErrorKind::TimedOut` (a read-ahead still waiting
    /// on a slow source) leave everything consistent: call again after checking for Ctrl-C.
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        if self.end - self.pos >= n {
            return Ok(n);
        }
        match &mut self.input {
            Input::Prefetched(prefetch) => {
                while self.end - self.pos < n && !self.eof {
                    match prefetch.next()? {
                        None => self.eof = true,
                        Some((chunk, chunk_end)) => {
                            let old = splice(&mut self.buf, &mut self.pos, &mut self.end, chunk, chunk_end, prefetch);
                            prefetch.recycle(old);
                        }
                    }
                }
            }
            Input::Direct(inner) => {
                if self.pos > 0 {
                    self.buf.copy_within(self.pos..self.end, 0);
                    self.end -= self.pos;
                    self.pos = 0;
                }
                if n > self.buf.len() || (self.offset > 0 && self.buf.len() < CAPACITY) {
                    // Grow for an oversized record, or to the steady-state size once the stream
                    // outlives the first buffer.
                    self.buf.resize(n.next_power_of_two().max(CAPACITY.min(self.buf.len() * 16)), 0);
                }
                while self.end < n && !self.eof {
                    match inner.read(&mut self.buf[self.end..]) {
                        Ok(0) => self.eof = true,
                        Ok(k) => self.end += k,
                        // EINTR (a signal, e.g. Ctrl-C, while blocked on a pipe) goes up so the
                        // caller can check for a pending interrupt; the buffer stays consistent.
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok((self.end - self.pos).min(n))
    }

    /// [`fill`](Self::fill) that waits out a slow read-ahead (for file headers, read at open).
    pub(crate) fn fill_wait(&mut self, n: usize) -> io::Result<usize> {
        loop {
            match self.fill(n) {
                Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
                other => return other,
            }
        }
    }

    /// The next `n` available bytes (call [`fill`](Self::fill) first).
    #[inline]
    pub(crate) fn peek(&self, n: usize) -> &[u8] {
        &self.buf[self.pos..self.pos + n]
    }

    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    /// Stream offset of the next unread byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }
}

/// Continues the unparsed bytes `buf[pos..end]` with a new chunk (data in `chunk[HEAD..chunk_end]`)
/// and returns the buffer that is no longer needed. The tail normally moves into the chunk's
/// headroom; only a record longer than the headroom makes a merged copy.
fn splice(
    buf: &mut Vec<u8>,
    pos: &mut usize,
    end: &mut usize,
    mut chunk: Vec<u8>,
    chunk_end: usize,
    prefetch: &Prefetch,
) -> Vec<u8> {
    let tail = *end - *pos;
    if tail <= HEAD {
        chunk[HEAD - tail..HEAD].copy_from_slice(&buf[*pos..*end]);
        *pos = HEAD - tail;
        *end = chunk_end;
        std::mem::replace(buf, chunk)
    } else {
        let mut merged = Vec::with_capacity(tail + chunk_end - HEAD);
        merged.extend_from_slice(&buf[*pos..*end]);
        merged.extend_from_slice(&chunk[HEAD..chunk_end]);
        prefetch.recycle(chunk);
        *pos = 0;
        *end = merged.len();
        std::mem::replace(buf, merged)
    }
}

/// Counts the bytes read from the underlying file, for progress reporting (compressed bytes for
/// gzip input, so progress can be compared with the file size).
pub(crate) struct Counting<R> {
    pub(crate) inner: R,
    pub(crate) count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most 3 bytes per call, to exercise refills across records.
    struct Dribble(std::io::Cursor<Vec<u8>>);
    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn fills_across_short_reads_and_reports_eof() {
        let data: Vec<u8> = (0..=255).collect();
        let mut s = ByteSource::new(Box::new(Dribble(std::io::Cursor::new(data))));
        assert_eq!(s.fill(10).unwrap(), 10);
        assert_eq!(s.peek(3), &[0, 1, 2]);
        assert_eq!(s.fill(250).unwrap(), 250);
        s.consume(250);
        assert_eq!(s.offset(), 250);
        assert_eq!(s.fill(10).unwrap(), 6);
        assert_eq!(s.peek(6), &[250, 251, 252, 253, 254, 255]);
    }

    #[test]
    fn prefetched_reads_match_direct_reads_across_chunk_boundaries() {
        // Records of awkward sizes (some larger than the headroom) across 1 MiB chunks.
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let mut direct = ByteSource::new(Box::new(std::io::Cursor::new(data.clone())));
        let mut ahead = ByteSource::prefetched(Box::new(std::io::Cursor::new(data.clone()))).unwrap();
        let sizes = [1usize, 16, 1500, 70_000, 3, 200_000, 65_536, 9];
        let mut at = 0;
        for (i, &size) in sizes.iter().cycle().enumerate() {
            let (a, b) = (direct.fill(size).unwrap(), ahead.fill(size).unwrap());
            assert_eq!(a, b, "record {i}");
            assert_eq!(direct.peek(a), ahead.peek(b));
            assert_eq!(ahead.peek(b), &data[at..at + b]);
            direct.consume(a);
            ahead.consume(b);
            at += a;
            if a < size {
                break;
            }
        }
        assert_eq!(at, data.len());
        assert_eq!(ahead.offset(), data.len() as u64);
    }

    #[test]
    fn grows_for_records_larger_than_the_buffer() {
        let data = vec![7u8; CAPACITY + 5];
        let mut s = ByteSource::new(Box::new(std::io::Cursor::new(data)));
        assert_eq!(s.fill(CAPACITY + 5).unwrap(), CAPACITY + 5);
    }
}
