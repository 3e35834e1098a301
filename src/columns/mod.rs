//! Arrow builders for the packet schema: one append per packet, one `RecordBatch` per batch.
//!
//! Each projected column gets a typed builder held in its own field, so appending a packet is
//! straight-line code with no per-column dispatch; unprojected columns cost one branch. The
//! decoder is skipped entirely when no projected column needs it (e.g. `columns=["ts", "caplen"]`).
//! Addresses are formatted straight into the builders' buffers ([`address`]), and Community IDs
//! come from a small per-reader flow cache ([`flow_cache`]), since packets of a flow arrive together.

mod address;
mod flow_cache;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, PrimitiveBuilder, StringBuilder, TimestampNanosecondBuilder, UInt16Builder,
    UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;

use crate::decode::community_id;
use crate::decode::Packet;
use crate::error::Result;
use crate::schema::{Column, SchemaOptions};
use crate::source::Record;
use address::{IpBuilder, MacBuilder};
use flow_cache::CommunityIdCache;

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

/// Appends an optional value to a builder.
trait Put<T> {
    fn put(&mut self, value: T);
}

impl<T: ArrowPrimitiveType> Put<Option<T::Native>> for PrimitiveBuilder<T> {
    #[inline]
    fn put(&mut self, value: Option<T::Native>) {
        self.append_option(value)
    }
}

impl Put<Option<bool>> for BooleanBuilder {
    #[inline]
    fn put(&mut self, value: Option<bool>) {
        self.append_option(value)
    }
}

impl<'a> Put<Option<&'a str>> for StringBuilder {
    #[inline]
    fn put(&mut self, value: Option<&'a str>) {
        self.append_option(value)
    }
}

/// Declares one typed builder field per column, with how to build it and what value to append.
macro_rules! builders {
    ($opts:ident, $n:ident, $m:ident, $p:ident, $cid:ident;
     $( $field:ident: $column:ident => $ty:ty = $new:expr, $value:expr; )*) => {
        #[derive(Default)]
        struct Builders { $( $field: Option<$ty>, )* }

        impl Builders {
            fn new($opts: &SchemaOptions, $n: usize) -> Self {
                let mut b = Builders::default();
                for c in &$opts.columns {
                    match c { $( Column::$column => b.$field = Some($new), )* }
                }
                b
            }

            #[inline]
            fn append(&mut self, $m: &RecordMeta, $p: &Packet, $cid: &mut CommunityIdCache) {
                $( if let Some(b) = &mut self.$field { b.put($value); } )*
            }

            fn finish(&mut self, c: Column) -> ArrayRef {
                match c { $( Column::$column => finish(&mut self.$field), )* }
            }
        }
    };
}

builders! { opts, n, m, p, cid;
    frame_number: FrameNumber => UInt64Builder = UInt64Builder::with_capacity(n), Some(m.frame_number);
    ts: Ts => TimestampNanosecondBuilder = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC"), m.ts_ns;
    caplen: Caplen => UInt32Builder = UInt32Builder::with_capacity(n), Some(m.caplen);
    wirelen: Wirelen => UInt32Builder = UInt32Builder::with_capacity(n), Some(m.wirelen);
    interface_id: InterfaceId => UInt32Builder = UInt32Builder::with_capacity(n), m.interface_id;
    link_type: LinkType => UInt16Builder = UInt16Builder::with_capacity(n), m.link_type;
    eth_src: EthSrc => MacBuilder = MacBuilder::new(opts.addresses, n), p.eth_src;
    eth_dst: EthDst => MacBuilder = MacBuilder::new(opts.addresses, n), p.eth_dst;
    ethertype: Ethertype => UInt16Builder = UInt16Builder::with_capacity(n), p.ethertype;
    vlan_id: VlanId => UInt16Builder = UInt16Builder::with_capacity(n), p.vlan_id;
    inner_vlan_id: InnerVlanId => UInt16Builder = UInt16Builder::with_capacity(n), p.inner_vlan_id;
    ip_version: IpVersion => UInt8Builder = UInt8Builder::with_capacity(n), p.ip_version;
    src_ip: SrcIp => IpBuilder = IpBuilder::new(opts.addresses, n), p.src_ip;
    dst_ip: DstIp => IpBuilder = IpBuilder::new(opts.addresses, n), p.dst_ip;
    ip_proto: IpProto => UInt8Builder = UInt8Builder::with_capacity(n), p.ip_proto;
    ttl: Ttl => UInt8Builder = UInt8Builder::with_capacity(n), p.ttl;
    ip_len: IpLen => UInt32Builder = UInt32Builder::with_capacity(n), p.ip_len;
    frag_offset: FragOffset => UInt16Builder = UInt16Builder::with_capacity(n), p.frag_offset;
    more_fragments: MoreFragments => BooleanBuilder = BooleanBuilder::with_capacity(n), p.more_fragments;
    src_port: SrcPort => UInt16Builder = UInt16Builder::with_capacity(n), p.src_port;
    dst_port: DstPort => UInt16Builder = UInt16Builder::with_capacity(n), p.dst_port;
    tcp_flags: TcpFlags => UInt16Builder = UInt16Builder::with_capacity(n), p.tcp_flags;
    tcp_seq: TcpSeq => UInt32Builder = UInt32Builder::with_capacity(n), p.tcp_seq;
    tcp_ack: TcpAck => UInt32Builder = UInt32Builder::with_capacity(n), p.tcp_ack;
    tcp_window: TcpWindow => UInt16Builder = UInt16Builder::with_capacity(n), p.tcp_window;
    icmp_type: IcmpType => UInt8Builder = UInt8Builder::with_capacity(n), p.icmp_type;
    icmp_code: IcmpCode => UInt8Builder = UInt8Builder::with_capacity(n), p.icmp_code;
    payload_len: PayloadLen => UInt32Builder = UInt32Builder::with_capacity(n), p.payload_len;
    community_id: CommunityId => StringBuilder = StringBuilder::with_capacity(n, n * community_id::LEN), cid.get(p);
    tunnel: Tunnel => StringBuilder = StringBuilder::with_capacity(n, n), p.tunnel.map(|t| t.as_str());
    outer_src_ip: OuterSrcIp => IpBuilder = IpBuilder::new(opts.addresses, n), p.outer_src_ip;
    outer_dst_ip: OuterDstIp => IpBuilder = IpBuilder::new(opts.addresses, n), p.outer_dst_ip;
    decode_status: DecodeStatus => StringBuilder = StringBuilder::with_capacity(n, n), p.status.as_deref();
}

/// Finishes a builder into an array (the address builders are enums over two builder types).
trait FinishArray {
    fn finish_array(&mut self) -> ArrayRef;
}

impl<B: ArrayBuilder> FinishArray for B {
    fn finish_array(&mut self) -> ArrayRef {
        self.finish()
    }
}

fn finish<B: FinishArray>(b: &mut Option<B>) -> ArrayRef {
    match b {
        Some(b) => b.finish_array(),
        // Builders::new creates a builder for every projected column, and only those are finished.
        None => unreachable!("finish called for a column without a builder"),
    }
}

/// Accumulates packets into the columns of one record batch.
pub struct PacketColumns {
    schema: SchemaRef,
    order: Vec<Column>,
    builders: Builders,
    cid_cache: CommunityIdCache,
    needs_decode: bool,
    rows: usize,
}

impl PacketColumns {
    pub fn new(opts: &SchemaOptions, capacity: usize) -> Self {
        let needs_decode = opts.columns.iter().any(|c| {
            !matches!(
                c,
                Column::FrameNumber | Column::Ts | Column::Caplen | Column::Wirelen | Column::InterfaceId | Column::LinkType
            )
        });
        Self {
            schema: opts.schema(),
            order: opts.columns.clone(),
            builders: Builders::new(opts, capacity),
            cid_cache: CommunityIdCache::default(),
            needs_decode,
            rows: 0,
        }
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
    #[inline]
    pub fn append(&mut self, m: &RecordMeta, p: &Packet) {
        self.rows += 1;
        self.builders.append(m, p, &mut self.cid_cache);
    }

    /// Finishes the accumulated rows into a batch and starts a new, empty one.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.order.iter().map(|&c| self.builders.finish(c)).collect();
        let rows = std::mem::take(&mut self.rows);
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)?)
    }
}

impl Put<Option<[u8; 6]>> for MacBuilder {
    #[inline]
    fn put(&mut self, value: Option<[u8; 6]>) {
        self.append(value)
    }
}

impl Put<Option<crate::decode::IpAddr>> for IpBuilder {
    #[inline]
    fn put(&mut self, value: Option<crate::decode::IpAddr>) {
        self.append(value)
    }
}
