//! Decoder tests on hand-built frames, plus property tests that arbitrary bytes never panic.

use proptest::prelude::*;

use super::*;

const MAC_A: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const MAC_B: [u8; 6] = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = MAC_B.to_vec();
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn vlan(tpid: u16, vid: u16, inner: u16) -> Vec<u8> {
    let mut v = tpid.to_be_bytes().to_vec();
    v.extend_from_slice(&vid.to_be_bytes());
    v.extend_from_slice(&inner.to_be_bytes());
    v
}

fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 55]);
    let mut src = [0u8; 16];
    src[0] = 0x20;
    src[1] = 0x01;
    src[2] = 0x0d;
    src[3] = 0xb8;
    src[15] = 1;
    let mut dst = src;
    dst[15] = 2;
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&1000u32.to_be_bytes());
    t.extend_from_slice(&2000u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0x10, 0x00, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn run(link: u16, frame: &[u8]) -> Packet {
    let mut p = Packet::default();
    decode(link, frame, &mut p);
    p
}

fn v4(a: [u8; 4]) -> Option<IpAddr> {
    Some(IpAddr::V4(a))
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = eth(0x0800, &ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp(1234, 80, 0x18, b"hello")));
    let p = run(1, &f);
    assert_eq!(p.status, None);
    assert_eq!(p.eth_src, Some(MAC_A));
    assert_eq!(p.eth_dst, Some(MAC_B));
    assert_eq!(p.ethertype, Some(0x0800));
    assert_eq!((p.ip_version, p.src_ip, p.dst_ip), (Some(4), v4([10, 0, 0, 1]), v4([10, 0, 0, 2])));
    assert_eq!((p.ip_proto, p.ttl, p.ip_len), (Some(6), Some(64), Some(45)));
    assert_eq!((p.frag_offset, p.more_fragments), (Some(0), Some(false)));
    assert_eq!((p.src_port, p.dst_port, p.tcp_flags), (Some(1234), Some(80), Some(0x18)));
    assert_eq!((p.tcp_seq, p.tcp_ack, p.tcp_window), (Some(1000), Some(2000), Some(0x1000)));
    assert_eq!(p.payload_len, Some(5));
    assert_eq!((p.icmp_type, p.vlan_id, p.tunnel), (None, None, None));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = eth(0x0800, &ipv4(6, [1, 1, 1, 1], [2, 2, 2, 2], &tcp(1, 2, 0x10, b"")));
    f.extend_from_slice(&[0u8; 6]);
    let p = run(1, &f);
    assert_eq!(p.payload_len, Some(0));
    assert_eq!(p.status, None);
}

#[test]
fn qinq_tags_and_inner_ethertype() {
    let mut payload = vlan(0x8100, 200, 0x86dd);
    payload.extend_from_slice(&ipv6(17, &udp(53, 5353, b"x")));
    let f = eth(0x88a8, &[&100u16.to_be_bytes()[..], &payload].concat());
    let p = run(1, &f);
    assert_eq!((p.vlan_id, p.inner_vlan_id), (Some(100), Some(200)));
    assert_eq!(p.ethertype, Some(0x86dd));
    assert_eq!(p.ip_version, Some(6));
    assert_eq!(p.src_ip.unwrap().to_string(), "2001:db8::1");
    assert_eq!((p.src_port, p.dst_port, p.payload_len), (Some(53), Some(5353), Some(1)));
    assert_eq!((p.ttl, p.frag_offset), (Some(55), None));
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    // Hop-by-hop (8 bytes) -> fragment header (first fragment, M set) -> TCP.
    let mut ext = vec![44, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[6, 0, 0x00, 0x01, 0, 0, 0, 9]);
    ext.extend_from_slice(&tcp(443, 50000, 0x02, b""));
    let p = run(229, &ipv6(0, &ext));
    assert_eq!(p.ip_proto, Some(6));
    assert_eq!((p.frag_offset, p.more_fragments), (Some(0), Some(true)));
    assert_eq!((p.src_port, p.dst_port, p.status.as_deref()), (Some(443), Some(50000), None));
    // A non-first fragment has no ports.
    let nonfirst = [&[17u8, 0, 0x05, 0x78, 0, 0, 0, 9][..], &[0u8; 16]].concat();
    let p = run(229, &ipv6(44, &nonfirst));
    assert_eq!((p.ip_proto, p.frag_offset, p.more_fragments), (Some(17), Some(0x0578), Some(false)));
    assert_eq!((p.src_port, p.payload_len), (None, Some(16)));
}

#[test]
fn ipv4_nonfirst_fragment_has_no_ports() {
    let mut ip = ipv4(17, [1, 2, 3, 4], [5, 6, 7, 8], &[0u8; 24]);
    ip[6] = 0x20; // MF
    ip[7] = 0x03; // offset 3 * 8
    let p = run(101, &ip);
    assert_eq!((p.frag_offset, p.more_fragments), (Some(24), Some(true)));
    assert_eq!((p.src_port, p.payload_len, p.status), (None, Some(24), None));
}

#[test]
fn truncation_keeps_what_was_read() {
    let f = eth(0x0800, &ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], &tcp(1234, 80, 0x02, b"")));
    let p = run(1, &f[..14 + 20 + 10]);
    assert_eq!(p.status.as_deref(), Some("tcp: truncated header"));
    assert_eq!((p.src_port, p.dst_port, p.tcp_seq, p.tcp_window), (Some(1234), Some(80), Some(1000), None));
    let p = run(1, &f[..14 + 12]);
    assert_eq!(p.status.as_deref(), Some("ipv4: truncated header"));
    assert_eq!((p.ip_version, p.src_ip), (Some(4), None));
    let p = run(1, &f[..9]);
    assert_eq!(p.status.as_deref(), Some("ethernet: truncated header"));
    assert_eq!(p.eth_src, None);
}

#[test]
fn snaplen_cut_payload_is_clean() {
    let f = eth(0x0800, &ipv4(17, [10, 0, 0, 1], [10, 0, 0, 2], &udp(5000, 6000, &[7u8; 400])));
    let p = run(1, &f[..14 + 20 + 8 + 10]);
    assert_eq!(p.status, None);
    assert_eq!((p.ip_len, p.payload_len), (Some(428), Some(400)));
}

#[test]
fn tunnels_keep_outer_addresses() {
    let inner = ipv4(17, [192, 168, 1, 1], [192, 168, 1, 2], &udp(1000, 2000, b"abc"));
    // IP-in-IP
    let p = run(1, &eth(0x0800, &ipv4(4, [1, 1, 1, 1], [2, 2, 2, 2], &inner)));
    assert_eq!(p.tunnel, Some(Tunnel::IpIp));
    assert_eq!((p.outer_src_ip, p.outer_dst_ip), (v4([1, 1, 1, 1]), v4([2, 2, 2, 2])));
    assert_eq!((p.src_ip, p.dst_ip, p.ip_proto), (v4([192, 168, 1, 1]), v4([192, 168, 1, 2]), Some(17)));
    assert_eq!((p.src_port, p.payload_len), (Some(1000), Some(3)));
    // GRE with a key
    let gre = [&[0x20u8, 0, 0x08, 0x00, 0, 0, 0, 42][..], &inner].concat();
    let p = run(1, &eth(0x0800, &ipv4(47, [3, 3, 3, 3], [4, 4, 4, 4], &gre)));
    assert_eq!((p.tunnel, p.outer_src_ip, p.dst_port), (Some(Tunnel::Gre), v4([3, 3, 3, 3]), Some(2000)));
    // VXLAN: inner Ethernet; outer MACs are kept
    let vx = [&[0x08u8, 0, 0, 0, 0, 0, 1, 0][..], &eth(0x0800, &inner)].concat();
    let p = run(1, &eth(0x0800, &ipv4(17, [5, 5, 5, 5], [6, 6, 6, 6], &udp(40000, 4789, &vx))));
    assert_eq!((p.tunnel, p.outer_dst_ip), (Some(Tunnel::Vxlan), v4([6, 6, 6, 6])));
    assert_eq!((p.src_ip, p.src_port, p.eth_src), (v4([192, 168, 1, 1]), Some(1000), Some(MAC_A)));
    assert_eq!(p.status, None);
    // GTP-U G-PDU
    let mut gtp = vec![0x30, 0xff];
    gtp.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    gtp.extend_from_slice(&[0, 0, 0, 1]);
    gtp.extend_from_slice(&inner);
    let p = run(1, &eth(0x0800, &ipv4(17, [7, 7, 7, 7], [8, 8, 8, 8], &udp(2152, 2152, &gtp))));
    assert_eq!((p.tunnel, p.src_ip), (Some(Tunnel::Gtp), v4([192, 168, 1, 1])));
    // Teredo with an origin indication
    let teredo = [&[0u8, 0, 0xab, 0xcd, 9, 9, 9, 9][..], &ipv6(17, &udp(7, 8, b""))].concat();
    let p = run(1, &eth(0x0800, &ipv4(17, [9, 9, 9, 9], [8, 8, 8, 8], &udp(3544, 50000, &teredo))));
    assert_eq!((p.tunnel, p.ip_version, p.src_port), (Some(Tunnel::Teredo), Some(6), Some(7)));
}

#[test]
fn hostile_nesting_stops() {
    let mut pkt = ipv4(17, [9, 9, 9, 9], [9, 9, 9, 9], &udp(1, 2, b""));
    for _ in 0..20 {
        pkt = ipv4(4, [1, 1, 1, 1], [2, 2, 2, 2], &pkt);
    }
    let p = run(101, &pkt);
    assert_eq!(p.status.as_deref(), Some("tunnel: nesting too deep"));
    assert_eq!(p.tunnel, Some(Tunnel::IpIp));
}

#[test]
fn cooked_null_and_raw_link_types() {
    let ip = ipv4(1, [10, 1, 1, 1], [10, 1, 1, 2], &[8, 0, 0, 0, 0, 1, 0, 1]);
    let mut sll = vec![0, 0, 0, 1, 0, 6];
    sll.extend_from_slice(&MAC_A);
    sll.extend_from_slice(&[0, 0, 0x08, 0x00]);
    sll.extend_from_slice(&ip);
    let p = run(113, &sll);
    assert_eq!((p.eth_src, p.ethertype, p.icmp_type, p.icmp_code), (Some(MAC_A), Some(0x0800), Some(8), Some(0)));
    let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
    sll2.extend_from_slice(&MAC_B);
    sll2.extend_from_slice(&[0, 0]);
    sll2.extend_from_slice(&ip);
    let p = run(276, &sll2);
    assert_eq!((p.eth_src, p.src_ip), (Some(MAC_B), v4([10, 1, 1, 1])));
    for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        let p = run(0, &[&family[..], &ip].concat());
        assert_eq!(p.src_ip, v4([10, 1, 1, 1]));
    }
    let p = run(0, &[&30u32.to_le_bytes()[..], &ipv6(58, &[128, 0, 0, 0, 0, 0, 0, 0])].concat());
    assert_eq!((p.ip_version, p.icmp_type), (Some(6), Some(128)));
    let p = run(101, &[0x50, 0, 0]);
    assert_eq!(p.status.as_deref(), Some("raw: not an IP packet"));
    let p = run(147, &ip);
    assert_eq!(p.status.as_deref(), Some("link: unsupported link type 147"));
}

#[test]
fn llc_snap_and_plain_8023() {
    let ip = ipv4(17, [1, 0, 0, 1], [1, 0, 0, 2], &udp(1, 2, b""));
    let mut llc = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    llc.extend_from_slice(&ip);
    let p = run(1, &eth(llc.len() as u16, &llc));
    assert_eq!((p.ethertype, p.src_port), (Some(0x0800), Some(1)));
    let p = run(1, &eth(3, &[0x42, 0x42, 0x03]));
    assert_eq!((p.ethertype, p.ip_version, p.status), (None, None, None));
}

#[test]
fn mpls_and_pppoe_shims() {
    let ip = ipv4(6, [1, 0, 0, 1], [1, 0, 0, 2], &tcp(1, 2, 0x10, b""));
    let mpls = [&[0u8, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40][..], &ip].concat();
    let p = run(1, &eth(0x8847, &mpls));
    assert_eq!((p.src_ip, p.tunnel, p.ethertype), (v4([1, 0, 0, 1]), None, Some(0x8847)));
    let pppoe = [&[0x11u8, 0, 0, 1, 0, 0, 0x00, 0x21][..], &ip].concat();
    let p = run(1, &eth(0x8864, &pppoe));
    assert_eq!(p.dst_port, Some(2));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(link in prop::sample::select(vec![0u16, 1, 6, 9, 10, 12, 50, 101, 104, 105, 107, 108, 113, 127, 192, 228, 229, 239, 258, 276, 999]),
                                   data in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut p = Packet::default();
        decode(link, &data, &mut p);
    }

    #[test]
    fn any_cut_of_a_valid_frame_is_lax(cut in 0usize..120) {
        let f = eth(0x8100, &[&vlan(0x8100, 5, 0x0800)[2..], &ipv4(6, [1, 2, 3, 4], [4, 3, 2, 1], &tcp(9, 10, 2, &[1u8; 40]))].concat());
        let cut = cut.min(f.len());
        let p = run(1, &f[..cut]);
        // Headers complete (14 + 4 + 20 + 20 = 58 bytes) means clean; anything shorter is flagged.
        prop_assert_eq!(p.status.is_none(), cut >= 58);
        if cut >= 38 { prop_assert_eq!(p.src_ip, v4([1, 2, 3, 4])); }
    }
}

// ------------------------------------------------------------------ etherparse differential oracle

use super::etherparse_oracle::{differences, etherparse_ethernet, Theirs};

fn check_against_etherparse(frame: &[u8]) -> Result<(), String> {
    let ours = run(1, frame);
    let mut theirs = Theirs::default();
    etherparse_ethernet(frame, &mut theirs);
    let diffs = differences(&ours, &theirs);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!("{diffs:#?}\nframe {frame:02x?}\nours {ours:?}\netherparse {:?}", theirs.p))
    }
}

/// Ethernet frames of every readable capture under `tests/data` and the shared corpus (next to
/// the checkout, as CI lays it out; skipped when absent), then `extra` (a big synthetic capture).
fn corpus_ethernet_frames(extra: Option<&std::path::Path>) -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut dirs = vec![root.join("tests/data"), root.join("../shared/pcaps")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.to_string_lossy().contains("pcap") {
                files.push(path);
            }
        }
    }
    files.sort();
    files.extend(extra.map(std::path::Path::to_path_buf));
    let mut frames = Vec::new();
    for path in files {
        let Ok(mut src) = crate::source::open(&path) else { continue };
        while let Ok(Some(rec)) = src.next_record() {
            if rec.link_type == Some(1) {
                frames.push(rec.data.to_vec());
            }
        }
    }
    frames
}

#[test]
fn etherparse_agrees_on_the_corpus() {
    let frames = corpus_ethernet_frames(None);
    assert!(frames.len() > 100, "{}", frames.len());
    for f in &frames {
        check_against_etherparse(f).unwrap();
    }
}

/// A frame from parts: VLAN tags, IPv4 or IPv6 (with extension headers), TCP/UDP/ICMP.
fn generated_frame(tags: &[u16], v6: bool, exts: &[u8], transport: u8, body: &[u8]) -> Vec<u8> {
    let seg = match transport {
        0 => tcp(40000, 443, 0x18, body),
        1 => udp(5353, 53, body),
        _ => [&[8u8, 0, 0, 0, 0, 1, 0, 1][..], body].concat(),
    };
    let proto = [6u8, 17, if v6 { 58 } else { 1 }][usize::from(transport.min(2))];
    let net = if v6 {
        // Extension headers, each 8 bytes: hop-by-hop (0), routing (43), destination options
        // (60), fragment (44, offset 0, id 7).
        let mut chain = Vec::new();
        let mut kinds = exts.to_vec();
        kinds.push(proto);
        for w in kinds.windows(2) {
            match w[0] {
                44 => chain.extend_from_slice(&[w[1], 0, 0, 0, 0, 0, 0, 7]),
                43 => chain.extend_from_slice(&[w[1], 0, 0, 0, 0, 0, 0, 0]),
                _ => chain.extend_from_slice(&[w[1], 0, 1, 4, 0, 0, 0, 0]),
            }
        }
        chain.extend_from_slice(&seg);
        ipv6(kinds[0], &chain)
    } else {
        ipv4(proto, [10, 0, 0, 1], [192, 168, 7, 9], &seg)
    };
    let mut ethertype: u16 = if v6 { 0x86dd } else { 0x0800 };
    let mut payload = net;
    for (i, &vid) in tags.iter().enumerate().rev() {
        let tpid = if i == 0 && tags.len() > 1 { 0x88a8 } else { 0x8100 };
        payload = [&vid.to_be_bytes()[..], &ethertype.to_be_bytes()[..], &payload].concat();
        ethertype = tpid;
    }
    eth(ethertype, &payload)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn etherparse_agrees_on_arbitrary_bytes(
        ethertype in prop::sample::select(vec![0x0800u16, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x8847, 0x88e5, 0x05dc, 0x1234]),
        data in prop::collection::vec(any::<u8>(), 0..160),
    ) {
        let f = eth(ethertype, &data);
        for cut in [f.len(), 13, f.len() / 2] {
            if let Err(e) = check_against_etherparse(&f[..cut.min(f.len())]) { prop_assert!(false, "{}", e); }
        }
    }

    #[test]
    fn etherparse_agrees_on_generated_and_mutated_frames(
        tags in prop::collection::vec(0u16..4096, 0..4),
        v6 in any::<bool>(),
        exts in prop::collection::vec(prop::sample::select(vec![0u8, 43, 44, 60]), 0..4),
        transport in 0u8..3,
        body in prop::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
        flip in prop::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut f = generated_frame(&tags, v6, &exts, transport, &body);
        if let Err(e) = check_against_etherparse(&f) { prop_assert!(false, "whole frame: {}", e); }
        if let Some((at, byte)) = flip {
            let at = at.index(f.len());
            f[at] = byte;
        }
        let cut = cut.index(f.len() + 1);
        if let Err(e) = check_against_etherparse(&f[..cut]) { prop_assert!(false, "{}", e); }
    }
}

/// ns/frame of the hand-written decoder and of etherparse (into the same fields, and its bare
/// slicing) on the same Ethernet frames. Timing, not a test: run in release,
/// `cargo test --release --lib etherparse_speed -- --ignored --nocapture`; the synthetic capture
/// is `$PKTSTREAM_BENCH_PCAP` or the cache of `benches/bench_decode.py` when present.
#[test]
#[ignore]
fn etherparse_speed() {
    use std::hint::black_box;
    use std::time::Instant;

    let synth = std::env::var_os("PKTSTREAM_BENCH_PCAP").map(std::path::PathBuf::from).or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = std::path::Path::new(&home).join(".cache/pktstream/bench/synth-100000-seed0.pcap");
        p.exists().then_some(p)
    });
    let corpus = corpus_ethernet_frames(None);
    let synthetic =
        synth.as_deref().map(|p| corpus_ethernet_frames(Some(p)).split_off(corpus.len())).unwrap_or_default();
    let mut generated = Vec::new();
    for tags in [&[][..], &[7], &[7, 300]] {
        for (v6, exts) in [(false, &[][..]), (true, &[]), (true, &[0, 60]), (true, &[0, 43, 44])] {
            for transport in 0..3 {
                generated.push(generated_frame(tags, v6, exts, transport, &[0x42; 100]));
            }
        }
    }
    for (name, frames) in [("corpus", &corpus), ("synthetic", &synthetic), ("generated", &generated)] {
        if frames.is_empty() {
            continue;
        }
        let reps = (2_000_000 / frames.len()).max(1);
        let n = (reps * frames.len()) as f64;
        let time = |f: &mut dyn FnMut(&[u8])| {
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..reps {
                    for fr in frames.iter() {
                        f(black_box(fr));
                    }
                }
                best = best.min(t.elapsed().as_secs_f64() * 1e9 / n);
            }
            best
        };
        let mut p = Packet::default();
        let ours = time(&mut |fr| {
            decode(1, fr, &mut p);
            black_box(&p);
        });
        let mut t = Theirs::default();
        let fields = time(&mut |fr| {
            etherparse_ethernet(fr, &mut t);
            black_box(&t);
        });
        let slicing = time(&mut |fr| {
            black_box(etherparse::LaxSlicedPacket::from_ethernet(fr).is_ok());
        });
        println!(
            "{name:>9}: {} frames x {reps}: hand-written {ours:.1} ns/frame, etherparse into the fields {fields:.1} ns/frame, etherparse slicing only {slicing:.1} ns/frame",
            frames.len()
        );
    }
}
