//! IPv4 and IPv6, including the IPv6 extension-header chain and both fragment forms. Fragments are
//! not reassembled: a non-first fragment has no transport header, so its ports stay null.

use super::wire::{array, be16};
use super::{transport, IpAddr, Packet};

/// Raw IP of either version, told apart by the version nibble.
pub(crate) fn ip_by_version(data: &[u8], p: &mut Packet, depth: u8, layer: &'static str) {
    match data.first().map(|b| b >> 4) {
        Some(4) => ipv4(data, p, depth),
        Some(6) => ipv6(data, p, depth),
        Some(_) => p.fail(match layer {
            "raw" => "raw: not an IP packet",
            _ => "tunnel: inner packet is not IP",
        }),
        None => p.fail(match layer {
            "raw" => "raw: empty packet",
            _ => "tunnel: empty inner packet",
        }),
    }
}

pub(crate) fn ipv4(data: &[u8], p: &mut Packet, depth: u8) {
    if data.is_empty() || data[0] >> 4 != 4 {
        p.fail(if data.is_empty() { "ipv4: truncated header" } else { "ipv4: bad version" });
        return;
    }
    if data.len() < 20 {
        ipv4_partial(data, p);
        p.fail("ipv4: truncated header");
        return;
    }
    let ihl = usize::from(data[0] & 0x0f) * 4;
    let total_len = usize::from(be16(data, 2));
    let frag = be16(data, 6);
    let frag_offset = (frag & 0x1fff) * 8;
    p.ip_version = Some(4);
    p.ip_len = Some(total_len as u32);
    p.frag_offset = Some(frag_offset);
    p.more_fragments = Some(frag & 0x2000 != 0);
    p.ttl = Some(data[8]);
    p.ip_proto = Some(data[9]);
    p.src_ip = Some(IpAddr::V4(array(data, 12)));
    p.dst_ip = Some(IpAddr::V4(array(data, 16)));
    if ihl < 20 {
        p.fail("ipv4: bad header length");
        return;
    }
    if data.len() < ihl {
        p.fail("ipv4: truncated header");
        return;
    }
    // A zero total length is what TCP segmentation offload leaves in captures: trust the frame.
    let (end, declared) = if total_len == 0 {
        (data.len(), data.len() - ihl)
    } else if total_len < ihl {
        p.fail("ipv4: bad total length");
        return;
    } else {
        (total_len.min(data.len()), total_len - ihl)
    };
    if frag_offset != 0 {
        p.payload_len = Some(declared as u32);
        return;
    }
    transport::transport(data[9], &data[ihl..end], declared as u32, p, depth);
}

pub(crate) fn ipv6(data: &[u8], p: &mut Packet, depth: u8) {
    if data.is_empty() || data[0] >> 4 != 6 {
        p.fail(if data.is_empty() { "ipv6: truncated header" } else { "ipv6: bad version" });
        return;
    }
    if data.len() < 40 {
        ipv6_partial(data, p);
        p.fail("ipv6: truncated header");
        return;
    }
    let plen = usize::from(be16(data, 4));
    p.ip_version = Some(6);
    p.ip_len = Some(40 + plen as u32);
    p.ttl = Some(data[7]);
    p.src_ip = Some(IpAddr::V6(array(data, 8)));
    p.dst_ip = Some(IpAddr::V6(array(data, 24)));
    let body = &data[40..];
    // A zero payload length means a jumbogram (or offload): trust the frame.
    let (mut payload, mut declared) =
        if plen == 0 { (body, body.len()) } else { (&body[..plen.min(body.len())], plen) };
    let mut next = data[6];
    for _ in 0..16 {
        let header_len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => payload.get(1).map(|&l| (usize::from(l) + 1) * 8),
            // Authentication header counts 4-byte units, minus 2.
            51 => payload.get(1).map(|&l| (usize::from(l) + 2) * 4),
            44 => Some(8),
            _ => break,
        };
        let Some(header_len) = header_len.filter(|&l| l <= payload.len()) else {
            p.ip_proto = Some(next);
            p.fail("ipv6: truncated extension header");
            return;
        };
        let following = payload[0];
        if next == 44 {
            let field = be16(payload, 2);
            p.frag_offset = Some(field & 0xfff8);
            p.more_fragments = Some(field & 1 != 0);
            if field & 0xfff8 != 0 {
                p.ip_proto = Some(following);
                p.payload_len = Some(declared.saturating_sub(8) as u32);
                return;
            }
        }
        next = following;
        payload = &payload[header_len..];
        declared = declared.saturating_sub(header_len);
    }
    p.ip_proto = Some(next);
    transport::transport(next, payload, declared as u32, p, depth);
}

/// The fields of an IPv4 header that a short capture still holds (lax decoding).
fn ipv4_partial(data: &[u8], p: &mut Packet) {
    p.ip_version = Some(4);
    if data.len() >= 4 {
        p.ip_len = Some(u32::from(be16(data, 2)));
    }
    if data.len() >= 8 {
        let frag = be16(data, 6);
        p.frag_offset = Some((frag & 0x1fff) * 8);
        p.more_fragments = Some(frag & 0x2000 != 0);
    }
    p.ttl = data.get(8).copied();
    p.ip_proto = data.get(9).copied();
    if data.len() >= 16 {
        p.src_ip = Some(IpAddr::V4(array(data, 12)));
    }
}

/// The fields of an IPv6 header that a short capture still holds (lax decoding).
fn ipv6_partial(data: &[u8], p: &mut Packet) {
    p.ip_version = Some(6);
    if data.len() >= 6 {
        p.ip_len = Some(40 + u32::from(be16(data, 4)));
    }
    p.ip_proto = data.get(6).copied();
    p.ttl = data.get(7).copied();
    if data.len() >= 24 {
        p.src_ip = Some(IpAddr::V6(array(data, 8)));
    }
}
