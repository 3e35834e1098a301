//! BPF filters on capture files, as in `tcpdump -r file 'expr'`.
//!
//! [`BpfFilter`] wraps any [`PacketSource`] and hands out only the records whose bytes pass a
//! filter expression in tcpdump syntax, compiled and run by libpcap itself (`pcap_compile`,
//! `pcap_offline_filter`), so an expression means exactly what it means to tcpdump.
//!
//! - **Per link type.** A BPF program reads fixed offsets of the frame, so it is compiled for one
//!   link type. pcapng files can mix link types: the program for a link type is compiled the
//!   first time a record of that type comes, and kept. The expression is compiled once at
//!   [`BpfFilter::new`] for the link type the file header announces (Ethernet if it announces
//!   none), so a bad expression fails at open, as [`Error::InvalidArgument`] with libpcap's
//!   message; an expression that compiles for that type but not for a later one fails there.
//! - **Dropped and counted.** Records that fail the filter are counted in
//!   [`PacketSource::filtered`], and so are records without a link type (a pcapng packet of an
//!   interface the file never described: there is nothing to compile for). Readers add that count
//!   to their numbering, so a `frame_number` stays the record's position in the file, as tcpdump
//!   and tshark number frames.
//! - **Lengths.** `len`, `greater N` and `less N` test the length on the wire, as in tcpdump. The
//!   `pcap` crate's [`BpfProgram::filter`] passes the captured length as both lengths, which made
//!   them differ from tcpdump on records cut short by a snap length; so the program runs through
//!   libpcap's own `bpf_filter` (what `pcap_offline_filter` calls), given both lengths.
//! - **Loopback.** On BSD loopback (`LINKTYPE_NULL`: a 4-byte address family in the byte order
//!   of the file's writer; `LINKTYPE_LOOP`: in network byte order) libpcap compiles `ip6` for a
//!   live capture's own `AF_INET6` (10 on Linux) in this machine's byte order, but when it reads
//!   a file, for the BSD values (24, 28, 30) in the file's byte order. A program compiled here
//!   knows only the former, so the filter is shown a copy of such a record with the family
//!   rewritten (read in the byte order of the file, or of its first pcapng section), and `ip6`
//!   keeps what tcpdump keeps.
//! - **One copy, no `unsafe`.** A record borrows its source's buffer; returning a borrowed record
//!   from inside the loop that skips the rejected ones is the case today's borrow checker refuses
//!   (the conditional return keeps the source borrowed for the next iteration; Polonius would
//!   accept it). Instead of an `unsafe` lifetime cast or a change to every source, a kept record's
//!   bytes are copied into a buffer of the filter and the record handed out borrows that: one
//!   `memcpy` per kept packet, small next to decoding it.

use pcap::{BpfProgram, Capture, Linktype};

use super::{PacketSource, Record, SourceInfo};
use crate::error::{Error, Result};

/// `LINKTYPE_ETHERNET`: what the expression is checked against when the header names no link type.
const ETHERNET: u16 = 1;
/// BSD loopback: a 4-byte address family in the writer's byte order, then the IP packet.
const NULL: u16 = 0;
/// OpenBSD loopback: the same with the family in network byte order.
const LOOP: u16 = 108;

/// A [`PacketSource`] that keeps only the records passing a BPF filter (see the module docs).
pub struct BpfFilter {
    inner: Box<dyn PacketSource>,
    expr: String,
    /// Compiled programs by link type (files rarely hold more than one or two).
    programs: Vec<(u16, BpfProgram)>,
    filtered: u64,
    /// The bytes of the record handed out last.
    kept: Vec<u8>,
    /// A loopback record with its family rewritten, as the filter sees it.
    scratch: Vec<u8>,
    /// The file's byte order, for the family of `LINKTYPE_NULL` records.
    big_endian: bool,
}

impl BpfFilter {
    /// Wraps `inner`; compiles `expr` now for the file's announced link type (or Ethernet), so an
    /// invalid expression is an [`Error::InvalidArgument`] carrying libpcap's message.
    pub fn new(inner: Box<dyn PacketSource>, expr: &str) -> Result<Self> {
        let first = inner.info().link_type.unwrap_or(ETHERNET);
        let program = compile(expr, first)?;
        let big_endian = inner.info().big_endian;
        Ok(Self {
            inner,
            expr: expr.to_string(),
            programs: vec![(first, program)],
            filtered: 0,
            kept: Vec::new(),
            scratch: Vec::new(),
            big_endian,
        })
    }

    /// The filter expression.
    pub fn expression(&self) -> &str {
        &self.expr
    }
}

/// The program for `link_type`, compiled on first use.
fn program<'p>(programs: &'p mut Vec<(u16, BpfProgram)>, expr: &str, link_type: u16) -> Result<&'p BpfProgram> {
    let at = match programs.iter().position(|(lt, _)| *lt == link_type) {
        Some(at) => at,
        None => {
            programs.push((link_type, compile(expr, link_type)?));
            programs.len() - 1
        }
    };
    Ok(&programs[at].1)
}

/// Compiles `expr` (optimised) for a capture file link type.
fn compile(expr: &str, link_type: u16) -> Result<BpfProgram> {
    let invalid = |e: pcap::Error| {
        let message = match e {
            pcap::Error::PcapError(m) if !m.is_empty() => m,
            other => other.to_string(),
        };
        let on = if link_type == ETHERNET { String::new() } else { format!(" (link type {link_type})") };
        Error::InvalidArgument(format!("invalid BPF filter {expr:?}{on}: {message}"))
    };
    let dead = Capture::dead(Linktype(dlt_of_linktype(link_type))).map_err(invalid)?;
    dead.compile(expr, true).map_err(invalid)
}

/// Capture files store LINKTYPE_ values, libpcap compiles for DLT_ values; they differ for a few
/// old types, and DLT_RAW's number even differs between systems (12, or 14 on OpenBSD): libpcap
/// resolves those by name, as its own `linktype_to_dlt` does when tcpdump reads a file.
fn dlt_of_linktype(link_type: u16) -> i32 {
    let name = match link_type {
        100 => "ATM_RFC1483",
        101 => "RAW",
        102 => "SLIP_BSDOS",
        103 => "PPP_BSDOS",
        106 => "ATM_CLIP",
        other => return i32::from(other),
    };
    Linktype::from_name(name).map_or(i32::from(link_type), |dlt| dlt.0)
}

/// For a loopback record, its address family header as a program compiled here expects it: the
/// BSD `AF_INET6` values (24, 28, 30) become this machine's, `LINKTYPE_NULL`'s family goes from the
/// file's byte order (`big_endian`) to this machine's.
fn loopback_family(link_type: u16, data: &[u8], big_endian: bool) -> Option<[u8; 4]> {
    if !(link_type == NULL || link_type == LOOP) || data.len() < 4 {
        return None;
    }
    let raw = [data[0], data[1], data[2], data[3]];
    let family = if link_type == LOOP || big_endian { u32::from_be_bytes(raw) } else { u32::from_le_bytes(raw) };
    let family = match family {
        24 | 28 | 30 => libc::AF_INET6 as u32,
        other => other,
    };
    Some(if link_type == LOOP { family.to_be_bytes() } else { family.to_ne_bytes() })
}

extern "C" {
    /// libpcap's BPF interpreter: `bpf_filter(insns, packet, wirelen, buflen)`, non-zero to keep.
    fn bpf_filter(pc: *const std::ffi::c_void, p: *const u8, wirelen: u32, buflen: u32) -> u32;
}

/// Whether `data` (captured bytes of a frame that was `wirelen` bytes on the wire) passes.
fn passes(program: &BpfProgram, data: &[u8], wirelen: u32) -> bool {
    let insns = program.get_instructions();
    if insns.is_empty() {
        return program.filter(data);
    }
    let buflen = u32::try_from(data.len()).unwrap_or(u32::MAX);
    // SAFETY: `insns` is the program libpcap compiled (pcap_compile validated it; it lives as long
    // as `program`), `BpfInstruction` is `repr(transparent)` over libpcap's `struct bpf_insn`, and
    // the interpreter reads at most `buflen` bytes of `data`, which is that long; `wirelen` is
    // only compared, never used to index.
    unsafe { bpf_filter(insns.as_ptr().cast(), data.as_ptr(), wirelen.max(buflen), buflen) != 0 }
}

impl PacketSource for BpfFilter {
    fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        loop {
            let Some(record) = self.inner.next_record()? else { return Ok(None) };
            let keep = match record.link_type {
                Some(lt) => {
                    let program = program(&mut self.programs, &self.expr, lt)?;
                    match loopback_family(lt, record.data, self.big_endian) {
                        Some(family) => {
                            self.scratch.clear();
                            self.scratch.extend_from_slice(&family);
                            self.scratch.extend_from_slice(&record.data[4..]);
                            passes(program, &self.scratch, record.wirelen)
                        }
                        None => passes(program, record.data, record.wirelen),
                    }
                }
                None => false,
            };
            if !keep {
                self.filtered += 1;
                continue;
            }
            // Copy, so that the record handed out borrows `self.kept`, not the source.
            let Record { ts_ns, caplen, wirelen, interface_id, link_type, data } = record;
            self.kept.clear();
            self.kept.extend_from_slice(data);
            return Ok(Some(Record { ts_ns, caplen, wirelen, interface_id, link_type, data: &self.kept }));
        }
    }

    fn info(&self) -> &SourceInfo {
        self.inner.info()
    }

    fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }

    fn filtered(&self) -> u64 {
        self.inner.filtered() + self.filtered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records from memory: (link type, frame).
    struct Frames {
        frames: Vec<(Option<u16>, Vec<u8>)>,
        next: usize,
        info: SourceInfo,
    }

    impl Frames {
        fn boxed(header_link_type: Option<u16>, frames: Vec<(Option<u16>, Vec<u8>)>) -> Box<dyn PacketSource> {
            let info = SourceInfo {
                path: "mem".into(),
                format: "pcapng",
                big_endian: false,
                gzip: false,
                file_size: None,
                link_type: header_link_type,
            };
            Box::new(Self { frames, next: 0, info })
        }

        /// The same, from a big-endian file.
        fn boxed_be(header_link_type: Option<u16>, frames: Vec<(Option<u16>, Vec<u8>)>) -> Box<dyn PacketSource> {
            let info = SourceInfo { big_endian: true, ..Self::boxed(header_link_type, vec![]).info().clone() };
            Box::new(Self { frames, next: 0, info })
        }
    }

    impl PacketSource for Frames {
        fn next_record(&mut self) -> Result<Option<Record<'_>>> {
            let Some((link_type, data)) = self.frames.get(self.next) else { return Ok(None) };
            self.next += 1;
            let len = data.len() as u32;
            Ok(Some(Record {
                ts_ns: Some(self.next as i64),
                caplen: len,
                wirelen: len,
                interface_id: None,
                link_type: *link_type,
                data,
            }))
        }
        fn info(&self) -> &SourceInfo {
            &self.info
        }
        fn bytes_read(&self) -> u64 {
            0
        }
    }

    /// An IPv4 packet 10.0.0.1 -> 10.0.0.2 of protocol `proto` with 8 zero bytes of payload
    /// header (ports 0), behind an Ethernet header when `ether`.
    fn ipv4(proto: u8, ether: bool) -> Vec<u8> {
        let mut f = Vec::new();
        if ether {
            f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        }
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 1, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0; 8]);
        f
    }

    fn kept(mut f: BpfFilter) -> (Vec<i64>, u64) {
        let mut ts = Vec::new();
        while let Some(r) = f.next_record().unwrap() {
            assert_eq!(r.data.len() as u32, r.caplen);
            ts.push(r.ts_ns.unwrap());
        }
        (ts, f.filtered())
    }

    #[test]
    fn keeps_what_passes_and_counts_the_rest() {
        let (udp, tcp) = (ipv4(17, true), ipv4(6, true));
        let frames = vec![(Some(1), udp.clone()), (Some(1), tcp.clone()), (None, udp.clone()), (Some(1), udp)];
        let f = BpfFilter::new(Frames::boxed(Some(1), frames), "udp").unwrap();
        assert_eq!(f.expression(), "udp");
        assert_eq!(kept(f), (vec![1, 4], 2));
    }

    #[test]
    fn compiles_per_link_type_including_raw_ip() {
        // Ethernet, then LINKTYPE_RAW (101: libpcap compiles it as DLT_RAW), then IPv4 (228).
        let frames = vec![
            (Some(1), ipv4(6, true)),
            (Some(101), ipv4(17, false)),
            (Some(101), ipv4(6, false)),
            (Some(228), ipv4(17, false)),
            (Some(1), ipv4(17, true)),
        ];
        let f = BpfFilter::new(Frames::boxed(None, frames), "udp and host 10.0.0.2").unwrap();
        assert_eq!(kept(f), (vec![2, 4, 5], 2));
        assert_eq!(dlt_of_linktype(1), 1);
        assert_ne!(dlt_of_linktype(101), 101);
    }

    #[test]
    fn bsd_loopback_ipv6_passes_ip6_in_the_files_byte_order() {
        let v6 = |family: [u8; 4]| {
            let mut f = family.to_vec();
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
            f.extend_from_slice(&[0; 40]);
            (Some(NULL), f)
        };
        let v4 = |family: [u8; 4]| {
            let mut f = family.to_vec();
            f.extend_from_slice(&ipv4(17, false));
            (Some(NULL), f)
        };
        // macOS (30), FreeBSD (28), NetBSD/OpenBSD (24); then IPv4; then macOS in the other order.
        let le =
            vec![v6(30u32.to_le_bytes()), v6(28u32.to_le_bytes()), v6(24u32.to_le_bytes()), v4(2u32.to_le_bytes())];
        let f = BpfFilter::new(Frames::boxed(Some(NULL), le.clone()), "ip6").unwrap();
        assert_eq!(kept(f), (vec![1, 2, 3], 1));
        let f = BpfFilter::new(Frames::boxed(Some(NULL), le), "udp and ip").unwrap();
        assert_eq!(kept(f), (vec![4], 3));
        // A big-endian file: its families are big-endian, and a little-endian one is not IPv6.
        let be = vec![v6(30u32.to_be_bytes()), v6(30u32.to_le_bytes()), v4(2u32.to_be_bytes())];
        let f = BpfFilter::new(Frames::boxed_be(Some(NULL), be), "ip6").unwrap();
        assert_eq!(kept(f), (vec![1], 2));
    }

    #[test]
    fn an_invalid_expression_fails_at_open_with_libpcaps_message() {
        for expr in ["udp and", "port 99999", "no such thing"] {
            match BpfFilter::new(Frames::boxed(Some(1), vec![]), expr) {
                Err(Error::InvalidArgument(m)) => {
                    assert!(m.starts_with(&format!("invalid BPF filter {expr:?}: ")), "{m}");
                    assert!(m.len() > format!("invalid BPF filter {expr:?}: ").len(), "{m}");
                }
                Err(other) => panic!("{expr}: {other:?}"),
                Ok(_) => panic!("{expr} compiled"),
            }
        }
    }

    #[test]
    fn an_expression_invalid_for_a_later_link_type_fails_there() {
        // Link-layer addresses mean nothing on raw IP.
        let frames = vec![(Some(1), ipv4(17, true)), (Some(101), ipv4(17, false))];
        let mut f = BpfFilter::new(Frames::boxed(Some(1), frames), "ether host 02:00:00:00:00:02").unwrap();
        assert!(f.next_record().unwrap().is_some());
        match f.next_record() {
            Err(Error::InvalidArgument(m)) => assert!(m.contains("(link type 101)"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
