//! Classic libpcap files: microsecond (`a1b2c3d4`), nanosecond (`a1b23c4d`) and Alexey
//! Kuznetzov's "modified" format (`a1b2cd34`, 24-byte record headers), each in either byte order.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{format_error, io_to_format, truncated, ByteSource, PacketSource, Record, SourceInfo, MAX_RECORD_LEN};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Variant {
    pub(crate) big_endian: bool,
    nanos: bool,
    modified: bool,
}

impl Variant {
    pub(crate) fn from_magic(m: [u8; 4]) -> Option<Variant> {
        let (le, be) = (u32::from_le_bytes(m), u32::from_be_bytes(m));
        let pick = |v: u32| match v {
            0xa1b2_c3d4 => Some((false, false)),
            0xa1b2_3c4d => Some((true, false)),
            0xa1b2_cd34 => Some((false, true)),
            _ => None,
        };
        if let Some((nanos, modified)) = pick(le) {
            return Some(Variant { big_endian: false, nanos, modified });
        }
        pick(be).map(|(nanos, modified)| Variant { big_endian: true, nanos, modified })
    }

    pub(crate) fn name(&self) -> &'static str {
        match (self.nanos, self.modified) {
            (true, _) => "pcap-ns",
            (false, true) => "pcap-modified",
            (false, false) => "pcap",
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
}

pub(crate) struct PcapReader {
    src: ByteSource,
    variant: Variant,
    link_type: u16,
    info: SourceInfo,
    count: Arc<AtomicU64>,
    record: u64,
    pending: usize,
}

impl PcapReader {
    pub(crate) fn open(
        mut src: ByteSource,
        variant: Variant,
        mut info: SourceInfo,
        count: Arc<AtomicU64>,
    ) -> Result<Self> {
        let got = src.fill_wait(24).map_err(|e| io_to_format(&info.path, 0, None, e))?;
        if got < 24 {
            return Err(format_error(
                &info.path,
                0,
                None,
                format!("pcap file header is truncated ({got} of 24 bytes)"),
            ));
        }
        let header = src.peek(24);
        // The link type is the low 16 bits; the upper bits hold FCS information (pcap-savefile(5)).
        let link_type = (variant.u32(header, 20) & 0xffff) as u16;
        src.consume(24);
        info.link_type = Some(link_type);
        Ok(Self { src, variant, link_type, info, count, record: 0, pending: 0 })
    }

    fn path(&self) -> &Path {
        &self.info.path
    }
}

impl PacketSource for PcapReader {
    fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        self.src.consume(std::mem::take(&mut self.pending));
        let header_len = if self.variant.modified { 24 } else { 16 };
        let offset = self.src.offset();
        let record = self.record + 1;
        let got = self.src.fill(header_len).map_err(|e| io_to_format(&self.info.path, offset, Some(record), e))?;
        if got == 0 {
            return Ok(None);
        }
        if got < header_len {
            return Err(truncated(self.path(), offset, record, header_len, got));
        }
        let h = self.src.peek(header_len);
        let v = self.variant;
        let (sec, frac) = (v.u32(h, 0), v.u32(h, 4));
        let (caplen, wirelen) = (v.u32(h, 8), v.u32(h, 12));
        if caplen as usize > MAX_RECORD_LEN {
            return Err(format_error(
                self.path(),
                offset,
                Some(record),
                format!("record claims {caplen} captured bytes, more than the {MAX_RECORD_LEN}-byte limit: the file is corrupt"),
            ));
        }
        let total = header_len + caplen as usize;
        let got = self.src.fill(total).map_err(|e| io_to_format(&self.info.path, offset, Some(record), e))?;
        if got < total {
            return Err(truncated(self.path(), offset, record, total, got));
        }
        self.record = record;
        self.pending = total;
        let frac_ns = if v.nanos { i64::from(frac) } else { i64::from(frac) * 1_000 };
        Ok(Some(Record {
            ts_ns: Some(i64::from(sec) * 1_000_000_000 + frac_ns),
            caplen,
            wirelen,
            interface_id: None,
            link_type: Some(self.link_type),
            data: &self.src.peek(total)[header_len..],
        }))
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

    #[test]
    fn recognises_all_magics() {
        let v = Variant::from_magic(0xa1b2c3d4u32.to_le_bytes()).unwrap();
        assert_eq!((v.big_endian, v.name()), (false, "pcap"));
        let v = Variant::from_magic(0xa1b23c4du32.to_be_bytes()).unwrap();
        assert_eq!((v.big_endian, v.name()), (true, "pcap-ns"));
        let v = Variant::from_magic(0xa1b2cd34u32.to_le_bytes()).unwrap();
        assert_eq!(v.name(), "pcap-modified");
        assert!(Variant::from_magic(*b"GIF8").is_none());
    }
}
