//! pcapng (draft-ietf-opsawg-pcapng): sections in either byte order, any number of interfaces,
//! each with its own link type, timestamp resolution (`if_tsresol`) and offset (`if_tsoffset`).
//! Enhanced, simple and obsolete packet blocks become records; every other block (name
//! resolution, statistics, decryption secrets, custom, unknown) is skipped.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{format_error, io_to_format, truncated, ByteSource, PacketSource, Record, SourceInfo, MAX_RECORD_LEN};
use crate::error::{Error, Result};

pub(crate) const SHB_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// Largest block accepted: a maximal record plus generous room for options.
const MAX_BLOCK_LEN: usize = MAX_RECORD_LEN + (1 << 16);
/// Most interfaces one section may describe. Each costs one [`Interface`] (24 bytes, whatever
/// the size of its block: options and names are parsed in place, never stored), so the cap bounds
/// that state at 1.5 MiB per reader. Without it, a 4.8 MB `.pcapng.gz` of repeated 20-byte
/// interface blocks (~100M of them) grew the list to 2.4 GB. Real captures describe a handful;
/// `dumpcap` merges rarely reach hundreds, and EPB interface ids are 32-bit but OPB's are 16-bit,
/// so 65,536 is generous.
pub(crate) const MAX_INTERFACES: usize = 1 << 16;

/// Timestamp units of one interface.
#[derive(Debug, Clone, Copy)]
enum Resolution {
    /// 10^-n seconds.
    Decimal(u32),
    /// 2^-n seconds.
    Binary(u32),
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u16,
    snaplen: u32,
    resolution: Resolution,
    offset_ns: i64,
}

impl Interface {
    fn ts_ns(&self, ticks: u64) -> i64 {
        let ns: i128 = match self.resolution {
            Resolution::Decimal(n) if n <= 9 => i128::from(ticks) * 10i128.pow(9 - n),
            Resolution::Decimal(n) => i128::from(ticks) / 10i128.pow(n.min(38) - 9),
            Resolution::Binary(n) => (i128::from(ticks) * 1_000_000_000) >> n.min(100),
        };
        (ns + i128::from(self.offset_ns)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

pub(crate) struct PcapngReader {
    src: ByteSource,
    info: SourceInfo,
    count: Arc<AtomicU64>,
    big_endian: bool,
    interfaces: Vec<Interface>,
    record: u64,
    pending: usize,
}

impl PcapngReader {
    pub(crate) fn open(src: ByteSource, info: SourceInfo, count: Arc<AtomicU64>) -> Result<Self> {
        let mut reader = Self { src, info, count, big_endian: false, interfaces: Vec::new(), record: 0, pending: 0 };
        // Validate the first section header now, so a bad file fails at open with its offset.
        reader.section_header()?;
        reader.info.link_type = reader.first_interface();
        Ok(reader)
    }

    /// The link type of the interface described right after the first section header, peeked
    /// without consuming anything (best effort: `None` if the block is not there yet or is odd).
    fn first_interface(&mut self) -> Option<u16> {
        let got = self.src.fill_wait(8).ok()?;
        let shb_len = (got >= 8).then(|| self.u32(self.src.peek(8), 4) as usize)?.next_multiple_of(4);
        if !(28..=1 << 16).contains(&shb_len) || self.src.fill_wait(shb_len + 10).ok()? < shb_len + 10 {
            return None;
        }
        let b = &self.src.peek(shb_len + 10)[shb_len..];
        (self.u32(b, 0) == 1).then(|| self.u16(b, 8))
    }

    fn u16(&self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        }
    }

    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big_endian {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    fn path(&self) -> &Path {
        &self.info.path
    }

    fn err(&self, offset: u64, message: String) -> Error {
        format_error(self.path(), offset, None, message)
    }

    /// Reads the byte-order magic of a section header at the current position and switches
    /// endianness; interfaces are per section, so they are forgotten.
    fn section_header(&mut self) -> Result<()> {
        let offset = self.src.offset();
        let got = self.src.fill_wait(12).map_err(|e| io_to_format(&self.info.path, offset, None, e))?;
        if got < 12 {
            return Err(self.err(offset, format!("section header block is truncated ({got} of 12 bytes)")));
        }
        let bom = [self.src.peek(12)[8], self.src.peek(12)[9], self.src.peek(12)[10], self.src.peek(12)[11]];
        self.big_endian = match u32::from_le_bytes(bom) {
            0x1a2b_3c4d => false,
            0x4d3c_2b1a => true,
            _ => return Err(self.err(offset + 8, "pcapng section header has a bad byte-order magic".into())),
        };
        self.info.big_endian = self.big_endian;
        self.interfaces.clear();
        Ok(())
    }

    /// Makes the whole block at the current position available; returns its type and length, or
    /// `None` at a clean end of file.
    fn block(&mut self) -> Result<Option<(u32, usize)>> {
        let offset = self.src.offset();
        let record = self.record + 1;
        let got = self.src.fill(8).map_err(|e| io_to_format(&self.info.path, offset, Some(record), e))?;
        if got == 0 {
            return Ok(None);
        }
        if got < 8 {
            return Err(truncated(self.path(), offset, record, 8, got));
        }
        if self.src.peek(4) == SHB_MAGIC {
            self.section_header()?;
        }
        let head = self.src.peek(8);
        let (kind, len) = (self.u32(head, 0), self.u32(head, 4) as usize);
        if len < 12 {
            return Err(self.err(offset, format!("block of type 0x{kind:08x} has an invalid length {len}")));
        }
        // Lengths must be multiples of 4; some writers omit the padding from the count, and
        // Wireshark reads such files, so round up as it does.
        let len = len.next_multiple_of(4);
        if len > MAX_BLOCK_LEN {
            return Err(self.err(
                offset,
                format!("block of type 0x{kind:08x} claims {len} bytes, more than the {MAX_BLOCK_LEN}-byte limit: the file is corrupt"),
            ));
        }
        let got = self.src.fill(len).map_err(|e| io_to_format(&self.info.path, offset, Some(record), e))?;
        if got < len {
            return Err(truncated(self.path(), offset, record, len, got));
        }
        let trailer = self.u32(self.src.peek(len), len - 4) as usize;
        if trailer.next_multiple_of(4) != len {
            return Err(self.err(offset, format!("block length {len} does not match its trailing copy {trailer}")));
        }
        Ok(Some((kind, len)))
    }

    fn interface_description(&mut self, len: usize, offset: u64) -> Result<()> {
        let b = self.src.peek(len);
        if len < 20 {
            return Err(self.err(offset, "interface description block is too short".into()));
        }
        let mut iface = Interface {
            link_type: self.u16(b, 8),
            snaplen: self.u32(b, 12),
            resolution: Resolution::Decimal(6),
            offset_ns: 0,
        };
        // Options: (code u16, length u16, value padded to 4 bytes)*, ending with code 0.
        let mut at = 16;
        while at + 4 <= len - 4 {
            let (code, olen) = (self.u16(b, at), usize::from(self.u16(b, at + 2)));
            let value = at + 4;
            if code == 0 || value + olen > len - 4 {
                break;
            }
            match (code, olen) {
                (9, 1) => {
                    let r = b[value];
                    iface.resolution = if r & 0x80 != 0 {
                        Resolution::Binary(u32::from(r & 0x7f))
                    } else {
                        Resolution::Decimal(u32::from(r))
                    };
                }
                (14, 8) => {
                    let (hi, lo) = (self.u32(b, value), self.u32(b, value + 4));
                    let secs = if self.big_endian {
                        (u64::from(hi) << 32 | u64::from(lo)) as i64
                    } else {
                        (u64::from(lo) << 32 | u64::from(hi)) as i64
                    };
                    iface.offset_ns = secs.saturating_mul(1_000_000_000);
                }
                _ => {}
            }
            at = value + olen.div_ceil(4) * 4;
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(self.err(
                offset,
                format!(
                    "pcapng section describes more than {MAX_INTERFACES} interfaces: the file is corrupt or hostile"
                ),
            ));
        }
        self.interfaces.push(iface);
        Ok(())
    }
}

impl PacketSource for PcapngReader {
    fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        loop {
            self.src.consume(std::mem::take(&mut self.pending));
            let offset = self.src.offset();
            let Some((kind, len)) = self.block()? else { return Ok(None) };
            self.pending = len;
            // (interface index, timestamp ticks, captured length, original length, data start)
            let packet = match kind {
                IDB => {
                    self.interface_description(len, offset)?;
                    continue;
                }
                SHB => {
                    let b = self.src.peek(len);
                    if len < 28 || self.u16(b, 12) != 1 {
                        return Err(self.err(offset, format!("unsupported pcapng major version {}", self.u16(b, 12))));
                    }
                    continue;
                }
                EPB | OPB => {
                    if len < 32 {
                        return Err(self.err(offset, "packet block is too short".into()));
                    }
                    let b = self.src.peek(len);
                    let iface = if kind == EPB { self.u32(b, 8) } else { u32::from(self.u16(b, 8)) };
                    let ticks = u64::from(self.u32(b, 12)) << 32 | u64::from(self.u32(b, 16));
                    (iface, Some(ticks), self.u32(b, 20), self.u32(b, 24), 28)
                }
                SPB => {
                    if len < 16 {
                        return Err(self.err(offset, "simple packet block is too short".into()));
                    }
                    let wirelen = self.u32(self.src.peek(len), 8);
                    let snaplen =
                        self.interfaces.first().map_or(u32::MAX, |i| if i.snaplen == 0 { u32::MAX } else { i.snaplen });
                    // An SPB has no captured-length field: it is min(original length, snap length),
                    // and the block must be exactly that long (as Wireshark requires).
                    let caplen = wirelen.min(snaplen);
                    if 16 + (caplen as usize).next_multiple_of(4) != len {
                        return Err(format_error(
                            self.path(),
                            offset,
                            Some(self.record + 1),
                            format!("simple packet block of {len} bytes does not fit its {caplen}-byte packet"),
                        ));
                    }
                    (0, None, caplen, wirelen, 12)
                }
                _ => continue,
            };
            let (iface_id, ticks, caplen, wirelen, start) = packet;
            let record = self.record + 1;
            if start + caplen as usize > len - 4 {
                return Err(format_error(
                    self.path(),
                    offset,
                    Some(record),
                    format!("packet block claims {caplen} captured bytes but holds only {}", len - 4 - start),
                ));
            }
            self.record = record;
            let iface = self.interfaces.get(iface_id as usize).copied();
            return Ok(Some(Record {
                ts_ns: match (ticks, iface) {
                    (Some(t), Some(i)) => Some(i.ts_ns(t)),
                    _ => None,
                },
                caplen,
                wirelen,
                interface_id: Some(iface_id),
                link_type: iface.map(|i| i.link_type),
                data: &self.src.peek(len)[start..start + caplen as usize],
            }));
        }
    }

    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn bytes_read(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shb() -> Vec<u8> {
        let mut b = Vec::new();
        for v in [SHB, 28, 0x1a2b_3c4d] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        b.extend_from_slice(&28u32.to_le_bytes());
        b
    }

    /// An interface description block; `name_len` bytes of `if_name` option make it larger.
    fn idb(link_type: u16, name_len: usize) -> Vec<u8> {
        let opts = if name_len == 0 { 0 } else { 4 + name_len.next_multiple_of(4) + 4 };
        let len = (20 + opts) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&IDB.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&link_type.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&65535u32.to_le_bytes());
        if name_len > 0 {
            b.extend_from_slice(&2u16.to_le_bytes());
            b.extend_from_slice(&(name_len as u16).to_le_bytes());
            b.resize(b.len() + name_len.next_multiple_of(4), b'x');
            b.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    fn epb(iface: u32, data: &[u8]) -> Vec<u8> {
        let len = (32 + data.len().next_multiple_of(4)) as u32;
        let mut b = Vec::new();
        for v in [EPB, len, iface, 0, 1, data.len() as u32, data.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(data);
        b.resize(b.len() + data.len().next_multiple_of(4) - data.len(), 0);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    fn reader(bytes: Vec<u8>) -> PcapngReader {
        let src = ByteSource::new(Box::new(std::io::Cursor::new(bytes)));
        let info = SourceInfo {
            path: "mem".into(),
            format: "pcapng",
            big_endian: false,
            gzip: false,
            file_size: None,
            link_type: None,
        };
        PcapngReader::open(src, info, Arc::default()).unwrap()
    }

    fn section(interfaces: usize) -> Vec<u8> {
        let one = idb(1, 0);
        let mut b = shb();
        b.reserve(one.len() * interfaces);
        for _ in 0..interfaces {
            b.extend_from_slice(&one);
        }
        b
    }

    #[test]
    fn interface_state_is_small_and_fixed_size() {
        // The cap's memory bound (1.5 MiB) rests on this size; options are never stored.
        assert_eq!(std::mem::size_of::<Interface>(), 24);
        let mut bytes = shb();
        bytes.extend(idb(101, 60_000));
        bytes.extend(idb(1, 3));
        bytes.extend(epb(0, &[0x45; 20]));
        let mut r = reader(bytes);
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(rec.link_type, Some(101));
        assert_eq!(r.interfaces.len(), 2);
        assert!(r.interfaces.capacity() <= 4);
    }

    #[test]
    fn interfaces_up_to_the_cap_are_read() {
        let mut bytes = section(MAX_INTERFACES);
        bytes.extend(epb(MAX_INTERFACES as u32 - 1, &[0; 14]));
        let mut r = reader(bytes);
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!((rec.interface_id, rec.link_type), (Some(MAX_INTERFACES as u32 - 1), Some(1)));
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn interfaces_past_the_cap_are_a_format_error() {
        let mut bytes = section(MAX_INTERFACES + 1);
        bytes.extend(epb(0, &[0; 14]));
        let mut r = reader(bytes);
        let err = match r.next_record() {
            Err(e) => e,
            Ok(_) => panic!("no error past the interface cap"),
        };
        let at = 28 + 20 * MAX_INTERFACES as u64;
        match &err {
            Error::Format { offset, message, .. } => {
                assert_eq!(*offset, at);
                assert!(message.contains("more than 65536 interfaces"), "{message}");
            }
            other => panic!("not a format error: {other:?}"),
        }
        assert!(r.interfaces.capacity() <= MAX_INTERFACES, "{}", r.interfaces.capacity());
    }

    #[test]
    fn a_section_header_forgets_the_interfaces_and_the_cap_is_per_section() {
        // Section 1: a full set of Ethernet interfaces. Section 2: a full set again (the cap is
        // per section), the first raw IP; its packets name section 2's interfaces only.
        let mut bytes = section(MAX_INTERFACES);
        bytes.extend(epb(5, &[0; 14]));
        bytes.extend(shb());
        bytes.extend(idb(101, 0));
        bytes.extend(epb(0, &[0x45; 20]));
        bytes.extend(epb(1, &[0x45; 20]));
        bytes.extend(section(MAX_INTERFACES - 1).split_off(28));
        bytes.extend(epb(MAX_INTERFACES as u32 - 1, &[0; 14]));
        let mut r = reader(bytes);
        let links: Vec<_> = std::iter::from_fn(|| r.next_record().unwrap().map(|rec| rec.link_type)).collect();
        assert_eq!(links, [Some(1), Some(101), None, Some(1)]);
    }

    #[test]
    fn timestamp_resolutions() {
        let mut i = Interface { link_type: 1, snaplen: 0, resolution: Resolution::Decimal(6), offset_ns: 0 };
        assert_eq!(i.ts_ns(1_500_000), 1_500_000_000);
        i.resolution = Resolution::Decimal(9);
        assert_eq!(i.ts_ns(7), 7);
        i.resolution = Resolution::Decimal(12);
        assert_eq!(i.ts_ns(7_000), 7);
        i.resolution = Resolution::Binary(10);
        assert_eq!(i.ts_ns(1024), 1_000_000_000);
        i.offset_ns = 5_000_000_000;
        assert_eq!(i.ts_ns(512), 5_500_000_000);
    }
}
