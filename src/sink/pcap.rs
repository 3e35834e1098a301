//! The classic pcap writer.
//!
//! Classic pcap rather than pcapng: every tool reads it (tcpdump, tshark, Zeek, Suricata, scapy,
//! dpkt, Metron's pcap query), it is what the archive's files have always been, and its 16-byte
//! record header is cheap to write. Timestamps are nanoseconds in memory; a file stores
//! microseconds (magic `0xa1b2c3d4`) or nanoseconds (`0xa1b23c4d`), in either byte order (the
//! big-endian form exists so tests can prove the reader handles captures from big-endian hosts).
//!
//! Input is hostile (frames and timestamps may come from any Kafka producer), so the writer never
//! writes a record a reader would reject: frames longer than the snap length are cut to it (as
//! `tcpdump -s` does), the wire length is at least the captured length, and a timestamp outside
//! what the 32-bit seconds field holds (1970 to 2106) is an `InvalidInput` error for that record,
//! leaving the file as it was.

use std::io::{self, Write};

use arrow_array::cast::AsArray;
use arrow_array::types::{TimestampNanosecondType, UInt16Type, UInt32Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};

/// The largest snap length tcpdump and libpcap write (`MAXIMUM_SNAPLEN`).
pub const MAX_SNAPLEN: u32 = 262_144;

/// How a file is laid out: written once, in its 24-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapHeader {
    /// The LINKTYPE_ value of every record (1 = Ethernet).
    pub link_type: u16,
    /// The snap length: longer frames are cut to it.
    pub snaplen: u32,
    /// Nanosecond timestamps (magic `0xa1b23c4d`) instead of microseconds.
    pub nanosecond: bool,
    /// Every header field big-endian, as a SPARC or PowerPC host writes them.
    pub big_endian: bool,
}

impl Default for PcapHeader {
    fn default() -> Self {
        Self { link_type: 1, snaplen: MAX_SNAPLEN, nanosecond: false, big_endian: false }
    }
}

impl PcapHeader {
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// The file header's 24 bytes.
    pub fn bytes(&self) -> [u8; 24] {
        let magic: u32 = if self.nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&self.u32(magic));
        h[4..6].copy_from_slice(&self.u16(2));
        h[6..8].copy_from_slice(&self.u16(4));
        // thiszone and sigfigs stay 0.
        h[16..20].copy_from_slice(&self.u32(self.snaplen));
        h[20..24].copy_from_slice(&self.u32(u32::from(self.link_type)));
        h
    }

    /// The 16-byte record header for a frame of `caplen` captured bytes, or `InvalidInput` when
    /// `ts_ns` is outside what the format stores.
    pub fn record(&self, ts_ns: i64, caplen: u32, wirelen: u32) -> io::Result<[u8; 16]> {
        let secs = ts_ns.div_euclid(1_000_000_000);
        let frac = ts_ns.rem_euclid(1_000_000_000) as u32;
        let secs = u32::try_from(secs).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("timestamp {ts_ns} ns is outside 1970..2106, which pcap's 32-bit seconds hold"),
            )
        })?;
        let frac = if self.nanosecond { frac } else { frac / 1000 };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&self.u32(secs));
        h[4..8].copy_from_slice(&self.u32(frac));
        h[8..12].copy_from_slice(&self.u32(caplen));
        h[12..16].copy_from_slice(&self.u32(wirelen.max(caplen)));
        Ok(h)
    }
}

/// Writes packets to `W` as a classic pcap file (header first, on creation).
pub struct PcapWriter<W: Write> {
    out: W,
    header: PcapHeader,
    packets: u64,
    bytes: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header to `out` and returns the writer. `out` should be buffered.
    pub fn new(mut out: W, header: PcapHeader) -> io::Result<Self> {
        if header.snaplen == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the snap length must be at least 1"));
        }
        out.write_all(&header.bytes())?;
        Ok(Self { out, header, packets: 0, bytes: 24 })
    }

    /// The header the file was started with.
    pub fn header(&self) -> &PcapHeader {
        &self.header
    }

    /// Appends one record: `frame` cut to the snap length, `wirelen` (at least the frame's
    /// length) as the original length.
    pub fn write(&mut self, ts_ns: i64, frame: &[u8], wirelen: u32) -> io::Result<()> {
        let caplen = frame.len().min(self.header.snaplen as usize);
        // caplen <= snaplen, a u32.
        // The wire held at least the whole frame, even if the snap length cuts it here.
        let wirelen = wirelen.max(u32::try_from(frame.len()).unwrap_or(u32::MAX));
        let record = self.header.record(ts_ns, caplen as u32, wirelen)?;
        self.out.write_all(&record)?;
        self.out.write_all(&frame[..caplen])?;
        self.packets += 1;
        self.bytes += 16 + caplen as u64;
        Ok(())
    }

    /// Appends every row of a batch with a `ts` (timestamp, ns) and a `frame` (binary) column;
    /// `wirelen` (uint32) is used when present. Rows with a null `ts` or `frame`, or whose
    /// `link_type` column names another link type than the file's, are skipped and counted in the
    /// returned value. Returns `(written, skipped)`.
    pub fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<(u64, u64)> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
        let column = |name: &str| batch.column_by_name(name);
        let ts = column("ts").ok_or_else(|| invalid("the batch has no `ts` column".into()))?;
        let ts = match ts.data_type() {
            DataType::Timestamp(TimeUnit::Nanosecond, _) => ts.as_primitive::<TimestampNanosecondType>(),
            other => return Err(invalid(format!("`ts` must be timestamp[ns], not {other}"))),
        };
        let frame = column("frame")
            .ok_or_else(|| invalid("the batch has no `frame` column: read it with columns=[..., \"frame\"]".into()))?;
        let frame = match frame.data_type() {
            DataType::Binary => frame.as_binary::<i32>(),
            other => return Err(invalid(format!("`frame` must be binary, not {other}"))),
        };
        let wirelen = match column("wirelen") {
            Some(w) if w.data_type() == &DataType::UInt32 => Some(w.as_primitive::<UInt32Type>()),
            Some(w) => return Err(invalid(format!("`wirelen` must be uint32, not {}", w.data_type()))),
            None => None,
        };
        let link_type = match column("link_type") {
            Some(l) if l.data_type() == &DataType::UInt16 => Some(l.as_primitive::<UInt16Type>()),
            Some(l) => return Err(invalid(format!("`link_type` must be uint16, not {}", l.data_type()))),
            None => None,
        };
        let (mut written, mut skipped) = (0, 0);
        for i in 0..batch.num_rows() {
            let other_link = link_type.is_some_and(|l| l.is_null(i) || l.value(i) != self.header.link_type);
            if ts.is_null(i) || frame.is_null(i) || other_link {
                skipped += 1;
                continue;
            }
            let data = frame.value(i);
            let wire = wirelen.filter(|w| w.is_valid(i)).map_or(data.len() as u32, |w| w.value(i));
            self.write(ts.value(i), data, wire)?;
            written += 1;
        }
        Ok((written, skipped))
    }

    /// Records written.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Bytes written, the file header included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The output, for fsync or closing.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Flushes and returns the output.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source;

    type Row = (Option<i64>, Vec<u8>, u32, Option<u16>);

    fn read_back(bytes: Vec<u8>) -> Vec<Row> {
        let dir = std::env::temp_dir().join(format!("pktstream-sink-{}-{}", std::process::id(), bytes.len()));
        std::fs::write(&dir, &bytes).unwrap();
        let mut src = source::open(&dir).unwrap();
        let mut out = Vec::new();
        while let Some(r) = src.next_record().unwrap() {
            out.push((r.ts_ns, r.data.to_vec(), r.wirelen, r.link_type));
        }
        std::fs::remove_file(&dir).unwrap();
        out
    }

    #[test]
    fn round_trips_through_the_reader_in_every_layout() {
        for (nanosecond, big_endian) in [(false, false), (true, false), (false, true), (true, true)] {
            let header = PcapHeader { link_type: 101, snaplen: 4, nanosecond, big_endian };
            let mut w = PcapWriter::new(Vec::new(), header).unwrap();
            w.write(1_700_000_000_123_456_789, b"\x45abcdef", 0).unwrap();
            w.write(0, b"xy", 100).unwrap();
            assert_eq!((w.packets(), w.bytes()), (2, 24 + 16 + 4 + 16 + 2));
            let got = read_back(w.into_inner().unwrap());
            let ts = if nanosecond { 1_700_000_000_123_456_789 } else { 1_700_000_000_123_456_000 };
            assert_eq!(got[0], (Some(ts), b"\x45abc".to_vec(), 7, Some(101)));
            assert_eq!(got[1], (Some(0), b"xy".to_vec(), 100, Some(101)));
        }
    }

    #[test]
    fn a_timestamp_pcap_cannot_hold_is_refused_and_writes_nothing() {
        let mut w = PcapWriter::new(Vec::new(), PcapHeader::default()).unwrap();
        for ts in [-1, i64::MAX, (1i64 << 32) * 1_000_000_000] {
            assert_eq!(w.write(ts, b"abc", 3).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(w.into_inner().unwrap().len(), 24);
        assert!(PcapWriter::new(Vec::new(), PcapHeader { snaplen: 0, ..PcapHeader::default() }).is_err());
    }
}
