//! The undirected flow key. Both directions of a conversation must land on one entry, so the
//! key stores the two endpoints in a canonical order (the smaller `(address, port)` first) and
//! the caller learns which way the packet went.

use crate::decode::{IpAddr, Packet, Tunnel};

/// What identifies a flow: IP version, both endpoints (canonical order), IP protocol, VLAN and
/// tunnel type. IPv4 addresses sit in the first 4 bytes of the 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// The smaller endpoint's address (IPv4 in the first 4 bytes, the rest zero).
    pub lo_ip: [u8; 16],
    /// The larger endpoint's address (IPv4 in the first 4 bytes, the rest zero).
    pub hi_ip: [u8; 16],
    /// The smaller endpoint's port; 0 for protocols without ports.
    pub lo_port: u16,
    /// The larger endpoint's port; 0 for protocols without ports.
    pub hi_port: u16,
    /// The innermost 802.1Q VLAN id; 0 without a tag.
    pub vlan_id: u16,
    /// The IPv4 protocol or IPv6 final next header.
    pub ip_proto: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// 0 for none, else 1 + the [`Tunnel`] variant's index.
    pub tunnel: u8,
}

/// Why a packet has no flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFlow {
    /// No IP layer (ARP, LLDP, ...), or one too short to hold both addresses.
    NotIp,
    /// A non-first IP fragment: it has no transport header, so no ports.
    Fragment,
}

/// Protocols whose first four transport bytes are the two ports.
pub(crate) fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132 | 136)
}

fn bytes16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => {
            let mut out = [0; 16];
            out[..4].copy_from_slice(&a);
            out
        }
    }
}

pub(crate) fn tunnel_code(t: Option<Tunnel>) -> u8 {
    match t {
        None => 0,
        Some(Tunnel::IpIp) => 1,
        Some(Tunnel::Gre) => 2,
        Some(Tunnel::Vxlan) => 3,
        Some(Tunnel::Geneve) => 4,
        Some(Tunnel::Gtp) => 5,
        Some(Tunnel::Teredo) => 6,
    }
}

pub(crate) fn tunnel_name(code: u8) -> Option<&'static str> {
    let t = match code {
        1 => Tunnel::IpIp,
        2 => Tunnel::Gre,
        3 => Tunnel::Vxlan,
        4 => Tunnel::Geneve,
        5 => Tunnel::Gtp,
        6 => Tunnel::Teredo,
        _ => return None,
    };
    Some(t.as_str())
}

impl std::hash::Hash for FlowKey {
    /// Five words, no length prefixes: the key is fixed-size.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let word = |b: &[u8; 16], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        state.write_u64(word(&self.lo_ip, 0));
        state.write_u64(word(&self.lo_ip, 8));
        state.write_u64(word(&self.hi_ip, 0));
        state.write_u64(word(&self.hi_ip, 8));
        state.write_u64(
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.vlan_id) << 32
                | u64::from(self.ip_proto) << 48
                | u64::from(self.ip_version & 0xf) << 56
                | u64::from(self.tunnel & 0xf) << 60,
        );
    }
}

impl FlowKey {
    /// The packet's key and whether it travels from the key's `lo` endpoint to its `hi` one.
    ///
    /// Ports are those of TCP, UDP, UDP-Lite and SCTP; every other protocol (ICMP included, as in
    /// NFStream) has ports 0, so all its packets between two hosts form one flow. The VLAN is the
    /// innermost 802.1Q tag (NFStream keeps the last tag it walks through).
    pub fn from_packet(p: &Packet) -> Result<(FlowKey, bool), NoFlow> {
        let (Some(src), Some(dst), Some(proto), Some(version)) = (p.src_ip, p.dst_ip, p.ip_proto, p.ip_version) else {
            return Err(NoFlow::NotIp);
        };
        if p.frag_offset.is_some_and(|o| o != 0) {
            return Err(NoFlow::Fragment);
        }
        let (sp, dp) = if has_ports(proto) { (p.src_port.unwrap_or(0), p.dst_port.unwrap_or(0)) } else { (0, 0) };
        let (s, d) = (bytes16(src), bytes16(dst));
        let forward = (s, sp) <= (d, dp);
        let (lo_ip, lo_port, hi_ip, hi_port) = if forward { (s, sp, d, dp) } else { (d, dp, s, sp) };
        let key = FlowKey {
            lo_ip,
            hi_ip,
            lo_port,
            hi_port,
            vlan_id: p.inner_vlan_id.or(p.vlan_id).unwrap_or(0),
            ip_proto: proto,
            ip_version: version,
            tunnel: tunnel_code(p.tunnel),
        };
        Ok((key, forward))
    }

    /// One endpoint's address as the decoder's type.
    pub fn ip(&self, lo: bool) -> IpAddr {
        let b = if lo { self.lo_ip } else { self.hi_ip };
        if self.ip_version == 4 {
            IpAddr::V4([b[0], b[1], b[2], b[3]])
        } else {
            IpAddr::V6(b)
        }
    }
}

/// FxHash-style hasher for the flow table, with a final avalanche: the key is fixed-size, and
/// SipHash would cost more than the rest of a lookup.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let mut tail = 0u64;
        for (i, b) in chunks.remainder().iter().enumerate() {
            tail |= u64::from(*b) << (8 * i);
        }
        self.write_u64(tail);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // The multiply only carries entropy upwards; hashbrown indexes buckets with the low bits
        // (and takes its tag from the top ones), so finish with a full avalanche (murmur3's).
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

pub(crate) type FxBuild = std::hash::BuildHasherDefault<FxHasher>;
