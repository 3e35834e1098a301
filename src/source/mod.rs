//! Capture sources: where packet records come from.
//!
//! A source yields [`Record`]s (timestamp, lengths, interface, link type, bytes) one at a time,
//! borrowing the bytes from its own buffer; [`crate::reader::PacketReader`] turns them into Arrow
//! batches. Files are recognised from their first bytes, never their name: gzip is unwrapped, then
//! the magic number picks classic pcap (all four variants) or pcapng.

#[cfg(feature = "live")]
pub mod bpf;
mod bytes;
#[cfg(feature = "live")]
pub mod live;
mod pcap;
mod pcapng;
mod prefetch;

use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};
pub(crate) use bytes::ByteSource;
use bytes::Counting;

/// The largest captured length accepted for one record (larger values mean a corrupt file, and
/// must not make the reader allocate gigabytes). Generous: Wireshark's own limit is 256 KiB for
/// most link types and 128 MiB only for exotic ones.
pub const MAX_RECORD_LEN: usize = 16 << 20;

/// Files at least this large are read ahead on a reader thread.
const PREFETCH_MIN_BYTES: u64 = 4 << 20;

/// One captured packet, borrowed from the source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Nanoseconds since the Unix epoch, UTC; `None` when the format stores none (pcapng SPB).
    pub ts_ns: Option<i64>,
    /// Bytes captured (the length of `data`).
    pub caplen: u32,
    /// The packet's length on the wire (more than `caplen` when the snapshot length cut it).
    pub wirelen: u32,
    /// pcapng interface index; `None` for classic pcap.
    pub interface_id: Option<u32>,
    /// `None` when the record names an interface the file never described.
    pub link_type: Option<u16>,
    /// The captured bytes, from the link-layer header on.
    pub data: &'a [u8],
}

/// What was learnt about the file while opening it.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// The file as it was opened.
    pub path: PathBuf,
    /// `"pcap"`, `"pcap-ns"`, `"pcap-modified"` or `"pcapng"`.
    pub format: &'static str,
    /// The byte order the file was written in (pcapng: that of the section being read).
    pub big_endian: bool,
    /// The file is gzip-compressed (decompressed while reading).
    pub gzip: bool,
    /// On-disk size (compressed size for gzip input), when known.
    pub file_size: Option<u64>,
    /// The link type of the first packets, when the header says: classic pcap's header, a live
    /// capture's, or the interface a pcapng section describes first (pcapng files can mix types).
    pub link_type: Option<u16>,
}

/// A stream of packet records.
pub trait PacketSource: Send {
    /// The next record, `Ok(None)` at a clean end of file. Errors here are about the file's
    /// structure after a valid header (truncation, corrupt lengths): see [`Error::Format`].
    fn next_record(&mut self) -> Result<Option<Record<'_>>>;

    /// Format details.
    fn info(&self) -> &SourceInfo;

    /// Bytes of the underlying file read so far (for progress).
    fn bytes_read(&self) -> u64;

    /// Records read from the file but not handed out, because a filter (see [`bpf`]) dropped
    /// them. Readers add it to their own count so frame numbers stay positions in the file.
    fn filtered(&self) -> u64 {
        0
    }
}

/// Opens a capture file, detecting gzip and the capture format from the bytes.
pub fn open(path: &Path) -> Result<Box<dyn PacketSource>> {
    let io_err = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => Error::NotFound { path: path.to_path_buf() },
        _ => Error::Io { path: path.to_path_buf(), source },
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: io::Error::other("is a directory, not a capture file"),
        });
    }
    let file_size = meta.is_file().then_some(meta.len());
    let count = Arc::new(AtomicU64::new(0));
    let file = Counting { inner: file, count: count.clone() };
    open_stream(path, Box::new(file), file_size, count)
}

/// Opens a capture file as [`open`] does, keeping only the records that pass the BPF filter
/// `bpf` (tcpdump syntax) when one is given: see [`bpf::BpfFilter`]. An invalid expression fails
/// here, as [`Error::InvalidArgument`] carrying libpcap's message.
pub fn open_filtered(path: &Path, bpf: Option<&str>) -> Result<Box<dyn PacketSource>> {
    filter(open(path)?, bpf)
}

/// `source` keeping only the records that pass the BPF filter `bpf` (all of them when `None`): a
/// stream opened with [`from_reader`] filtered as [`open_filtered`] filters a file.
pub fn filter(source: Box<dyn PacketSource>, bpf: Option<&str>) -> Result<Box<dyn PacketSource>> {
    match bpf {
        None => Ok(source),
        Some(expr) => filtered(source, expr),
    }
}

#[cfg(feature = "live")]
fn filtered(source: Box<dyn PacketSource>, expr: &str) -> Result<Box<dyn PacketSource>> {
    Ok(Box::new(bpf::BpfFilter::new(source, expr)?))
}

#[cfg(not(feature = "live"))]
fn filtered(_source: Box<dyn PacketSource>, _expr: &str) -> Result<Box<dyn PacketSource>> {
    Err(Error::InvalidArgument("BPF filters need libpcap: build pktstream with the `live` feature".into()))
}

/// Opens a capture from any byte stream (a pipe, a socket, bytes in memory); `name` is used in
/// error messages. Gzip and the capture format are detected as for files.
///
/// ```
/// let err = pktstream::source::from_reader("mem", Box::new(std::io::Cursor::new(b"GIF89a".to_vec())));
/// assert!(err.is_err());
/// ```
pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> Result<Box<dyn PacketSource>> {
    let count = Arc::new(AtomicU64::new(0));
    let counting = Counting { inner: reader, count: count.clone() };
    open_stream(Path::new(name), Box::new(counting), None, count)
}

fn open_stream(
    path: &Path,
    mut file: Box<dyn Read + Send>,
    file_size: Option<u64>,
    count: Arc<AtomicU64>,
) -> Result<Box<dyn PacketSource>> {
    let io_err = |source: io::Error| Error::Io { path: path.to_path_buf(), source };
    // Sniff without seeking, so pipes and FIFOs work too.
    let mut head = [0u8; 2];
    let got = read_up_to(&mut file, &mut head).map_err(io_err)?;
    let sniffed = Cursor::new(head[..got].to_vec()).chain(file);
    let gzip = got == 2 && head == [0x1f, 0x8b];
    let stream: Box<dyn Read + Send> = if gzip { Box::new(MultiGzDecoder::new(sniffed)) } else { Box::new(sniffed) };
    // Large files are read (and inflated) ahead on a second thread; small ones are not worth one.
    let mut src = match file_size {
        Some(size) if size >= PREFETCH_MIN_BYTES => ByteSource::prefetched(stream).map_err(io_err)?,
        _ => ByteSource::new(stream),
    };

    let info = |format, big_endian| SourceInfo {
        path: path.to_path_buf(),
        format,
        big_endian,
        gzip,
        file_size,
        link_type: None,
    };
    let available = src.fill_wait(4).map_err(|e| io_to_format(path, 0, None, e))?;
    if available < 4 {
        return Err(format_error(
            path,
            0,
            None,
            format!("file is too short ({available} bytes) to be a pcap or pcapng capture"),
        ));
    }
    let magic = [src.peek(4)[0], src.peek(4)[1], src.peek(4)[2], src.peek(4)[3]];
    if magic == pcapng::SHB_MAGIC {
        let reader = pcapng::PcapngReader::open(src, info("pcapng", false), count)?;
        return Ok(Box::new(reader));
    }
    match pcap::Variant::from_magic(magic) {
        Some(variant) => {
            let reader = pcap::PcapReader::open(src, variant, info(variant.name(), variant.big_endian), count)?;
            Ok(Box::new(reader))
        }
        None => Err(format_error(
            path,
            0,
            None,
            format!(
                "not a pcap or pcapng file{}: unknown magic number 0x{}",
                if gzip { " (inside gzip)" } else { "" },
                magic.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
        )),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

pub(crate) fn format_error(path: &Path, offset: u64, record: Option<u64>, message: String) -> Error {
    Error::Format { path: path.to_path_buf(), offset, record, message }
}

/// Read errors inside the stream: a corrupt or cut gzip stream is a format problem of the file,
/// an interrupted read or a read-ahead still waiting on a slow source is [`Error::Interrupted`]
/// (retry after checking for Ctrl-C), anything
/// else (EIO, permissions) stays an I/O error.
pub(crate) fn io_to_format(path: &Path, offset: u64, record: Option<u64>, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::Interrupted | io::ErrorKind::TimedOut => Error::Interrupted,
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            format_error(path, offset, record, format!("corrupt compressed stream: {e}"))
        }
        _ => Error::Io { path: path.to_path_buf(), source: e },
    }
}

/// The error for a record cut short by the end of the file.
pub(crate) fn truncated(path: &Path, offset: u64, record: u64, wanted: usize, got: usize) -> Error {
    format_error(
        path,
        offset,
        Some(record),
        format!("truncated record: the file ends {got} bytes into a {wanted}-byte record"),
    )
}

#[cfg(test)]
mod tests {
    use super::prefetch::tests::Failing;
    use super::*;
    use crate::reader::{PacketReader, ReadOptions};

    /// A ~6 MB little-endian microsecond pcap of 60-byte Ethernet frames.
    fn big_pcap() -> Vec<u8> {
        let mut b = Vec::new();
        // magic, version 2.4, thiszone, sigfigs, snaplen, LINKTYPE_ETHERNET
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for i in 0..80_000u32 {
            for v in [i, 0, 60, 60] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&[0x5a; 60]);
        }
        b
    }

    #[test]
    fn a_dying_read_ahead_is_an_error_not_an_early_end() {
        let data = big_pcap();
        assert!(data.len() as u64 > PREFETCH_MIN_BYTES);
        let records = 80_000u64;
        for panic in [false, true] {
            // The reader fails two thirds of the way in; the file size asks for read-ahead.
            let cut = data[..data.len() * 2 / 3].to_vec();
            let failing = Failing { data: Cursor::new(cut), panic };
            let count = Arc::new(AtomicU64::new(0));
            let src = open_stream(Path::new("dying"), Box::new(failing), Some(data.len() as u64), count).unwrap();
            let mut reader = PacketReader::from_source(src, ReadOptions::default());
            let mut rows = 0u64;
            let err = loop {
                match reader.next_batch() {
                    Ok(Some(b)) => rows += b.num_rows() as u64,
                    Ok(None) => panic!("a dead read-ahead ended the file cleanly after {rows} rows"),
                    Err(e) => break e,
                }
            };
            assert!(rows > 0 && rows < records, "{rows}");
            match err {
                Error::Io { source, .. } => {
                    let want = if panic { "read-ahead thread panicked" } else { "injected read error" };
                    assert!(source.to_string().contains(want), "{source}");
                }
                other => panic!("not an I/O error: {other:?}"),
            }
            assert!(reader.warnings().is_empty());
        }
        // The same bytes without the failure read to the end.
        let count = Arc::new(AtomicU64::new(0));
        let src =
            open_stream(Path::new("ok"), Box::new(Cursor::new(data.clone())), Some(data.len() as u64), count).unwrap();
        let rows: usize = PacketReader::from_source(src, ReadOptions::default()).map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows as u64, records);
    }
}
