//! etherparse 0.21's lax slicing (`LaxSlicedPacket::from_ethernet`) read into [`Packet`] fields,
//! and the comparison with the hand-written decoder: the differential oracle of the decode
//! property tests and of the `decode_frame` fuzz target (which includes this file by path, so it
//! names only `super::{IpAddr, Packet}` and etherparse). It is also the "etherparse into the same
//! fields" side of the speed measurement in the module docs of `src/decode/mod.rs`.
//!
//! Where the two decoders may legitimately differ, [`differences`] says why; every rule is one of
//! these (and each is a deliberate choice of the hand-written decoder, mostly to agree with tshark):
//!
//! - **tunnels**: we descend into IP-in-IP, GRE, VXLAN, Geneve, GTP-U and Teredo and report the
//!   inner packet (outer addresses in `outer_*`); etherparse stops at the outer transport.
//! - **shims etherparse does not cross**: 802.3 LLC/SNAP, MPLS, PPPoE and the 0x9200/0x9300 tag
//!   protocol ids (we follow them), MACsec and ARP (etherparse follows them; we have no fields).
//! - **VLAN depth**: etherparse keeps at most 3 link extensions; we follow any number of tags
//!   (and report the first two).
//! - **first fragments**: we read the transport header of a first fragment (offset 0, MF set) as
//!   tshark does; etherparse treats any fragmented payload as opaque.
//! - **non-first IPv6 fragments**: what follows their fragment header is fragment data; we report
//!   the fragment header's next header (as tshark does), etherparse parses the data as further
//!   extension headers.
//! - **IPv4 AH**: etherparse looks through an authentication header to the next protocol; we
//!   report protocol 51 as tshark's `ip.proto` does. IPv6 mobility/HIP/shim6 headers (135, 139,
//!   140) we skip as extension headers; etherparse sees them as the payload protocol.
//! - **SCTP and UDP-Lite** ports: etherparse has no slicer for them.
//! - **TCP reserved flag bits** (the 3 bits above NS): etherparse does not expose them, so flags
//!   are compared on their low 9 bits.
//! - **IPv6 extension-header order**: etherparse stops at a hop-by-hop header that is not first
//!   (RFC 8200 4.1) or at a malformed extension header; we walk any chain of up to 16 headers as
//!   tshark does, so the fragment fields, the protocol after the chain and the transport may
//!   differ there.
//! - **IPv6 chains longer than 16 headers**: we stop after 16 (a bound on the work a hostile
//!   packet can ask for) and report the 17th header's type as the protocol; etherparse walks on.
//!   The fuzzer found this with 17 authentication headers (see the regression input).
//! - **presence**: when one side reports a problem (our `status`, etherparse's `stop_err` or a
//!   refused Ethernet header), the other may read fewer or more fields (we keep what a short
//!   capture holds; etherparse validates whole headers, incl. IPv6 extension-header order). Values
//!   present on both sides must still agree.

use super::{IpAddr, Packet};
use etherparse::err::Layer;
use etherparse::{LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket, LenSource, LinkSlice, TransportSlice};

/// What etherparse made of an Ethernet frame.
#[derive(Debug, Default)]
pub struct Theirs {
    /// The same fields as ours, `None` where etherparse does not report them.
    pub p: Packet,
    /// etherparse stopped on an error (or refused the Ethernet header).
    pub stopped: bool,
    /// Link extensions: (VLAN tags, MACsec present).
    pub tags: usize,
    pub macsec: bool,
    pub arp: bool,
    /// The IP payload is fragmented (etherparse does not slice its transport).
    pub fragmented: bool,
    /// IPv4 authentication header looked through.
    pub ipv4_auth: bool,
    /// etherparse stopped inside the IPv6 extension-header chain (or an IPv4 AH).
    pub stopped_in_exts: bool,
}

/// Decodes an Ethernet frame with etherparse into `out.p` (reset first).
pub fn etherparse_ethernet(frame: &[u8], out: &mut Theirs) {
    *out = Theirs::default();
    let Ok(s) = LaxSlicedPacket::from_ethernet(frame) else {
        out.stopped = true;
        return;
    };
    fill(&s, out);
}

fn fill(s: &LaxSlicedPacket<'_>, out: &mut Theirs) {
    let p = &mut out.p;
    out.stopped = s.stop_err.is_some();
    out.stopped_in_exts = matches!(
        s.stop_err.as_ref().map(|(_, layer)| *layer),
        Some(
            Layer::Ipv6ExtHeader
                | Layer::Ipv6HopByHopHeader
                | Layer::Ipv6DestOptionsHeader
                | Layer::Ipv6RouteHeader
                | Layer::Ipv6FragHeader
                | Layer::IpAuthHeader
        )
    );
    let mut ethertype = None;
    if let Some(LinkSlice::Ethernet2(e)) = &s.link {
        p.eth_src = Some(e.source());
        p.eth_dst = Some(e.destination());
        ethertype = Some(e.ether_type().0);
    }
    for ext in &s.link_exts {
        match ext {
            LaxLinkExtSlice::Vlan(v) => {
                match out.tags {
                    0 => p.vlan_id = Some(v.vlan_identifier().value()),
                    1 => p.inner_vlan_id = Some(v.vlan_identifier().value()),
                    _ => {}
                }
                out.tags += 1;
                ethertype = Some(v.ether_type().0);
            }
            LaxLinkExtSlice::Macsec(_) => out.macsec = true,
        }
    }
    p.ethertype = ethertype;
    let declared = match &s.net {
        Some(LaxNetSlice::Ipv4(ip)) => {
            let h = ip.header();
            p.ip_version = Some(4);
            p.src_ip = Some(IpAddr::V4(h.source()));
            p.dst_ip = Some(IpAddr::V4(h.destination()));
            p.ttl = Some(h.ttl());
            p.ip_len = Some(u32::from(h.total_len()));
            p.frag_offset = Some(h.fragments_offset().value() * 8);
            p.more_fragments = Some(h.more_fragments());
            out.ipv4_auth = ip.extensions().auth.is_some();
            p.ip_proto = Some(if out.ipv4_auth { 51 } else { ip.payload().ip_number.0 });
            out.fragmented = ip.payload().fragmented;
            let pl = ip.payload();
            (pl.len_source != LenSource::Slice && !pl.incomplete).then_some(pl.payload.len() as u32)
        }
        Some(LaxNetSlice::Ipv6(ip)) => {
            let h = ip.header();
            p.ip_version = Some(6);
            p.src_ip = Some(IpAddr::V6(h.source()));
            p.dst_ip = Some(IpAddr::V6(h.destination()));
            p.ttl = Some(h.hop_limit());
            p.ip_len = Some(40 + u32::from(h.payload_length()));
            // Not `ip.extensions().into_iter()`: in 0.21 that iterator reads past the end of the
            // extension slice (an unchecked index, undefined behaviour) when lax parsing stopped
            // at an extension header named by the previous one (e.g. a second hop-by-hop header).
            // Walk the chain with etherparse's checked slicers instead.
            if let Some(first) = ip.extensions().first_header() {
                let (mut next, mut rest) = (first.0, ip.extensions().slice());
                loop {
                    let (len, following) = match next {
                        44 => match etherparse::Ipv6FragmentHeaderSlice::from_slice(rest) {
                            // Of several fragment headers the last counts, up to one of a
                            // non-first fragment, after which come data (see the rules above).
                            Ok(f) if matches!(p.frag_offset, None | Some(0)) => {
                                p.frag_offset = Some(f.fragment_offset().value() * 8);
                                p.more_fragments = Some(f.more_fragments());
                                (f.slice().len(), f.next_header().0)
                            }
                            Ok(f) => (f.slice().len(), f.next_header().0),
                            Err(_) => break,
                        },
                        51 => match etherparse::IpAuthHeaderSlice::from_slice(rest) {
                            Ok(a) => (a.slice().len(), a.next_header().0),
                            Err(_) => break,
                        },
                        0 | 43 | 60 => match etherparse::Ipv6RawExtHeaderSlice::from_slice(rest) {
                            Ok(h) => (h.slice().len(), h.next_header().0),
                            Err(_) => break,
                        },
                        _ => break,
                    };
                    next = following;
                    rest = &rest[len..];
                }
            }
            p.ip_proto = Some(ip.payload().ip_number.0);
            out.fragmented = ip.payload().fragmented;
            let pl = ip.payload();
            (pl.len_source != LenSource::Slice && !pl.incomplete).then_some(pl.payload.len() as u32)
        }
        Some(LaxNetSlice::Arp(_)) => {
            out.arp = true;
            None
        }
        None => None,
    };
    match &s.transport {
        Some(TransportSlice::Tcp(t)) => {
            p.src_port = Some(t.source_port());
            p.dst_port = Some(t.destination_port());
            p.tcp_seq = Some(t.sequence_number());
            p.tcp_ack = Some(t.acknowledgment_number());
            p.tcp_window = Some(t.window_size());
            let bits = [t.fin(), t.syn(), t.rst(), t.psh(), t.ack(), t.urg(), t.ece(), t.cwr(), t.ns()];
            p.tcp_flags = Some(bits.iter().enumerate().map(|(i, &b)| u16::from(b) << i).sum());
            p.payload_len = declared.map(|d| d.saturating_sub(u32::from(t.data_offset()) * 4));
        }
        Some(TransportSlice::Udp(u)) => {
            p.src_port = Some(u.source_port());
            p.dst_port = Some(u.destination_port());
            let len = u32::from(u.length());
            p.payload_len = if len >= 8 { Some(len - 8) } else { declared.map(|d| d.saturating_sub(8)) };
        }
        Some(TransportSlice::Icmpv4(i)) => {
            p.icmp_type = Some(i.type_u8());
            p.icmp_code = Some(i.code_u8());
            p.payload_len = declared.map(|d| d.saturating_sub(8));
        }
        Some(TransportSlice::Icmpv6(i)) => {
            p.icmp_type = Some(i.type_u8());
            p.icmp_code = Some(i.code_u8());
            p.payload_len = declared.map(|d| d.saturating_sub(8));
        }
        Some(TransportSlice::Igmp(_)) | None => {}
    }
}

/// The fields on which `ours` (the hand-written decoder, link type Ethernet) and `theirs`
/// disagree without one of the documented reasons; empty when they agree.
pub fn differences(ours: &Packet, theirs: &Theirs) -> Vec<String> {
    let t = &theirs.p;
    let mut diffs = Vec::new();
    let either_stopped = theirs.stopped || ours.status.is_some();
    macro_rules! cmp {
        ($field:ident) => {
            cmp!($field, |v| v)
        };
        ($field:ident, $map:expr) => {{
            let (a, b) = (ours.$field.map($map), t.$field.map($map));
            let differ = match (a, b) {
                (Some(x), Some(y)) => x != y,
                (None, None) => false,
                _ => !either_stopped,
            };
            if differ {
                diffs.push(format!("{}: ours {:?}, etherparse {:?}", stringify!($field), ours.$field, t.$field));
            }
        }};
    }
    // Link layer: always comparable.
    cmp!(eth_src);
    cmp!(eth_dst);
    // A VLAN TPID left as the ethertype: etherparse reads two tags at most and stops at a third
    // (the fuzzer found 0x9100 there); we read up to three.
    let shim =
        matches!(t.ethertype, Some(0..=1500 | 0x8100 | 0x88a8 | 0x8847 | 0x8848 | 0x8864 | 0x9100 | 0x9200 | 0x9300));
    if theirs.tags > 3 || shim || theirs.macsec {
        return diffs;
    }
    cmp!(vlan_id);
    cmp!(inner_vlan_id);
    cmp!(ethertype);
    if ours.tunnel.is_some() {
        // Our network fields are the inner packet's; etherparse's are the outer ones.
        if let (Some(o), Some(t)) = (ours.outer_src_ip, t.src_ip) {
            if o != t {
                diffs.push(format!("outer_src_ip: ours {o:?}, etherparse {t:?}"));
            }
        }
        return diffs;
    }
    if theirs.arp {
        return diffs;
    }
    cmp!(ip_version);
    cmp!(src_ip);
    cmp!(dst_ip);
    cmp!(ttl);
    cmp!(ip_len);
    // Documented: IPv4 AH; IPv6 headers 135/139/140 (we skip them, etherparse stops there, so a
    // fragment header after one is ours alone: the fuzzer found that, see the regression input).
    let v6_ext_skipped = t.ip_version == Some(6) && matches!(t.ip_proto, Some(135 | 139 | 140));
    // Documented: we stop after 16 extension headers, so a cleanly decoded packet whose protocol
    // is itself an extension header is a chain we cut; etherparse walks further.
    let v6_chain_cut = ours.ip_version == Some(6)
        && ours.status.is_none()
        && matches!(ours.ip_proto, Some(0 | 43 | 44 | 51 | 60))
        && ours.frag_offset.is_none_or(|o| o == 0);
    if !(t.ip_version == Some(6) && (theirs.stopped_in_exts || v6_ext_skipped || v6_chain_cut)) {
        cmp!(frag_offset);
        cmp!(more_fragments);
    }
    // Documented: after the fragment header of a non-first IPv6 fragment come fragment data,
    // which etherparse still parses as extension headers.
    let v6_later_fragment = t.ip_version == Some(6) && matches!(ours.frag_offset, Some(1..));
    if theirs.ipv4_auth || v6_ext_skipped || theirs.stopped_in_exts || v6_later_fragment || v6_chain_cut {
        return diffs;
    }
    cmp!(ip_proto);
    // Documented: first fragments (we read their transport header), SCTP and UDP-Lite.
    if theirs.fragmented || matches!(ours.ip_proto, Some(132 | 136)) {
        return diffs;
    }
    cmp!(src_port);
    cmp!(dst_port);
    cmp!(tcp_seq);
    cmp!(tcp_ack);
    cmp!(tcp_window);
    cmp!(tcp_flags, |f| f & 0x1ff);
    cmp!(icmp_type);
    cmp!(icmp_code);
    // etherparse's lengths are known only for complete packets: compare where it has one.
    if t.payload_len.is_some() {
        cmp!(payload_len);
    }
    diffs
}
