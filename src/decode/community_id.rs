//! The Community ID flow hash, version 1 (github.com/corelight/community-id-spec): the
//! `1:<base64 sha1>` string Zeek and Suricata write, so packet rows join with their logs.
//!
//! The hash covers seed, both addresses, protocol, a pad byte and both ports (ICMP type/code
//! mapped to port equivalents), ordered so that both directions of a flow give the same value.

#[cfg(test)]
use super::IpAddr;
use super::Packet;

/// Length of the `1:` + base64(20 bytes) string.
pub const LEN: usize = 30;

/// The Community ID of a decoded packet with seed 0, written into `out`; `false` if the packet
/// has no flow (no IP layer, or a TCP/UDP/SCTP packet whose ports were not captured).
pub fn community_id(p: &Packet, out: &mut [u8; LEN]) -> bool {
    let Some(words) = community_id_words(p) else {
        return false;
    };
    for (chunk, word) in out.chunks_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
    true
}

/// The Community ID as four little-endian words: their bytes are the [`LEN`] characters, then
/// two zero bytes. Words rather than bytes because the ID is built in registers and usually
/// stored into a column next: byte arrays written piecemeal and read back whole stall the CPU
/// (failed store-to-load forwarding).
pub fn community_id_words(p: &Packet) -> Option<[u64; 4]> {
    let (Some(src), Some(dst), Some(proto)) = (p.src_ip, p.dst_ip, p.ip_proto) else {
        return None;
    };
    let ports = match proto {
        6 | 17 | 132 => match (p.src_port, p.dst_port) {
            (Some(s), Some(d)) => Some((s, d, false)),
            _ => return None,
        },
        1 | 58 => match (p.icmp_type, p.icmp_code) {
            (Some(t), Some(c)) => Some(icmp_ports(t, c, proto == 58)),
            _ => return None,
        },
        _ => None,
    };
    let ordered = match ports {
        Some((sp, dp, one_way)) => one_way || src < dst || (src == dst && sp <= dp),
        None => src <= dst,
    };
    let (a, b, ports) =
        if ordered { (src, dst, ports.map(|(s, d, _)| (s, d))) } else { (dst, src, ports.map(|(s, d, _)| (d, s))) };
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
    Some(encode(state))
}

/// `1:` + the base64 of the digest (the state words, big-endian), as words (see
/// [`community_id_words`]). 12 bits (two characters) per table lookup: the 160 bits are 13 groups
/// of 12 bits, then 4 bits padded to a character, then `=`.
fn encode(state: [u32; 5]) -> [u64; 4] {
    let head =
        u128::from(state[0]) << 96 | u128::from(state[1]) << 64 | u128::from(state[2]) << 32 | u128::from(state[3]);
    // Ten groups from the first 120 of head's 128 bits, three from its last 8 and state[4].
    let rest = (head as u64 & 0xff) << 32 | u64::from(state[4]);
    let pair = |k: usize| {
        let bits = if k < 10 { (head >> (116 - 12 * k)) as u64 } else { rest >> (28 - 12 * (k - 10)) };
        u64::from(B64_PAIRS[bits as usize & 0xfff])
    };
    let last = u64::from(B64[(rest as usize & 0xf) << 2]);
    [
        u64::from(u16::from_le_bytes(*b"1:")) | pair(0) << 16 | pair(1) << 32 | pair(2) << 48,
        pair(3) | pair(4) << 16 | pair(5) << 32 | pair(6) << 48,
        pair(7) | pair(8) << 16 | pair(9) << 32 | pair(10) << 48,
        pair(11) | pair(12) << 16 | last << 32 | u64::from(b'=') << 40,
    ]
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two base64 characters of every 12-bit value, first character in the low byte.
static B64_PAIRS: [u16; 4096] = {
    let mut t = [0; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = u16::from_le_bytes([B64[i >> 6], B64[i & 63]]);
        i += 1;
    }
    t
};

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
        assert_eq!(id(&p), format!("1:{}", base64(&digest)));
    }

    /// Textbook base64, the reference for `encode`.
    fn base64(input: &[u8]) -> String {
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                let c = if k <= chunk.len() { B64[(n >> (18 - 6 * k)) as usize & 63] } else { b'=' };
                out.push(char::from(c));
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn encode_is_base64_of_the_big_endian_state(state in proptest::prelude::any::<[u32; 5]>()) {
            let digest: Vec<u8> = state.iter().flat_map(|w| w.to_be_bytes()).collect();
            let bytes: Vec<u8> = encode(state).iter().flat_map(|w| w.to_le_bytes()).collect();
            proptest::prop_assert_eq!(&bytes[LEN..], &[0, 0]);
            let expected = format!("1:{}", base64(&digest));
            proptest::prop_assert_eq!(std::str::from_utf8(&bytes[..LEN]).unwrap(), expected);
        }
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
