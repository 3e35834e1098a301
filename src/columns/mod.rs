//! Packet columns: one append per packet, one `RecordBatch` per batch.
//!
//! Each projected column gets an accumulator held in its own field, so appending a packet is
//! straight-line code with no per-column dispatch; unprojected columns cost one branch. The
//! decoder is skipped entirely when no projected column needs it (e.g. `columns=["ts", "caplen"]`).
//! The accumulators (`chunk`) write plain vectors 64 rows at a time instead of going through
//! arrow's builders, whose per-value calls dominated the cost of a packet, and reuse the memory
//! of batches the caller has dropped (`pool`). Addresses are formatted straight into the column
//! bytes (`address`, `format`), and Community IDs come from a small per-reader flow cache
//! (`flow_cache`), since packets of a flow arrive together.

mod address;
mod chunk;
mod flow_cache;
pub(crate) mod format;
mod pool;

use arrow_array::types::{TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{ArrowError, SchemaRef};
use std::sync::Arc;

use crate::decode::community_id;
use crate::decode::Packet;
use crate::error::Result;
use crate::schema::{Column, SchemaOptions};
use crate::source::Record;
use address::{IpColumn, MacColumn};
use chunk::{Accumulate, Bools, Bytes, Prim, Put, Text, CHUNK};
use flow_cache::CommunityIdCache;

/// Per-record values that come from the capture file rather than from the frame.
#[derive(Debug, Clone, Copy)]
pub struct RecordMeta {
    /// 1-based position of the record in the input (tshark's `frame.number`).
    pub frame_number: u64,
    /// Nanoseconds since the Unix epoch, UTC; `None` when the format stores no time (pcapng SPB).
    pub ts_ns: Option<i64>,
    /// Bytes captured (the length of the record's data).
    pub caplen: u32,
    /// Bytes the frame had on the wire, before any snap length cut it.
    pub wirelen: u32,
    /// pcapng interface index; `None` for classic pcap.
    pub interface_id: Option<u32>,
    /// The LINKTYPE_ value; `None` when the record names an interface the file never described.
    pub link_type: Option<u16>,
}

impl RecordMeta {
    /// The metadata of record `r`, the `frame_number`-th of its input.
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

/// `Timestamp(ns, "UTC")`.
struct Timestamps(Prim<TimestampNanosecondType>);

impl Put<Option<i64>> for Timestamps {
    #[inline]
    fn put(&mut self, i: usize, value: Option<i64>) {
        self.0.put(i, value)
    }
}

impl Accumulate for Timestamps {
    #[inline]
    fn flush(&mut self) {
        self.0.flush()
    }

    fn finish(&mut self, partial: usize) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(self.0.finish_array(partial).with_timezone("UTC")))
    }
}

/// Declares one accumulator field per column, with how to create it and what value to append.
macro_rules! columns {
    ($opts:ident, $n:ident, $m:ident, $p:ident, $data:ident, $cid:ident;
     $( $field:ident: $column:ident => $ty:ty = $new:expr, $value:expr; )*) => {
        #[derive(Default)]
        struct Accumulators { $( $field: Option<$ty>, )* }

        impl Accumulators {
            fn new($opts: &SchemaOptions, $n: usize) -> Self {
                let mut a = Accumulators::default();
                for c in &$opts.columns {
                    match c { $( Column::$column => a.$field = Some($new), )* }
                }
                a
            }

            /// Writes one packet into slot `i` of every projected column's chunk.
            #[inline]
            fn put(&mut self, i: usize, $m: &RecordMeta, $p: &Packet, $data: &[u8], $cid: &mut CommunityIdCache) {
                $( if let Some(a) = &mut self.$field { a.put(i, $value); } )*
            }

            /// Called after slot `CHUNK - 1` was written.
            #[inline(never)]
            fn flush(&mut self) {
                $( if let Some(a) = &mut self.$field { a.flush(); } )*
            }

            fn finish(&mut self, c: Column, partial: usize) -> Result<ArrayRef, ArrowError> {
                match c { $( Column::$column => finish(&mut self.$field, partial), )* }
            }
        }
    };
}

columns! { opts, n, m, p, data, cid;
    frame_number: FrameNumber => Prim<UInt64Type> = Prim::new(n), Some(m.frame_number);
    ts: Ts => Timestamps = Timestamps(Prim::new(n)), m.ts_ns;
    caplen: Caplen => Prim<UInt32Type> = Prim::new(n), Some(m.caplen);
    wirelen: Wirelen => Prim<UInt32Type> = Prim::new(n), Some(m.wirelen);
    interface_id: InterfaceId => Prim<UInt32Type> = Prim::new(n), m.interface_id;
    link_type: LinkType => Prim<UInt16Type> = Prim::new(n), m.link_type;
    eth_src: EthSrc => MacColumn = MacColumn::new(opts.addresses, n), p.eth_src;
    eth_dst: EthDst => MacColumn = MacColumn::new(opts.addresses, n), p.eth_dst;
    ethertype: Ethertype => Prim<UInt16Type> = Prim::new(n), p.ethertype;
    vlan_id: VlanId => Prim<UInt16Type> = Prim::new(n), p.vlan_id;
    inner_vlan_id: InnerVlanId => Prim<UInt16Type> = Prim::new(n), p.inner_vlan_id;
    ip_version: IpVersion => Prim<UInt8Type> = Prim::new(n), p.ip_version;
    src_ip: SrcIp => IpColumn = IpColumn::new(opts.addresses, n), p.src_ip;
    dst_ip: DstIp => IpColumn = IpColumn::new(opts.addresses, n), p.dst_ip;
    ip_proto: IpProto => Prim<UInt8Type> = Prim::new(n), p.ip_proto;
    ttl: Ttl => Prim<UInt8Type> = Prim::new(n), p.ttl;
    ip_len: IpLen => Prim<UInt32Type> = Prim::new(n), p.ip_len;
    frag_offset: FragOffset => Prim<UInt16Type> = Prim::new(n), p.frag_offset;
    more_fragments: MoreFragments => Bools = Bools::new(n), p.more_fragments;
    src_port: SrcPort => Prim<UInt16Type> = Prim::new(n), p.src_port;
    dst_port: DstPort => Prim<UInt16Type> = Prim::new(n), p.dst_port;
    tcp_flags: TcpFlags => Prim<UInt16Type> = Prim::new(n), p.tcp_flags;
    tcp_seq: TcpSeq => Prim<UInt32Type> = Prim::new(n), p.tcp_seq;
    tcp_ack: TcpAck => Prim<UInt32Type> = Prim::new(n), p.tcp_ack;
    tcp_window: TcpWindow => Prim<UInt16Type> = Prim::new(n), p.tcp_window;
    icmp_type: IcmpType => Prim<UInt8Type> = Prim::new(n), p.icmp_type;
    icmp_code: IcmpCode => Prim<UInt8Type> = Prim::new(n), p.icmp_code;
    payload_len: PayloadLen => Prim<UInt32Type> = Prim::new(n), p.payload_len;
    community_id: CommunityId => Text = Text::new(n, community_id::LEN), cid.get(p).map(id_text);
    tunnel: Tunnel => Text = Text::new(n, 1), p.tunnel.map(|t| t.as_str());
    outer_src_ip: OuterSrcIp => IpColumn = IpColumn::new(opts.addresses, n), p.outer_src_ip;
    outer_dst_ip: OuterDstIp => IpColumn = IpColumn::new(opts.addresses, n), p.outer_dst_ip;
    decode_status: DecodeStatus => Text = Text::new(n, 1), p.status.as_deref();
    frame: Frame => Bytes = Bytes::new(n, 128), data;
}

/// The Community ID words as text.
#[inline]
fn id_text(id: [u64; 4]) -> ([u64; 4], usize) {
    (id, community_id::LEN)
}

fn finish<A: Accumulate>(a: &mut Option<A>, partial: usize) -> Result<ArrayRef, ArrowError> {
    match a {
        Some(a) => a.finish(partial),
        // Accumulators::new creates one for every projected column, and only those are finished.
        None => unreachable!("finish called for a column that is not projected"),
    }
}

/// Accumulates packets into the columns of one record batch.
pub struct PacketColumns {
    schema: SchemaRef,
    order: Vec<Column>,
    columns: Accumulators,
    cid_cache: CommunityIdCache,
    needs_decode: bool,
    rows: usize,
}

impl PacketColumns {
    /// Empty columns for the projection and address format of `opts`, with room for `capacity`
    /// rows.
    pub fn new(opts: &SchemaOptions, capacity: usize) -> Self {
        let needs_decode = opts.columns.iter().any(|c| {
            !matches!(
                c,
                Column::FrameNumber
                    | Column::Ts
                    | Column::Caplen
                    | Column::Wirelen
                    | Column::InterfaceId
                    | Column::LinkType
                    | Column::Frame
            )
        });
        Self {
            schema: opts.schema(),
            order: opts.columns.clone(),
            columns: Accumulators::new(opts, capacity),
            cid_cache: CommunityIdCache::default(),
            needs_decode,
            rows: 0,
        }
    }

    /// The Arrow schema of the batches built.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Whether any projected column needs the frame decoded.
    pub fn needs_decode(&self) -> bool {
        self.needs_decode
    }

    /// Whether the opt-in `frame` column is projected (so `append` needs the captured bytes).
    pub fn keeps_frames(&self) -> bool {
        self.columns.frame.is_some()
    }

    /// Packets appended since the last batch was taken.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no packet was appended since the last batch was taken.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one packet: its record's metadata, its decoded headers and its captured bytes
    /// (kept only by the opt-in `frame` column).
    #[inline]
    pub fn append(&mut self, m: &RecordMeta, p: &Packet, data: &[u8]) {
        let i = self.rows % CHUNK;
        self.columns.put(i, m, p, data, &mut self.cid_cache);
        self.rows += 1;
        if i == CHUNK - 1 {
            self.columns.flush();
        }
    }

    /// Finishes the accumulated rows into a batch and starts a new, empty one.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        // Finish every column even if one fails, so the next batch starts from a clean state.
        let arrays: Vec<_> = self.order.iter().map(|&c| self.columns.finish(c, rows % CHUNK)).collect();
        let arrays = arrays.into_iter().collect::<Result<Vec<ArrayRef>, ArrowError>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)?)
    }
}
