//! The Community ID flow hash, version 1 (github.com/corelight/community-id-spec): the
//! `1:<base64 sha1>` string Zeek and Suricata write, so packet rows join with their logs.
//!
//! The hash covers seed, both addresses, protocol, a pad byte and both ports (ICMP type/code
//! mapped to port equivalents), ordered so that both directions of a flow give the same value.

use super::Packet;
#[cfg(test)]
use super::IpAddr;

/// Length of the `1:` + base64(20 bytes) string.
pub const LEN: usize = 30;

/// The Community ID of a decoded packet with seed 0, written into `out`; `false` if the packet
/// has no flow (no IP layer, or a TCP/UDP/SCTP packet whose ports were not captured).
pub fn community_id(p: &Packet, out: &mut [u8; LEN]) -> bool {
    let (Some(src), Some(dst), Some(proto)) = (p.src_ip, p.dst_ip, p.ip_proto) else {
        return false;
    };
    let ports = match proto {
        6 | 17 | 132 => match (p.src_port, p.dst_port) {
            (Some(s), Some(d)) => Some((s, d, false)),
            _ => return false,
        },
        1 | 58 => match (p.icmp_type, p.icmp_code) {
            (Some(t), Some(c)) => Some(icmp_ports(t, c, proto == 58)),
            _ => return false,
        },
        _ => None,
    };
    let ordered = match ports {
        Some((sp, dp, one_way)) => one_way || src < dst || (src == dst && sp <= dp),
        None => src <= dst,
    };
    let (a, b, ports) = if ordered {
        (src, dst, ports.map(|(s, d, _)| (s, d)))
    } else {
        (dst, src, ports.map(|(s, d, _)| (d, s)))
    };
    // The hashed message is at most 40 bytes, so it always fits one padded SHA-1 block: build the
    // block directly and run a single compression (SHA-NI where the CPU has it).
    let mut block = [0u8; 64];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        block[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(&[0, 0]); // seed 0
    put(a.octets());
    put(b.octets());
    put(&[proto, 0]);
    if let Some((s, d)) = ports {
        put(&s.to_be_bytes());
        put(&d.to_be_bytes());
    }
    block[n] = 0x80;
    block[56..].copy_from_slice(&(n as u64 * 8).to_be_bytes());
    let mut state = [0x6745_2301u32, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];
    sha1::compress(&mut state, &[block.into()]);
    let mut digest = [0u8; 20];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out[0] = b'1';
    out[1] = b':';
    base64(&digest, &mut out[2..]);
    true
}

/// ICMP type/code as ports: request/response types map to their counterpart (two-way flows);
/// others are one-way, with the code as the destination port.
fn icmp_ports(icmp_type: u8, code: u8, v6: bool) -> (u16, u16, bool) {
    let counterpart = if v6 {
        match icmp_type {
            128 => Some(129),
            129 => Some(128),
            130 => Some(131),
            131 => Some(130),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(144),
            _ => None,
        }
    } else {
        match icmp_type {
            8 => Some(0),
            0 => Some(8),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            10 => Some(9),
            9 => Some(10),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    };
    match counterpart {
        Some(c) => (u16::from(icmp_type), c, false),
        None => (u16::from(icmp_type), u16::from(code), true),
    }
}

fn base64(input: &[u8; 20], out: &mut [u8]) {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = 0;
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out[o] = TABLE[(n >> 18) as usize & 63];
        out[o + 1] = TABLE[(n >> 12) as usize & 63];
        out[o + 2] = if chunk.len() > 1 { TABLE[(n >> 6) as usize & 63] } else { b'=' };
        out[o + 3] = if chunk.len() > 2 { TABLE[n as usize & 63] } else { b'=' };
        o += 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(p: &Packet) -> String {
        let mut out = [0u8; LEN];
        assert!(community_id(p, &mut out));
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<std::net::Ipv4Addr>().unwrap().octets())
    }

    // Reference values from the Community ID spec's baseline (community-id-spec/baseline).
    #[test]
    fn matches_spec_baseline_tcp_both_directions() {
        let mut p = Packet {
            src_ip: Some(v4("128.232.110.120")),
            dst_ip: Some(v4("66.35.250.204")),
            ip_proto: Some(6),
            src_port: Some(34855),
            dst_port: Some(80),
            ..Default::default()
        };
        assert_eq!(id(&p), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        std::mem::swap(&mut p.src_ip, &mut p.dst_ip);
        std::mem::swap(&mut p.src_port, &mut p.dst_port);
        assert_eq!(id(&p), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
    }

    #[test]
    fn icmp_echo_pairs_and_unmapped_types_are_one_way() {
        let req = Packet {
            src_ip: Some(v4("192.168.0.89")),
            dst_ip: Some(v4("192.168.0.1")),
            ip_proto: Some(1),
            icmp_type: Some(8),
            icmp_code: Some(0),
            ..Default::default()
        };
        let mut rep = req.clone();
        rep.src_ip = req.dst_ip;
        rep.dst_ip = req.src_ip;
        rep.icmp_type = Some(0);
        assert_eq!(id(&req), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        assert_eq!(id(&req), id(&rep));
        assert_eq!(icmp_ports(3, 1, false), (3, 1, true));
    }

    #[test]
    fn single_block_sha1_matches_the_streaming_hasher() {
        use sha1::{Digest, Sha1};
        let p = Packet {
            src_ip: Some(IpAddr::V6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
            dst_ip: Some(IpAddr::V6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2])),
            ip_proto: Some(17),
            src_port: Some(53),
            dst_port: Some(5353),
            ..Default::default()
        };
        let mut msg = vec![0u8, 0];
        msg.extend_from_slice(p.src_ip.unwrap().octets());
        msg.extend_from_slice(p.dst_ip.unwrap().octets());
        msg.extend_from_slice(&[17, 0, 0, 53, 0x14, 0xe9]);
        let digest: [u8; 20] = Sha1::digest(&msg).into();
        let mut expected = [0u8; LEN];
        expected[..2].copy_from_slice(b"1:");
        base64(&digest, &mut expected[2..]);
        assert_eq!(id(&p).as_bytes(), &expected);
    }

    #[test]
    fn no_flow_without_ports_or_addresses() {
        let mut out = [0u8; LEN];
        let p = Packet { ip_proto: Some(6), ..Default::default() };
        assert!(!community_id(&p, &mut out));
        let p = Packet {
            src_ip: Some(v4("10.0.0.1")),
            dst_ip: Some(v4("10.0.0.2")),
            ip_proto: Some(17),
            ..Default::default()
        };
        assert!(!community_id(&p, &mut out));
    }
}
