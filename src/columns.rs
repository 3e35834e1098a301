//! Arrow builders for the packet schema: one append per packet, one `RecordBatch` per batch.
//!
//! Only the projected columns get a builder, and the decoder is skipped entirely when no
//! projected column needs it (e.g. `columns=["ts", "caplen"]`). Addresses are formatted straight
//! into the string builders' buffers, without a temporary `String` per value.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, FixedSizeBinaryBuilder, StringBuilder, TimestampNanosecondBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use crate::decode::community_id::{self, community_id};
use crate::decode::{IpAddr, Packet};
use crate::error::Result;
use crate::schema::{AddressFormat, Column, Kind, SchemaOptions};
use crate::source::Record;

/// Per-record values that come from the capture file rather than from the frame.
#[derive(Debug, Clone, Copy)]
pub struct RecordMeta {
    pub frame_number: u64,
    pub ts_ns: Option<i64>,
    pub caplen: u32,
    pub wirelen: u32,
    pub interface_id: Option<u32>,
    pub link_type: Option<u16>,
}

impl RecordMeta {
    pub fn new(frame_number: u64, r: &Record<'_>) -> Self {
        Self {
            frame_number,
            ts_ns: r.ts_ns,
            caplen: r.caplen,
            wirelen: r.wirelen,
            interface_id: r.interface_id,
            link_type: r.link_type,
        }
    }
}

enum Builder {
    Ts(TimestampNanosecondBuilder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Mac(FixedSizeBinaryBuilder),
}

/// Accumulates packets into the columns of one record batch.
pub struct PacketColumns {
    schema: SchemaRef,
    columns: Vec<(Column, Builder)>,
    needs_decode: bool,
    rows: usize,
}

impl PacketColumns {
    pub fn new(opts: &SchemaOptions, capacity: usize) -> Self {
        let columns = opts
            .columns
            .iter()
            .map(|&c| (c, new_builder(c, opts.addresses, capacity)))
            .collect::<Vec<_>>();
        let needs_decode = opts.columns.iter().any(|c| {
            !matches!(
                c,
                Column::FrameNumber | Column::Ts | Column::Caplen | Column::Wirelen | Column::InterfaceId | Column::LinkType
            )
        });
        Self { schema: opts.schema(), columns, needs_decode, rows: 0 }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Whether any projected column needs the frame decoded.
    pub fn needs_decode(&self) -> bool {
        self.needs_decode
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one packet.
    pub fn append(&mut self, m: &RecordMeta, p: &Packet) {
        self.rows += 1;
        for (column, builder) in self.columns.iter_mut() {
            match (*column, builder) {
                (Column::FrameNumber, Builder::U64(b)) => b.append_value(m.frame_number),
                (Column::Ts, Builder::Ts(b)) => b.append_option(m.ts_ns),
                (Column::Caplen, Builder::U32(b)) => b.append_value(m.caplen),
                (Column::Wirelen, Builder::U32(b)) => b.append_value(m.wirelen),
                (Column::InterfaceId, Builder::U32(b)) => b.append_option(m.interface_id),
                (Column::LinkType, Builder::U16(b)) => b.append_option(m.link_type),
                (Column::EthSrc, b) => append_mac(b, p.eth_src),
                (Column::EthDst, b) => append_mac(b, p.eth_dst),
                (Column::Ethertype, Builder::U16(b)) => b.append_option(p.ethertype),
                (Column::VlanId, Builder::U16(b)) => b.append_option(p.vlan_id),
                (Column::InnerVlanId, Builder::U16(b)) => b.append_option(p.inner_vlan_id),
                (Column::IpVersion, Builder::U8(b)) => b.append_option(p.ip_version),
                (Column::SrcIp, b) => append_ip(b, p.src_ip),
                (Column::DstIp, b) => append_ip(b, p.dst_ip),
                (Column::IpProto, Builder::U8(b)) => b.append_option(p.ip_proto),
                (Column::Ttl, Builder::U8(b)) => b.append_option(p.ttl),
                (Column::IpLen, Builder::U32(b)) => b.append_option(p.ip_len),
                (Column::FragOffset, Builder::U16(b)) => b.append_option(p.frag_offset),
                (Column::MoreFragments, Builder::Bool(b)) => b.append_option(p.more_fragments),
                (Column::SrcPort, Builder::U16(b)) => b.append_option(p.src_port),
                (Column::DstPort, Builder::U16(b)) => b.append_option(p.dst_port),
                (Column::TcpFlags, Builder::U16(b)) => b.append_option(p.tcp_flags),
                (Column::TcpSeq, Builder::U32(b)) => b.append_option(p.tcp_seq),
                (Column::TcpAck, Builder::U32(b)) => b.append_option(p.tcp_ack),
                (Column::TcpWindow, Builder::U16(b)) => b.append_option(p.tcp_window),
                (Column::IcmpType, Builder::U8(b)) => b.append_option(p.icmp_type),
                (Column::IcmpCode, Builder::U8(b)) => b.append_option(p.icmp_code),
                (Column::PayloadLen, Builder::U32(b)) => b.append_option(p.payload_len),
                (Column::CommunityId, Builder::Str(b)) => {
                    let mut out = [0u8; community_id::LEN];
                    if community_id(p, &mut out) {
                        // The id is ASCII ("1:" + base64), so from_utf8 cannot fail.
                        b.append_value(std::str::from_utf8(&out).unwrap_or_default());
                    } else {
                        b.append_null();
                    }
                }
                (Column::Tunnel, Builder::Str(b)) => b.append_option(p.tunnel.map(|t| t.as_str())),
                (Column::OuterSrcIp, b) => append_ip(b, p.outer_src_ip),
                (Column::OuterDstIp, b) => append_ip(b, p.outer_dst_ip),
                (Column::DecodeStatus, Builder::Str(b)) => b.append_option(p.status.as_deref()),
                // new_builder pairs every column with the builder of its kind.
                (c, _) => unreachable!("builder kind mismatch for column {}", c.name()),
            }
        }
    }

    /// Finishes the accumulated rows into a batch and starts a new, empty one.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|(_, b)| -> ArrayRef {
                match b {
                    Builder::Ts(b) => Arc::new(b.finish().with_timezone("UTC")),
                    Builder::U8(b) => Arc::new(b.finish()),
                    Builder::U16(b) => Arc::new(b.finish()),
                    Builder::U32(b) => Arc::new(b.finish()),
                    Builder::U64(b) => Arc::new(b.finish()),
                    Builder::Bool(b) => Arc::new(b.finish()),
                    Builder::Str(b) => Arc::new(b.finish()),
                    Builder::Bin(b) => Arc::new(b.finish()),
                    Builder::Mac(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let rows = std::mem::take(&mut self.rows);
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)?)
    }
}

fn new_builder(c: Column, addresses: AddressFormat, n: usize) -> Builder {
    match (c.kind(), addresses) {
        (Kind::Timestamp, _) => Builder::Ts(TimestampNanosecondBuilder::with_capacity(n)),
        (Kind::U8, _) => Builder::U8(UInt8Builder::with_capacity(n)),
        (Kind::U16, _) => Builder::U16(UInt16Builder::with_capacity(n)),
        (Kind::U32, _) => Builder::U32(UInt32Builder::with_capacity(n)),
        (Kind::U64, _) => Builder::U64(UInt64Builder::with_capacity(n)),
        (Kind::Bool, _) => Builder::Bool(BooleanBuilder::with_capacity(n)),
        (Kind::Str, _) => Builder::Str(StringBuilder::with_capacity(n, n * 8)),
        (Kind::Ip | Kind::Mac, AddressFormat::String) => Builder::Str(StringBuilder::with_capacity(n, n * 16)),
        (Kind::Ip, AddressFormat::Binary) => Builder::Bin(BinaryBuilder::with_capacity(n, n * 4)),
        (Kind::Mac, AddressFormat::Binary) => Builder::Mac(FixedSizeBinaryBuilder::with_capacity(n, 6)),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn append_mac(b: &mut Builder, mac: Option<[u8; 6]>) {
    match (b, mac) {
        (Builder::Str(b), Some(m)) => {
            let mut s = [b':'; 17];
            for (i, byte) in m.iter().enumerate() {
                s[i * 3] = HEX[usize::from(byte >> 4)];
                s[i * 3 + 1] = HEX[usize::from(byte & 0xf)];
            }
            b.append_value(std::str::from_utf8(&s).unwrap_or_default());
        }
        (Builder::Str(b), None) => b.append_null(),
        (Builder::Mac(b), Some(m)) => {
            // The builder's width is 6, the value's length is 6: this cannot fail.
            let _ = b.append_value(m);
        }
        (Builder::Mac(b), None) => b.append_null(),
        _ => unreachable!("MAC columns are string or fixed_size_binary(6)"),
    }
}

fn append_ip(b: &mut Builder, ip: Option<IpAddr>) {
    match (b, ip) {
        (Builder::Str(b), Some(IpAddr::V4(a))) => {
            let mut s = [0u8; 15];
            let n = format_ipv4(a, &mut s);
            b.append_value(std::str::from_utf8(&s[..n]).unwrap_or_default());
        }
        (Builder::Str(b), Some(v6 @ IpAddr::V6(_))) => {
            // StringBuilder implements fmt::Write into the pending value; append_value("") ends it.
            let _ = write!(b, "{v6}");
            b.append_value("");
        }
        (Builder::Str(b), None) => b.append_null(),
        (Builder::Bin(b), Some(a)) => b.append_value(a.octets()),
        (Builder::Bin(b), None) => b.append_null(),
        _ => unreachable!("IP columns are string or binary"),
    }
}

/// Dotted-quad formatting without `fmt` machinery (the hottest string in the schema).
fn format_ipv4(a: [u8; 4], out: &mut [u8; 15]) -> usize {
    let mut n = 0;
    for (i, &octet) in a.iter().enumerate() {
        if i > 0 {
            out[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            out[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            out[n] = b'0' + (octet / 10) % 10;
            n += 1;
        }
        out[n] = b'0' + octet % 10;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ipv4_formatting_matches_std(a in any::<[u8; 4]>()) {
            let mut s = [0u8; 15];
            let n = format_ipv4(a, &mut s);
            prop_assert_eq!(std::str::from_utf8(&s[..n]).unwrap(), std::net::Ipv4Addr::from(a).to_string());
        }
    }
}
