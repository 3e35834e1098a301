//! Encapsulations decoded down to the inner packet: IP-in-IP, GRE (with PPTP's enhanced GRE and
//! ERSPAN), VXLAN, Geneve, GTP-U, Teredo; plus the label and session shims MPLS and PPPoE, which carry the
//! packet's only IP header and so are not tunnels.
//!
//! Entering a tunnel keeps the outermost IP addresses in `outer_src_ip`/`outer_dst_ip` and the
//! outermost kind in `tunnel`; every network and transport column then describes the inner packet.

use super::wire::be16;
use super::{ip, link, Packet, Tunnel, MAX_DEPTH};

/// Starts decoding an inner packet. Returns false when nesting is too deep.
fn enter(p: &mut Packet, kind: Tunnel, depth: u8) -> bool {
    if depth + 1 >= MAX_DEPTH {
        p.fail("tunnel: nesting too deep");
        return false;
    }
    if p.tunnel.is_none() {
        p.tunnel = Some(kind);
        p.outer_src_ip = p.src_ip;
        p.outer_dst_ip = p.dst_ip;
    }
    p.clear_network();
    true
}

pub(crate) fn ip_in_ip(proto: u8, seg: &[u8], declared: u32, p: &mut Packet, depth: u8) {
    if seg.is_empty() {
        p.payload_len = Some(declared);
        return;
    }
    if enter(p, Tunnel::IpIp, depth) {
        if proto == 4 {
            ip::ipv4(seg, p, depth + 1)
        } else {
            ip::ipv6(seg, p, depth + 1)
        }
    }
}

pub(crate) fn gre(seg: &[u8], declared: u32, p: &mut Packet, depth: u8) {
    p.payload_len = Some(declared);
    if seg.len() < 4 {
        p.fail("gre: truncated header");
        return;
    }
    let flags = be16(seg, 0);
    let protocol = be16(seg, 2);
    let mut len = 4;
    match flags & 0x7 {
        0 => {
            if flags & 0x4000 != 0 {
                return; // source routing (RFC 1701): obsolete, not followed
            }
            len += 4 * usize::from(flags & 0x8000 != 0)
                + 4 * usize::from(flags & 0x2000 != 0)
                + 4 * usize::from(flags & 0x1000 != 0);
        }
        // Enhanced GRE (PPTP, RFC 2637): key always present, then sequence and ack numbers.
        1 => len += 4 + 4 * usize::from(flags & 0x1000 != 0) + 4 * usize::from(flags & 0x0080 != 0),
        _ => return,
    }
    if seg.len() < len {
        p.fail("gre: truncated header");
        return;
    }
    let inner = &seg[len..];
    if inner.is_empty() {
        return; // keepalive or PPTP acknowledgement without payload
    }
    match protocol {
        // (`enter` is false when nesting is too deep; it has then recorded the status.)
        0x0800 | 0x86dd | 0x8847 | 0x8848 if enter(p, Tunnel::Gre, depth) => {
            link::network(protocol, inner, p, depth + 1);
        }
        0x6558 if enter(p, Tunnel::Gre, depth) => link::ethernet(inner, p, depth + 1),
        // ERSPAN type II (8-byte header; type I, without the sequence bit, has none).
        0x88be => {
            let skip = if flags & 0x1000 != 0 { 8 } else { 0 };
            if inner.len() >= skip && enter(p, Tunnel::Gre, depth) {
                link::ethernet(&inner[skip..], p, depth + 1);
            }
        }
        // ERSPAN type III: 12-byte header plus an 8-byte platform sub-header when O is set.
        0x22eb => {
            if inner.len() < 12 {
                p.fail("erspan: truncated header");
                return;
            }
            let skip = if inner[11] & 0x1 != 0 { 20 } else { 12 };
            if inner.len() >= skip && enter(p, Tunnel::Gre, depth) {
                link::ethernet(&inner[skip..], p, depth + 1);
            }
        }
        0x880b => {
            if let Some((ppp_proto, body)) = ppp(inner) {
                if matches!(ppp_proto, 0x0021 | 0x0057) && enter(p, Tunnel::Gre, depth) {
                    ip::ip_by_version(body, p, depth + 1, "tunnel");
                }
            }
        }
        _ => {}
    }
}

/// A PPP frame (optional HDLC address/control, 1- or 2-byte protocol): protocol and body.
fn ppp(data: &[u8]) -> Option<(u16, &[u8])> {
    let data = if data.starts_with(&[0xff, 0x03]) { &data[2..] } else { data };
    match data.first()? {
        b if b & 1 == 1 => Some((u16::from(*b), &data[1..])),
        _ if data.len() >= 2 => Some((be16(data, 0), &data[2..])),
        _ => None,
    }
}

pub(crate) fn vxlan(body: &[u8], p: &mut Packet, depth: u8) -> bool {
    if body.len() < 8 + 14 || body[0] & 0x08 == 0 {
        return false;
    }
    if enter(p, Tunnel::Vxlan, depth) {
        link::ethernet(&body[8..], p, depth + 1);
    }
    true
}

pub(crate) fn geneve(body: &[u8], p: &mut Packet, depth: u8) -> bool {
    if body.len() < 8 || body[0] >> 6 != 0 {
        return false;
    }
    let len = 8 + usize::from(body[0] & 0x3f) * 4;
    let protocol = be16(body, 2);
    if body.len() < len || !matches!(protocol, 0x6558 | 0x0800 | 0x86dd) {
        return false;
    }
    if enter(p, Tunnel::Geneve, depth) {
        let inner = &body[len..];
        if protocol == 0x6558 {
            link::ethernet(inner, p, depth + 1);
        } else {
            link::network(protocol, inner, p, depth + 1);
        }
    }
    true
}

/// GTP-U (3GPP TS 29.281): only G-PDU messages (type 255) carry a user IP packet.
pub(crate) fn gtp_u(body: &[u8], p: &mut Packet, depth: u8) -> bool {
    if body.len() < 8 || body[0] >> 5 != 1 || body[0] & 0x10 == 0 || body[1] != 0xff {
        return false;
    }
    let mut len = 8;
    if body[0] & 0x07 != 0 {
        len += 4;
        let mut next_ext = match body.get(11) {
            Some(&n) => n,
            None => return false,
        };
        while next_ext != 0 {
            let Some(&units) = body.get(len) else { return false };
            let ext_len = usize::from(units) * 4;
            if ext_len == 0 || body.len() < len + ext_len {
                return false;
            }
            next_ext = body[len + ext_len - 1];
            len += ext_len;
        }
    }
    if body.len() <= len {
        return false;
    }
    if enter(p, Tunnel::Gtp, depth) {
        ip::ip_by_version(&body[len..], p, depth + 1, "tunnel");
    }
    true
}

/// Teredo (RFC 4380): optional authentication and origin-indication headers, then IPv6.
pub(crate) fn teredo(body: &[u8], p: &mut Packet, depth: u8) -> bool {
    let mut b = body;
    if b.starts_with(&[0, 1]) {
        let Some(&[id_len, auth_len]) = b.get(2..4) else { return false };
        let skip = 4 + usize::from(id_len) + usize::from(auth_len) + 9;
        let Some(rest) = b.get(skip..) else { return false };
        b = rest;
    }
    if b.starts_with(&[0, 0]) {
        let Some(rest) = b.get(8..) else { return false };
        b = rest;
    }
    if b.len() < 40 || b[0] >> 4 != 6 {
        return false;
    }
    if enter(p, Tunnel::Teredo, depth) {
        ip::ipv6(b, p, depth + 1);
    }
    true
}

/// An MPLS label stack; after the bottom label, the first nibble tells IPv4 from IPv6. Pseudowires
/// (anything else) are left undecoded.
pub(crate) fn mpls(data: &[u8], p: &mut Packet, depth: u8) {
    let mut at = 0;
    loop {
        if data.len() < at + 4 {
            p.fail("mpls: truncated label stack");
            return;
        }
        let bottom = data[at + 2] & 0x1 != 0;
        at += 4;
        if bottom {
            break;
        }
    }
    match data.get(at).map(|b| b >> 4) {
        Some(4) => ip::ipv4(&data[at..], p, depth),
        Some(6) => ip::ipv6(&data[at..], p, depth),
        _ => {}
    }
}

/// PPPoE session stage (RFC 2516): 6-byte header, then a PPP protocol field.
pub(crate) fn pppoe_session(data: &[u8], p: &mut Packet, depth: u8) {
    if data.len() < 8 {
        p.fail("pppoe: truncated header");
        return;
    }
    match be16(data, 6) {
        0x0021 => ip::ipv4(&data[8..], p, depth),
        0x0057 => ip::ipv6(&data[8..], p, depth),
        _ => {}
    }
}
