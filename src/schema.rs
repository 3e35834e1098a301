//! The packet schema, defined once.
//!
//! Every source (files, live capture, Kafka `raw` topics) produces exactly these columns, in this
//! order, so a table read from a file and one consumed from Kafka concatenate without casts. The
//! README documents each column; the names and types here are the single source of truth.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};

/// How addresses are stored: readable strings (the default) or compact binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFormat {
    /// `"192.0.2.1"`, `"2001:db8::1"`, `"aa:bb:cc:dd:ee:ff"`.
    #[default]
    String,
    /// IP addresses as 4- or 16-byte `binary`, MACs as `fixed_size_binary(6)`.
    Binary,
}

impl std::str::FromStr for AddressFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "string" => Ok(Self::String),
            "binary" => Ok(Self::Binary),
            other => Err(Error::InvalidArgument(format!("addresses must be \"string\" or \"binary\", not {other:?}"))),
        }
    }
}

/// What kind of value a column holds; `Ip` and `Mac` follow [`AddressFormat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nanoseconds since the Unix epoch, UTC.
    Timestamp,
    /// An unsigned 8-bit integer.
    U8,
    /// An unsigned 16-bit integer.
    U16,
    /// An unsigned 32-bit integer.
    U32,
    /// An unsigned 64-bit integer.
    U64,
    /// A boolean.
    Bool,
    /// A UTF-8 string.
    Str,
    /// Raw bytes.
    Binary,
    /// An IP address: text or 4/16 bytes.
    Ip,
    /// A MAC address: text or 6 bytes.
    Mac,
}

macro_rules! columns {
    ($($(#[$doc:meta])* $variant:ident => $name:literal : $kind:ident),* $(,)?;
     opt_in: $($(#[$odoc:meta])* $ovariant:ident => $oname:literal : $okind:ident),* $(,)?) => {
        /// One column of the packet schema.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Column { $($(#[$doc])* $variant,)* $($(#[$odoc])* $ovariant),* }

        impl Column {
            /// Every column of the default schema, in schema order.
            pub const ALL: &'static [Column] = &[$(Column::$variant),*];

            /// The columns produced only when a projection names them (after the default ones).
            pub const OPT_IN: &'static [Column] = &[$(Column::$ovariant),*];

            /// The column's name in the schema.
            pub fn name(self) -> &'static str {
                match self { $(Column::$variant => $name,)* $(Column::$ovariant => $oname),* }
            }

            /// The column's value kind.
            pub fn kind(self) -> Kind {
                match self { $(Column::$variant => Kind::$kind,)* $(Column::$ovariant => Kind::$okind),* }
            }
        }
    };
}

columns! {
    /// 1-based position of the record in the input (tshark's `frame.number`).
    FrameNumber => "frame_number": U64,
    /// Capture time, nanoseconds since the Unix epoch, UTC; null only for pcapng simple packet
    /// blocks.
    Ts => "ts": Timestamp,
    /// Bytes captured.
    Caplen => "caplen": U32,
    /// Bytes on the wire.
    Wirelen => "wirelen": U32,
    /// pcapng interface index; null for classic pcap.
    InterfaceId => "interface_id": U32,
    /// The LINKTYPE_ value; null for a record naming an undescribed pcapng interface.
    LinkType => "link_type": U16,
    /// Source MAC of the outermost Ethernet header.
    EthSrc => "eth_src": Mac,
    /// Destination MAC of the outermost Ethernet header.
    EthDst => "eth_dst": Mac,
    /// The payload's ethertype after any VLAN tags.
    Ethertype => "ethertype": U16,
    /// The outermost 802.1Q / 802.1ad VLAN id.
    VlanId => "vlan_id": U16,
    /// The second VLAN id (QinQ).
    InnerVlanId => "inner_vlan_id": U16,
    /// 4 or 6.
    IpVersion => "ip_version": U8,
    /// Source IP address (of the inner packet when tunnelled).
    SrcIp => "src_ip": Ip,
    /// Destination IP address (of the inner packet when tunnelled).
    DstIp => "dst_ip": Ip,
    /// The IPv4 protocol, or IPv6's final next header after the extension headers.
    IpProto => "ip_proto": U8,
    /// IPv4 TTL or IPv6 hop limit.
    Ttl => "ttl": U8,
    /// The IPv4 total length, or 40 + the IPv6 payload length.
    IpLen => "ip_len": U32,
    /// Fragment offset in bytes (IPv4 always; IPv6 only with a fragment header).
    FragOffset => "frag_offset": U16,
    /// The more-fragments flag (present when `frag_offset` is).
    MoreFragments => "more_fragments": Bool,
    /// TCP, UDP, UDP-Lite or SCTP source port; null for non-first fragments.
    SrcPort => "src_port": U16,
    /// TCP, UDP, UDP-Lite or SCTP destination port; null for non-first fragments.
    DstPort => "dst_port": U16,
    /// The 12 flag bits of TCP bytes 12-13 (as tshark's `tcp.flags`).
    TcpFlags => "tcp_flags": U16,
    /// Raw TCP sequence number (not relative).
    TcpSeq => "tcp_seq": U32,
    /// Raw TCP acknowledgement number.
    TcpAck => "tcp_ack": U32,
    /// Raw TCP window field (unscaled).
    TcpWindow => "tcp_window": U16,
    /// ICMP or ICMPv6 type.
    IcmpType => "icmp_type": U8,
    /// ICMP or ICMPv6 code.
    IcmpCode => "icmp_code": U8,
    /// Bytes after the transport header as the headers declare them, whatever the snap length.
    PayloadLen => "payload_len": U32,
    /// The Community ID v1 flow hash (seed 0); null without IP, or for TCP/UDP/SCTP without ports.
    CommunityId => "community_id": Str,
    /// The outermost encapsulation (`ipip`, `gre`, `vxlan`, ...); null when not tunnelled.
    Tunnel => "tunnel": Str,
    /// Source address of the outermost IP header of a tunnelled packet.
    OuterSrcIp => "outer_src_ip": Ip,
    /// Destination address of the outermost IP header of a tunnelled packet.
    OuterDstIp => "outer_dst_ip": Ip,
    /// Null for a cleanly decoded packet, else `"<layer>: <reason>"`.
    DecodeStatus => "decode_status": Str;
opt_in:
    /// The captured bytes of the frame (`caplen` of them), for writing filtered rows back to a
    /// capture file ([`crate::sink::pcap`]) or parsing what the schema does not cover. Opt-in: it
    /// is as big as the capture, so only a projection that names it gets it.
    Frame => "frame": Binary,
}

impl Column {
    /// Looks a column up by name.
    pub fn from_name(name: &str) -> Result<Column> {
        let every = || Column::ALL.iter().chain(Column::OPT_IN).copied();
        every().find(|c| c.name() == name).ok_or_else(|| {
            let known: Vec<&str> = every().map(|c| c.name()).collect();
            Error::InvalidArgument(format!("unknown column {name:?}; the packet schema has: {}", known.join(", ")))
        })
    }

    /// The Arrow type of the column under an address format.
    pub fn data_type(self, addresses: AddressFormat) -> DataType {
        match (self.kind(), addresses) {
            (Kind::Timestamp, _) => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            (Kind::U8, _) => DataType::UInt8,
            (Kind::U16, _) => DataType::UInt16,
            (Kind::U32, _) => DataType::UInt32,
            (Kind::U64, _) => DataType::UInt64,
            (Kind::Bool, _) => DataType::Boolean,
            (Kind::Str, _) => DataType::Utf8,
            (Kind::Binary, _) => DataType::Binary,
            (Kind::Ip | Kind::Mac, AddressFormat::String) => DataType::Utf8,
            (Kind::Ip, AddressFormat::Binary) => DataType::Binary,
            (Kind::Mac, AddressFormat::Binary) => DataType::FixedSizeBinary(6),
        }
    }

    /// The Arrow field (every column is nullable: absent fields are null, never zero).
    pub fn field(self, addresses: AddressFormat) -> Field {
        Field::new(self.name(), self.data_type(addresses), true)
    }
}

/// Which columns to produce and how: the projection and the address format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaOptions {
    /// The columns to produce, in output order.
    pub columns: Vec<Column>,
    /// How IP and MAC addresses are written.
    pub addresses: AddressFormat,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        Self { columns: Column::ALL.to_vec(), addresses: AddressFormat::String }
    }
}

impl SchemaOptions {
    /// Options for a projection given by column names (`None`: every column), in the given order.
    pub fn new(columns: Option<&[String]>, addresses: AddressFormat) -> Result<Self> {
        let columns = match columns {
            None => Column::ALL.to_vec(),
            Some(names) => {
                let mut out = Vec::with_capacity(names.len());
                for name in names {
                    let c = Column::from_name(name)?;
                    if out.contains(&c) {
                        return Err(Error::InvalidArgument(format!("column {name:?} is listed twice")));
                    }
                    out.push(c);
                }
                out
            }
        };
        Ok(Self { columns, addresses })
    }

    /// The Arrow schema of these options.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.columns.iter().map(|c| c.field(self.addresses)).collect::<Vec<_>>()))
    }
}

/// The full packet schema with string addresses.
pub fn packet_schema() -> SchemaRef {
    SchemaOptions::default().schema()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for c in Column::ALL.iter().chain(Column::OPT_IN) {
            assert_eq!(Column::from_name(c.name()).unwrap(), *c);
        }
        let schema = packet_schema();
        assert_eq!(schema.fields().len(), Column::ALL.len());
        assert_eq!(schema.field(1).name(), "ts");
    }

    #[test]
    fn the_frame_column_is_opt_in() {
        assert!(packet_schema().field_with_name("frame").is_err());
        let opts = SchemaOptions::new(Some(&["ts".into(), "frame".into()]), AddressFormat::String).unwrap();
        assert_eq!(opts.schema().field(1).data_type(), &DataType::Binary);
    }

    #[test]
    fn projection_keeps_order_and_rejects_unknown_or_repeated() {
        let opts = SchemaOptions::new(Some(&["dst_port".into(), "ts".into()]), AddressFormat::Binary).unwrap();
        assert_eq!(opts.columns, vec![Column::DstPort, Column::Ts]);
        assert!(SchemaOptions::new(Some(&["nope".into()]), AddressFormat::String).is_err());
        assert!(SchemaOptions::new(Some(&["ts".into(), "ts".into()]), AddressFormat::String).is_err());
    }

    #[test]
    fn binary_addresses_change_types() {
        assert_eq!(Column::SrcIp.data_type(AddressFormat::Binary), DataType::Binary);
        assert_eq!(Column::EthSrc.data_type(AddressFormat::Binary), DataType::FixedSizeBinary(6));
        assert_eq!(Column::SrcIp.data_type(AddressFormat::String), DataType::Utf8);
    }
}
