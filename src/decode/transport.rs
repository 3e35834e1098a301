//! Transport headers (TCP, UDP, UDP-Lite, SCTP, ICMP, ICMPv6) and the hand-off to IP-level
//! encapsulations. `declared` is the transport length the IP header declares, which may exceed
//! the captured bytes (snaplen); header fields come only from captured bytes.

use super::wire::{be16, be32};
use super::{tunnel, Packet};

pub(crate) fn transport(proto: u8, seg: &[u8], declared: u32, p: &mut Packet, depth: u8) {
    match proto {
        6 => tcp(seg, declared, p),
        17 | 136 => udp(seg, declared, p, depth),
        132 => sctp(seg, declared, p),
        1 => icmp(seg, declared, p, "icmp: truncated header"),
        58 => icmp(seg, declared, p, "icmpv6: truncated header"),
        4 | 41 => tunnel::ip_in_ip(proto, seg, declared, p, depth),
        47 => tunnel::gre(seg, declared, p, depth),
        _ => p.payload_len = Some(declared),
    }
}

fn ports(seg: &[u8], p: &mut Packet) {
    if seg.len() >= 4 {
        p.src_port = Some(be16(seg, 0));
        p.dst_port = Some(be16(seg, 2));
    }
}

fn tcp(seg: &[u8], declared: u32, p: &mut Packet) {
    ports(seg, p);
    if seg.len() >= 8 {
        p.tcp_seq = Some(be32(seg, 4));
    }
    if seg.len() >= 12 {
        p.tcp_ack = Some(be32(seg, 8));
    }
    if seg.len() >= 14 {
        p.tcp_flags = Some(be16(seg, 12) & 0x0fff);
    }
    if seg.len() >= 16 {
        p.tcp_window = Some(be16(seg, 14));
    }
    if seg.len() < 20 {
        p.fail("tcp: truncated header");
        return;
    }
    let data_offset = u32::from(seg[12] >> 4) * 4;
    if data_offset < 20 {
        p.fail("tcp: bad data offset");
        return;
    }
    p.payload_len = Some(declared.saturating_sub(data_offset));
    if seg.len() < data_offset as usize {
        p.fail("tcp: truncated options");
    }
}

fn udp(seg: &[u8], declared: u32, p: &mut Packet, depth: u8) {
    ports(seg, p);
    if seg.len() < 8 {
        p.fail("udp: truncated header");
        return;
    }
    let length = u32::from(be16(seg, 4));
    // Length 0 is legal for UDP over IPv6 jumbograms (and UDP-Lite's checksum coverage): use IP's.
    p.payload_len = Some(if length >= 8 { length - 8 } else { declared.saturating_sub(8) });
    let end = if length >= 8 { (length as usize).min(seg.len()) } else { seg.len() };
    let body = &seg[8..end];
    let (src, dst) = (be16(seg, 0), be16(seg, 2));
    for port in [dst, src] {
        let found = match port {
            4789 => tunnel::vxlan(body, p, depth),
            6081 => tunnel::geneve(body, p, depth),
            2152 => tunnel::gtp_u(body, p, depth),
            3544 => tunnel::teredo(body, p, depth),
            _ => false,
        };
        if found {
            return;
        }
    }
}

fn sctp(seg: &[u8], declared: u32, p: &mut Packet) {
    ports(seg, p);
    if seg.len() < 12 {
        p.fail("sctp: truncated header");
        return;
    }
    p.payload_len = Some(declared.saturating_sub(12));
}

fn icmp(seg: &[u8], declared: u32, p: &mut Packet, truncated: &'static str) {
    if seg.len() < 2 {
        p.fail(truncated);
        return;
    }
    p.icmp_type = Some(seg[0]);
    p.icmp_code = Some(seg[1]);
    p.payload_len = Some(declared.saturating_sub(8));
    if seg.len() < 4 {
        p.fail(truncated);
    }
}
