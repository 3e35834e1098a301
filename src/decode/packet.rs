//! The decoded view of one frame: every header field the schema knows, each `None` until a
//! decoder layer finds it. Reset and reused for every packet, so decoding allocates nothing for
//! clean packets.

use std::borrow::Cow;

/// An IP address as raw network-order bytes (formatting happens only if a string column wants it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IpAddr {
    /// An IPv4 address.
    V4([u8; 4]),
    /// An IPv6 address.
    V6([u8; 16]),
}

impl IpAddr {
    /// The address bytes (4 or 16).
    pub fn octets(&self) -> &[u8] {
        match self {
            IpAddr::V4(a) => a,
            IpAddr::V6(a) => a,
        }
    }
}

impl std::fmt::Display for IpAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpAddr::V4(a) => std::net::Ipv4Addr::from(*a).fmt(f),
            IpAddr::V6(a) => std::net::Ipv6Addr::from(*a).fmt(f),
        }
    }
}

/// The outermost encapsulation a packet was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    /// IPv4 or IPv6 directly inside IPv4 or IPv6 (IP protocols 4 and 41).
    IpIp,
    /// Generic Routing Encapsulation (IP protocol 47), including PPTP's enhanced GRE and ERSPAN.
    Gre,
    /// VXLAN (UDP port 4789).
    Vxlan,
    /// Geneve (UDP port 6081).
    Geneve,
    /// GTP-U (UDP port 2152).
    Gtp,
    /// Teredo, IPv6 over UDP (port 3544).
    Teredo,
}

impl Tunnel {
    /// The value of the `tunnel` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::IpIp => "ipip",
            Tunnel::Gre => "gre",
            Tunnel::Vxlan => "vxlan",
            Tunnel::Geneve => "geneve",
            Tunnel::Gtp => "gtp",
            Tunnel::Teredo => "teredo",
        }
    }
}

/// Every decoded header field of one packet. `None` means the packet does not have the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packet {
    /// Source MAC of the outermost Ethernet header (for Linux cooked captures, the link-layer
    /// source when it is 6 bytes).
    pub eth_src: Option<[u8; 6]>,
    /// Destination MAC of the outermost Ethernet header.
    pub eth_dst: Option<[u8; 6]>,
    /// The payload's ethertype after any VLAN tags (or the cooked-capture protocol, or the LLC/SNAP
    /// type); `None` for 802.3 frames without SNAP.
    pub ethertype: Option<u16>,
    /// The outermost 802.1Q / 802.1ad VLAN id.
    pub vlan_id: Option<u16>,
    /// The second VLAN id (QinQ).
    pub inner_vlan_id: Option<u16>,
    /// 4 or 6.
    pub ip_version: Option<u8>,
    /// Source address of the (innermost) IP header.
    pub src_ip: Option<IpAddr>,
    /// Destination address of the (innermost) IP header.
    pub dst_ip: Option<IpAddr>,
    /// The IPv4 protocol, or IPv6's final next header after the extension headers.
    pub ip_proto: Option<u8>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: Option<u8>,
    /// The IPv4 total length, or 40 + the IPv6 payload length.
    pub ip_len: Option<u32>,
    /// Fragment offset in bytes; IPv4 always, IPv6 only with a fragment header.
    pub frag_offset: Option<u16>,
    /// The more-fragments flag (present when `frag_offset` is).
    pub more_fragments: Option<bool>,
    /// TCP, UDP, UDP-Lite or SCTP source port; `None` for non-first fragments.
    pub src_port: Option<u16>,
    /// TCP, UDP, UDP-Lite or SCTP destination port; `None` for non-first fragments.
    pub dst_port: Option<u16>,
    /// The 12 flag bits of TCP bytes 12-13 (as tshark's `tcp.flags`).
    pub tcp_flags: Option<u16>,
    /// Raw TCP sequence number (not relative).
    pub tcp_seq: Option<u32>,
    /// Raw TCP acknowledgement number.
    pub tcp_ack: Option<u32>,
    /// Raw TCP window field (unscaled).
    pub tcp_window: Option<u16>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP or ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// Bytes after the transport header as the headers declare them, whatever the snap length.
    pub payload_len: Option<u32>,
    /// The outermost encapsulation; `None` when not tunnelled.
    pub tunnel: Option<Tunnel>,
    /// Source address of the outermost IP header of a tunnelled packet.
    pub outer_src_ip: Option<IpAddr>,
    /// Destination address of the outermost IP header of a tunnelled packet.
    pub outer_dst_ip: Option<IpAddr>,
    /// `None` for a clean packet, else `"<layer>: <reason>"`. The first problem found wins.
    pub status: Option<Cow<'static, str>>,
}

impl Packet {
    /// Records a decode problem; the first one found is kept (later layers only echo it).
    pub fn fail(&mut self, status: impl Into<Cow<'static, str>>) {
        if self.status.is_none() {
            self.status = Some(status.into());
        }
    }

    /// Clears the network and transport fields, for entering a tunnel's inner packet.
    pub(crate) fn clear_network(&mut self) {
        self.ip_version = None;
        self.src_ip = None;
        self.dst_ip = None;
        self.ip_proto = None;
        self.ttl = None;
        self.ip_len = None;
        self.frag_offset = None;
        self.more_fragments = None;
        self.src_port = None;
        self.dst_port = None;
        self.tcp_flags = None;
        self.tcp_seq = None;
        self.tcp_ack = None;
        self.tcp_window = None;
        self.icmp_type = None;
        self.icmp_code = None;
        self.payload_len = None;
    }
}
