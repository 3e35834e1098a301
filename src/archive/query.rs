//! The archive query: packets of many rolled files, filtered, merged into one time-ordered pcap.
//!
//! Each rolled file is in capture order already (it holds consecutive offsets of one partition),
//! so the answer is a k-way merge: a [`BinaryHeap`] holds the next matching record of each open
//! file, ordered by (timestamp, file, record), and the smallest is written out. Memory is one
//! record per open file, whatever the number of matches.
//!
//! Files are opened lazily, in the order of the first timestamp their names carry: a file whose
//! first packet comes after every record in the heap cannot hold the next one out (its records
//! start at its name's time, unless a producer sent timestamps out of order, in which case the
//! output keeps each file's order and merges as well as order allows). So the open files are the
//! ones overlapping in time, about one per partition, not every file of the archive.
//!
//! Filters: `[start, end)` on the capture time, addresses, either port and the IP protocol on the
//! decoded packet ([`crate::decode`]), and a BPF expression (libpcap, as tcpdump) on the bytes.
//! The output is written as `OUT.<pid>.part` and renamed when complete, so a failed query leaves
//! no half file under the output's name.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::decode::{decode, Packet};
use crate::error::{Error, Result};
use crate::sink::file::PartFile;
use crate::sink::pcap::{PcapHeader, PcapWriter};
use crate::source::{self, PacketSource};

/// One rolled file to read: its name (for errors and opening) and the first timestamp (ns) its
/// name carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryFile {
    /// A path, or a name the [`Opener`] understands.
    pub name: String,
    /// The capture time of the file's first packet, from its name.
    pub first_ts_ns: i64,
}

/// Opens a file's bytes: the local filesystem, or any other store (pyarrow filesystems from
/// Python).
pub trait Opener {
    /// The file's bytes from the start.
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>>;
}

/// Local files.
pub struct LocalFiles;

impl Opener for LocalFiles {
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::fs::File::open(name)?))
    }
}

/// What to select.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Capture time at or after (ns).
    pub start: Option<i64>,
    /// Capture time before (ns).
    pub end: Option<i64>,
    /// Source address.
    pub src_ip: Option<IpAddr>,
    /// Destination address.
    pub dst_ip: Option<IpAddr>,
    /// Either port.
    pub port: Option<u16>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// A BPF expression (tcpdump syntax).
    pub bpf: Option<String>,
}

impl Filter {
    fn needs_decode(&self) -> bool {
        self.src_ip.is_some() || self.dst_ip.is_some() || self.port.is_some() || self.proto.is_some()
    }

    fn time_matches(&self, ts: i64) -> bool {
        self.start.is_none_or(|s| ts >= s) && self.end.is_none_or(|e| ts < e)
    }

    fn packet_matches(&self, p: &Packet) -> bool {
        self.src_ip.is_none_or(|a| same_ip(a, p.src_ip.as_ref()))
            && self.dst_ip.is_none_or(|a| same_ip(a, p.dst_ip.as_ref()))
            && self.proto.is_none_or(|x| p.ip_proto == Some(x))
            && self.port.is_none_or(|x| p.src_port == Some(x) || p.dst_port == Some(x))
    }
}

/// Whether a decoded address is `want`.
fn same_ip(want: IpAddr, got: Option<&crate::decode::IpAddr>) -> bool {
    use crate::decode::IpAddr as Decoded;
    match (want, got) {
        (IpAddr::V4(w), Some(Decoded::V4(g))) => w.octets() == *g,
        (IpAddr::V6(w), Some(Decoded::V6(g))) => w.octets() == *g,
        _ => false,
    }
}

/// What a query did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryReport {
    /// Packets written.
    pub packets: u64,
    /// Files opened.
    pub files_opened: u64,
    /// Records read from them (after BPF, which drops in the reader).
    pub records_read: u64,
    /// The most files open at once (the merge's memory is one record per open file).
    pub max_open: u64,
}

/// One open file and its next matching record.
struct Cursor {
    src: Box<dyn PacketSource>,
    /// Next record: timestamp, wire length, link type, bytes.
    ts: i64,
    wirelen: u32,
    link_type: u16,
    data: Vec<u8>,
    index: u64,
}

impl Cursor {
    /// Advances to the next matching record; false at the end of the file.
    fn advance(&mut self, filter: &Filter, packet: &mut Packet, report: &mut QueryReport) -> Result<bool> {
        let decode_too = filter.needs_decode();
        while let Some(r) = self.src.next_record()? {
            report.records_read += 1;
            self.index += 1;
            let Some(ts) = r.ts_ns else { continue };
            if !filter.time_matches(ts) {
                continue;
            }
            let link_type = r.link_type.unwrap_or(1);
            if decode_too {
                *packet = Packet::default();
                decode(link_type, r.data, packet);
                if !filter.packet_matches(packet) {
                    continue;
                }
            }
            self.ts = ts;
            self.wirelen = r.wirelen;
            self.link_type = link_type;
            self.data.clear();
            self.data.extend_from_slice(r.data);
            return Ok(true);
        }
        Ok(false)
    }
}

/// The output precision: nanoseconds when any input file has them (read from its magic).
fn any_nanosecond(files: &[QueryFile], opener: &dyn Opener) -> Result<bool> {
    for f in files {
        let mut magic = [0u8; 4];
        let mut r = opener.open(&f.name).map_err(|e| io_error(&f.name, e))?;
        if r.read_exact(&mut magic).is_ok() && matches!(magic, [0x4d, 0x3c, 0xb2, 0xa1] | [0xa1, 0xb2, 0x3c, 0x4d]) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn io_error(name: &str, source: io::Error) -> Error {
    match source.kind() {
        io::ErrorKind::NotFound => Error::NotFound { path: name.into() },
        _ => Error::Io { path: name.into(), source },
    }
}

/// Writes the records of `files` that pass `filter` to `out`, time-ordered; returns what it did.
/// Files whose name starts at or after `filter.end` are not opened. `interrupted` is called about
/// five times a second and stops the query (the output is then not published) when it fails.
pub fn query(
    files: &[QueryFile],
    opener: &dyn Opener,
    filter: &Filter,
    out: &Path,
    interrupted: &mut dyn FnMut() -> Result<()>,
) -> Result<QueryReport> {
    let mut selected: Vec<QueryFile> =
        files.iter().filter(|f| filter.end.is_none_or(|e| f.first_ts_ns < e)).cloned().collect();
    selected.sort_by_key(|f| f.first_ts_ns);
    let nanosecond = any_nanosecond(&selected, opener)?;
    let out_name = out.display().to_string();
    let part = PartFile::create(out).map_err(|e| io_error(&out_name, e))?;
    let mut output = Output::Pending(Some(part), PcapHeader { nanosecond, ..PcapHeader::default() });
    let mut report = QueryReport::default();
    match merge(&selected, opener, filter, &mut output, &mut report, interrupted) {
        Ok(()) => {
            output.writer().map_err(|e| io_error(&out_name, e))?;
            let Output::Writing(w) = output else { unreachable!("writer() starts the file") };
            w.into_inner().and_then(PartFile::publish).map_err(|e| io_error(&out_name, e))?;
            Ok(report)
        }
        Err(e) => {
            let part = match output {
                Output::Pending(p, _) => p,
                Output::Writing(w) => w.into_inner().ok(),
            };
            if let Some(p) = part {
                let _ = p.discard();
            }
            Err(e)
        }
    }
}

/// The output file: waiting for the first match (which fixes the link type), then being written.
enum Output {
    Pending(Option<PartFile>, PcapHeader),
    Writing(PcapWriter<PartFile>),
}

impl Output {
    fn writer(&mut self) -> io::Result<&mut PcapWriter<PartFile>> {
        if let Output::Pending(part, header) = self {
            let part = part.take().ok_or_else(|| io::Error::other("the output file is gone"))?;
            *self = Output::Writing(PcapWriter::new(part, *header)?);
        }
        match self {
            Output::Writing(w) => Ok(w),
            Output::Pending(..) => Err(io::Error::other("the output file is gone")),
        }
    }

    fn set_link_type(&mut self, link_type: u16) {
        if let Output::Pending(_, header) = self {
            header.link_type = link_type;
        }
    }
}

fn merge(
    selected: &[QueryFile],
    opener: &dyn Opener,
    filter: &Filter,
    output: &mut Output,
    report: &mut QueryReport,
    interrupted: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let mut merge = Merge { cursors: Vec::new(), heap: BinaryHeap::new(), packet: Packet::default(), open: 0 };
    let mut next_file = 0;
    // The first check comes with the first file opened.
    let now = Instant::now();
    let mut last_check = now.checked_sub(Duration::from_millis(200)).unwrap_or(now);
    let write_err = |e: io::Error| Error::Io { path: "query output".into(), source: e };
    loop {
        // Open every file that may hold a record before the smallest one held.
        while next_file < selected.len()
            && merge.heap.peek().is_none_or(|Reverse((ts, _, _))| selected[next_file].first_ts_ns <= *ts)
        {
            merge.open(&selected[next_file], opener, filter, report)?;
            next_file += 1;
            if last_check.elapsed() >= Duration::from_millis(200) {
                interrupted()?;
                last_check = Instant::now();
            }
        }
        let Some(Reverse((_, c, _))) = merge.heap.pop() else { return Ok(()) };
        let slot = &mut merge.cursors[c];
        let Some(cursor) = slot.as_mut() else { continue };
        output.set_link_type(cursor.link_type);
        let w = output.writer().map_err(write_err)?;
        if cursor.link_type != w.header().link_type {
            return Err(Error::InvalidArgument(format!(
                "matching packets have several link types ({} and {}); narrow the query",
                w.header().link_type,
                cursor.link_type
            )));
        }
        w.write(cursor.ts, &cursor.data, cursor.wirelen).map_err(write_err)?;
        report.packets += 1;
        if cursor.advance(filter, &mut merge.packet, report)? {
            merge.heap.push(Reverse((cursor.ts, c, cursor.index)));
        } else {
            *slot = None; // closes the file
            merge.open -= 1;
        }
        if last_check.elapsed() >= Duration::from_millis(200) {
            interrupted()?;
            last_check = Instant::now();
        }
    }
}

/// The open files and the heap of their next records: (timestamp, cursor, record number).
struct Merge {
    cursors: Vec<Option<Cursor>>,
    heap: BinaryHeap<Reverse<(i64, usize, u64)>>,
    packet: Packet,
    open: u64,
}

impl Merge {
    fn open(&mut self, f: &QueryFile, opener: &dyn Opener, filter: &Filter, report: &mut QueryReport) -> Result<()> {
        let reader = opener.open(&f.name).map_err(|e| io_error(&f.name, e))?;
        let src = source::from_reader(&f.name, reader)?;
        let src = source::filter(src, filter.bpf.as_deref())?;
        report.files_opened += 1;
        let mut cursor = Cursor { src, ts: 0, wirelen: 0, link_type: 1, data: Vec::new(), index: 0 };
        if cursor.advance(filter, &mut self.packet, report)? {
            let c = self.cursors.len();
            self.heap.push(Reverse((cursor.ts, c, cursor.index)));
            self.cursors.push(Some(cursor));
            self.open += 1;
            report.max_open = report.max_open.max(self.open);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
