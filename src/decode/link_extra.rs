//! Less common link layers, each a short header in front of LLC/SNAP, PPP or IP: PPP and
//! PPP-in-HDLC, Cisco HDLC, FDDI, Token Ring, Frame Relay (RFC 2427) and Linux NFLOG; and the
//! capture metadata headers that wrap another link type: Apple's PKTAP (what macOS `tcpdump -i
//! any` writes) and PPI.

use super::wire::be16;
use super::{ip, link, Packet};

pub(crate) const PPP: u16 = 9;
pub(crate) const FDDI: u16 = 10;
pub(crate) const TOKEN_RING: u16 = 6;
pub(crate) const PPP_HDLC: u16 = 50;
pub(crate) const C_HDLC: u16 = 104;
pub(crate) const FRELAY: u16 = 107;
pub(crate) const NFLOG: u16 = 239;
pub(crate) const PPI: u16 = 192;
pub(crate) const PKTAP: u16 = 258;

/// Decodes one of this module's link types; false if `link_type` is not one of them.
pub(crate) fn decode(link_type: u16, data: &[u8], p: &mut Packet) -> bool {
    match link_type {
        PPP | PPP_HDLC => ppp(data, p),
        C_HDLC => {
            if data.len() < 4 {
                p.fail("chdlc: truncated header");
            } else {
                network(be16(data, 2), &data[4..], p);
            }
        }
        FDDI => llc_after(13, data, p, "fddi: truncated header"),
        TOKEN_RING => {
            // Access control, frame control, addresses; a source-routed frame carries a routing field.
            let routing = match data.get(8) {
                Some(b) if b & 0x80 != 0 => data.get(14).map_or(0, |l| usize::from(l & 0x1f)),
                _ => 0,
            };
            llc_after(14 + routing, data, p, "token ring: truncated header");
        }
        FRELAY => frame_relay(data, p),
        NFLOG => nflog(data, p),
        PKTAP | PPI => wrapped(link_type, data, p),
        _ => return false,
    }
    true
}

fn network(ethertype: u16, rest: &[u8], p: &mut Packet) {
    p.ethertype = Some(ethertype);
    link::network(ethertype, rest, p, 0);
}

/// An 802.2 LLC header at `at`; only SNAP carries an ethertype.
fn llc_after(at: usize, data: &[u8], p: &mut Packet, truncated: &'static str) {
    let Some(llc) = data.get(at..) else {
        p.fail(truncated);
        return;
    };
    if let Some(ethertype) = link::snap_ethertype(llc) {
        network(ethertype, &llc[8..], p);
    }
}

fn ppp(data: &[u8], p: &mut Packet) {
    let data = if data.starts_with(&[0xff, 0x03]) { &data[2..] } else { data };
    let (proto, body) = match data.first() {
        Some(b) if b & 1 == 1 => (u16::from(*b), &data[1..]),
        Some(_) if data.len() >= 2 => (be16(data, 0), &data[2..]),
        _ => {
            p.fail("ppp: truncated header");
            return;
        }
    };
    match proto {
        0x0021 => ip::ipv4(body, p, 0),
        0x0057 => ip::ipv6(body, p, 0),
        _ => {}
    }
}

/// RFC 2427 multiprotocol over Frame Relay: Q.922 address, UI control, an optional pad byte,
/// then an NLPID (IPv4, IPv6, or SNAP followed by an OUI and an ethertype).
fn frame_relay(data: &[u8], p: &mut Packet) {
    if data.len() < 4 {
        p.fail("frame relay: truncated header");
        return;
    }
    // The address is 2 bytes unless its EA bit says it continues.
    let addr = if data[1] & 1 == 1 { 2 } else { 3 };
    let Some(rest) = data.get(addr..).filter(|r| r.len() >= 2 && r[0] == 0x03) else { return };
    let rest = if rest[1] == 0x00 { &rest[2..] } else { &rest[1..] };
    match rest {
        [0xcc, ip @ ..] => ip::ipv4(ip, p, 0),
        [0x8e, ip @ ..] => ip::ipv6(ip, p, 0),
        [0x80, 0x00, 0x00, 0x00, hi, lo, payload @ ..] => network(u16::from_be_bytes([*hi, *lo]), payload, p),
        _ => {}
    }
}

/// PKTAP (little-endian header length at 0, inner DLT at 4, record type at 8) and PPI (little-endian header length
/// at 2, inner DLT at 4) wrap a frame of another link type, which is decoded as if captured alone.
fn wrapped(link_type: u16, data: &[u8], p: &mut Packet) {
    let (name, len) = match (link_type, data.get(..8)) {
        (PKTAP, Some(h)) => ("pktap", u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize),
        (_, Some(h)) => ("ppi", usize::from(u16::from_le_bytes([h[2], h[3]]))),
        (_, None) => {
            p.fail(if link_type == PKTAP { "pktap: truncated header" } else { "ppi: truncated header" });
            return;
        }
    };
    let inner = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    // A PKTAP record carries a packet only when its record type (at 8) is PKT_REC_PACKET (1).
    if link_type == PKTAP && data.get(8..12) != Some(&1u32.to_le_bytes()[..]) {
        return;
    }
    match (data.get(len..), u16::try_from(inner)) {
        // A wrapper around a wrapper is not something capture tools write: refuse to recurse.
        (Some(frame), Ok(inner)) if len >= 8 && inner != PKTAP && inner != PPI => link::decode_link(inner, frame, p),
        _ => p.fail(format!("{name}: bad header")),
    }
}

/// Linux NFLOG: a 4-byte header (address family first), then TLVs whose lengths and types are in
/// the capturing host's byte order (little-endian on every common host); type 9 is the packet.
fn nflog(data: &[u8], p: &mut Packet) {
    if data.len() < 4 {
        p.fail("nflog: truncated header");
        return;
    }
    let mut at = 4;
    while at + 4 <= data.len() {
        let len = usize::from(u16::from_le_bytes([data[at], data[at + 1]]));
        let kind = u16::from_le_bytes([data[at + 2], data[at + 3]]) & 0x7fff;
        if len < 4 || at + len > data.len() {
            p.fail("nflog: truncated attribute");
            return;
        }
        if kind == 9 {
            let payload = &data[at + 4..at + len];
            match data[0] {
                2 => ip::ipv4(payload, p, 0),
                10 => ip::ipv6(payload, p, 0),
                _ => ip::ip_by_version(payload, p, 0, "raw"),
            }
            return;
        }
        at += len.next_multiple_of(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: [u8; 28] = [0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 54, 0, 8, 0, 0];

    fn run(link: u16, frame: &[u8]) -> Packet {
        let mut p = Packet::default();
        assert!(decode(link, frame, &mut p));
        p
    }

    #[test]
    fn ppp_chdlc_fddi_and_nflog_reach_ip() {
        let p = run(PPP, &[&[0xff, 0x03, 0x00, 0x21][..], &IP].concat());
        assert_eq!((p.src_port, p.status), (Some(53), None));
        let p = run(C_HDLC, &[&[0x0f, 0x00, 0x08, 0x00][..], &IP].concat());
        assert_eq!((p.ethertype, p.dst_port), (Some(0x0800), Some(54)));
        let fddi = [&[0x50u8; 13][..], &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00], &IP].concat();
        assert_eq!(run(FDDI, &fddi).src_port, Some(53));
        let fr = [&[0x18u8, 0x41, 0x03, 0xcc][..], &IP].concat();
        assert_eq!(run(FRELAY, &fr).src_port, Some(53));
        let fr_snap = [&[0x18u8, 0x41, 0x03, 0x00, 0x80, 0, 0, 0, 0x08, 0x00][..], &IP].concat();
        let p = run(FRELAY, &fr_snap);
        assert_eq!((p.ethertype, p.src_port), (Some(0x0800), Some(53)));
        let mut nf = vec![2, 0, 0, 0];
        nf.extend_from_slice(&8u16.to_le_bytes());
        nf.extend_from_slice(&1u16.to_le_bytes());
        nf.extend_from_slice(&[0, 0, 0, 0]);
        nf.extend_from_slice(&((4 + IP.len()) as u16).to_le_bytes());
        nf.extend_from_slice(&9u16.to_le_bytes());
        nf.extend_from_slice(&IP);
        assert_eq!(run(NFLOG, &nf).dst_port, Some(54));
    }

    #[test]
    fn pktap_and_ppi_unwrap_the_inner_frame() {
        let raw = [&[0x45u8][..], &IP[1..]].concat();
        let mut pktap = vec![0u8; 108];
        pktap[..4].copy_from_slice(&108u32.to_le_bytes());
        pktap[4..8].copy_from_slice(&12u32.to_le_bytes()); // DLT_RAW
        pktap.extend_from_slice(&raw);
        assert_eq!(run(PKTAP, &pktap).dst_port, None, "record type 0 is not a packet");
        pktap[8..12].copy_from_slice(&1u32.to_le_bytes()); // PKT_REC_PACKET
        assert_eq!(run(PKTAP, &pktap).dst_port, Some(54));
        let mut ppi = vec![0u8, 0, 8, 0];
        ppi.extend_from_slice(&101u32.to_le_bytes());
        ppi.extend_from_slice(&raw);
        assert_eq!(run(PPI, &ppi).src_port, Some(53));
        let mut nested = vec![0u8, 0, 8, 0];
        nested.extend_from_slice(&192u32.to_le_bytes());
        nested.extend_from_slice(&ppi);
        assert_eq!(run(PPI, &nested).status.as_deref(), Some("ppi: bad header"));
    }

    #[test]
    fn truncated_headers_are_flagged() {
        assert_eq!(run(C_HDLC, &[0x0f]).status.as_deref(), Some("chdlc: truncated header"));
        assert_eq!(run(NFLOG, &[2, 0, 0, 0, 200, 0, 9, 0]).status.as_deref(), Some("nflog: truncated attribute"));
    }
}
