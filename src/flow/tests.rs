use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::decode::{IpAddr, Packet};

const S: i64 = 1_000_000_000;

fn tcp(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, flags: u16) -> Packet {
    Packet {
        ip_version: Some(4),
        src_ip: Some(IpAddr::V4(src)),
        dst_ip: Some(IpAddr::V4(dst)),
        ip_proto: Some(6),
        src_port: Some(sp),
        dst_port: Some(dp),
        tcp_flags: Some(flags),
        ip_len: Some(60),
        payload_len: Some(20),
        ..Default::default()
    }
}

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

fn run(opts: FlowOptions, packets: &[(Packet, i64, u32)]) -> Vec<FlowRecord> {
    let mut m = FlowMeter::new(opts);
    let mut out = Vec::new();
    for (p, t, len) in packets {
        m.observe(p, Some(*t), *len);
        out.extend(m.drain());
    }
    m.finish();
    out.extend(m.drain());
    out
}

#[test]
fn both_directions_make_one_flow_and_src_is_the_first_sender() {
    let pkts = [
        (tcp(B, 80, A, 1234, 0x12), 0, 100),
        (tcp(A, 1234, B, 80, 0x10), S, 60),
        (tcp(B, 80, A, 1234, 0x18), 2 * S, 200),
    ];
    let out = run(FlowOptions::default(), &pkts);
    assert_eq!(out.len(), 1);
    let f = &out[0].flow;
    assert_eq!(out[0].expiration, Expiration::End);
    assert!(!f.src_is_lo, "B sent first and B > A");
    assert_eq!(f.key.ip(f.src_is_lo), IpAddr::V4(B));
    assert_eq!((f.packets, f.bytes), ([2, 1], [300, 60]));
    assert_eq!(f.tcp_flags, [0x1a, 0x10]);
    assert_eq!((f.first_ns, f.last_ns), (0, 2 * S));
    assert!(f.community_id.is_some());
}

#[test]
fn idle_gap_splits_at_exactly_the_timeout_and_expires_from_the_head() {
    let opts = FlowOptions { idle_timeout_ns: 10 * S, ..Default::default() };
    let other = tcp(A, 1, B, 2, 0);
    let pkts = [
        (tcp(A, 5, B, 6, 0), 0, 10),
        (tcp(A, 5, B, 6, 0), 10 * S - 1, 10), // just under: same flow
        (other.clone(), 20 * S - 1, 10),      // exactly idle for the first flow: expired by the scan
        (tcp(A, 5, B, 6, 0), 20 * S - 1, 10),
    ];
    let out = run(opts, &pkts);
    let reasons: Vec<_> = out.iter().map(|r| (r.flow.packets[0], r.expiration)).collect();
    assert_eq!(reasons, vec![(2, Expiration::Idle), (1, Expiration::End), (1, Expiration::End)]);
}

#[test]
fn active_timeout_splits_a_long_flow_and_the_packet_starts_the_next_record() {
    let opts = FlowOptions { active_timeout_ns: 10 * S, ..Default::default() };
    let pkts: Vec<_> = (0..25).map(|i| (tcp(A, 5, B, 6, 0), i * S, 10)).collect();
    let out = run(opts, &pkts);
    let got: Vec<_> = out.iter().map(|r| (r.flow.packets[0], r.expiration, r.flow.flow_id)).collect();
    assert_eq!(got, vec![(10, Expiration::Active, 0), (10, Expiration::Active, 1), (5, Expiration::End, 2)]);
}

#[test]
fn tcp_close_on_rst_or_both_fins_after_the_grace() {
    let opts = FlowOptions { tcp_close: true, ..Default::default() };
    let pkts = [
        (tcp(A, 5, B, 6, 0x02), 0, 10),
        (tcp(B, 6, A, 5, 0x11), S / 10, 10),
        (tcp(A, 5, B, 6, 0x11), 2 * S / 10, 10),
        (tcp(B, 6, A, 5, 0x10), 3 * S / 10, 10), // last ACK: still the same flow
        (tcp(A, 7, B, 6, 0x04), 5 * S, 10),      // unrelated RST; the closed flow is past its grace
        (tcp(A, 7, B, 6, 0x10), 7 * S, 10),
    ];
    let out = run(opts, &pkts);
    let got: Vec<_> = out.iter().map(|r| (r.flow.key.lo_port, r.flow.packets, r.expiration)).collect();
    assert_eq!(
        got,
        vec![(5, [2, 2], Expiration::TcpClose), (7, [1, 0], Expiration::TcpClose), (7, [1, 0], Expiration::End)]
    );
    // Off (NFStream's behaviour): one flow per tuple, whatever the flags.
    let out = run(FlowOptions::default(), &pkts);
    assert_eq!(out.len(), 2);
}

#[test]
fn max_flows_evicts_the_least_recently_seen_and_counts_it() {
    let opts = FlowOptions { max_flows: 2, ..Default::default() };
    let mut m = FlowMeter::new(opts);
    m.observe(&tcp(A, 1, B, 1, 0), Some(0), 1);
    m.observe(&tcp(A, 2, B, 2, 0), Some(1), 1);
    m.observe(&tcp(A, 1, B, 1, 0), Some(2), 1);
    m.observe(&tcp(A, 3, B, 3, 0), Some(3), 1);
    let out: Vec<_> = m.drain().collect();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].flow.key.lo_port, out[0].expiration), (2, Expiration::Evicted));
    let s = m.stats();
    assert_eq!((s.evicted, s.active, s.flows), (1, 2, 1));
}

#[test]
fn non_ip_and_later_fragments_have_no_flow_icmp_has_ports_zero() {
    let mut m = FlowMeter::new(FlowOptions::default());
    m.observe(&Packet { ethertype: Some(0x0806), ..Default::default() }, Some(0), 42);
    let mut frag = tcp(A, 1, B, 2, 0);
    frag.frag_offset = Some(1480);
    m.observe(&frag, Some(0), 100);
    let icmp = |t: u8, src, dst| Packet {
        ip_version: Some(4),
        src_ip: Some(IpAddr::V4(src)),
        dst_ip: Some(IpAddr::V4(dst)),
        ip_proto: Some(1),
        icmp_type: Some(t),
        icmp_code: Some(0),
        ..Default::default()
    };
    m.observe(&icmp(8, A, B), Some(0), 98);
    m.observe(&icmp(0, B, A), Some(1), 98);
    m.observe(&icmp(3, B, A), Some(2), 70);
    m.finish();
    let out: Vec<_> = m.drain().collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flow.packets, [1, 2]);
    let s = m.stats();
    assert_eq!((s.packets, s.not_ip, s.fragments, s.metered), (5, 1, 1, 3));
}

#[test]
fn time_never_goes_backwards_and_missing_timestamps_use_the_latest() {
    let out = run(FlowOptions::default(), &[(tcp(A, 1, B, 2, 0), 10 * S, 1), (tcp(A, 1, B, 2, 0), 5 * S, 1)]);
    assert_eq!((out[0].flow.first_ns, out[0].flow.last_ns), (10 * S, 10 * S));
}

#[test]
fn statistics_follow_nfstream_definitions() {
    let opts = FlowOptions { statistics: true, ..Default::default() };
    let out =
        run(opts, &[(tcp(A, 1, B, 2, 0), 0, 100), (tcp(B, 2, A, 1, 0), S, 300), (tcp(A, 1, B, 2, 0), 3 * S, 200)]);
    let s = out[0].flow.statistics.as_deref().unwrap();
    assert_eq!((s.ps[0].min, s.ps[0].max, s.ps[0].mean), (100.0, 300.0, 200.0));
    assert_eq!(s.ps[0].stddev(), 100.0);
    assert_eq!((s.piat_ms[0].min, s.piat_ms[0].max), (1000.0, 2000.0));
    assert_eq!((s.piat_ms[1].n, s.piat_ms[1].mean), (1, 3000.0));
    assert_eq!(s.piat_ms[2].n, 0);
}

#[test]
fn columns_project_and_name_the_direction() {
    let out = run(FlowOptions::default(), &[(tcp(B, 80, A, 1234, 0x02), 0, 100)]);
    let mut cols =
        FlowColumns::new(false, false, Some(&["src_ip".into(), "dst_port".into(), "expiration".into()])).unwrap();
    cols.append(&out[0]);
    let batch = cols.finish().unwrap();
    assert_eq!(batch.num_columns(), 3);
    let src = batch.column(0).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
    assert_eq!(src.value(0), "10.0.0.2");
    assert!(FlowColumns::new(false, false, Some(&["src2dst_min_ps".into()])).is_err());
    let mut all = FlowColumns::new(true, true, None).unwrap();
    all.append(&out[0]);
    assert_eq!(all.finish().unwrap().num_columns(), flow_schema(true, true).fields().len());
}

/// Random conversations, random order of ends: every packet lands in exactly one flow, and the
/// totals per key equal the sums of the inputs.
fn conversations() -> impl Strategy<Value = Vec<(u8, u8, bool, u32, i64)>> {
    // (host a, host b, direction, wire length, gap in ms)
    proptest::collection::vec((0u8..4, 0u8..4, any::<bool>(), 40u32..1500, 0i64..5000), 1..400)
}

proptest! {
    #[test]
    fn every_packet_is_counted_once(pkts in conversations(), idle in 1i64..4, active in 2i64..20, max_flows in 1usize..8) {
        let opts = FlowOptions {
            idle_timeout_ns: idle * S,
            active_timeout_ns: active * S,
            max_flows,
            tcp_close: true,
            ..Default::default()
        };
        let mut m = FlowMeter::new(opts);
        let mut expect: HashMap<(u8, u8), (u64, u64)> = HashMap::new();
        let mut got: HashMap<(u8, u8), (u64, u64)> = HashMap::new();
        let mut t = 0i64;
        let mut records = Vec::new();
        for (i, &(a, b, dir, len, gap)) in pkts.iter().enumerate() {
            t += gap * 1_000_000;
            let (ha, hb) = ([10, 0, 0, a], [10, 0, 0, b]);
            let flags = if i % 7 == 0 { 0x11 } else if i % 11 == 0 { 0x04 } else { 0x10 };
            let p = if dir { tcp(ha, 1000 + u16::from(a), hb, 80, flags) } else { tcp(hb, 80, ha, 1000 + u16::from(a), flags) };
            m.observe(&p, Some(t), len);
            let e = expect.entry((a, b)).or_default();
            e.0 += 1;
            e.1 += u64::from(len);
            records.extend(m.drain());
        }
        m.finish();
        records.extend(m.drain());
        let mut ids = std::collections::HashSet::new();
        for r in &records {
            prop_assert!(ids.insert(r.flow.flow_id));
            prop_assert!(r.flow.packets[0] >= 1, "the first packet is src to dst");
            prop_assert!(r.flow.last_ns - r.flow.first_ns < active * S);
            let k = r.flow.key;
            // The server end has port 80, the client end port 1000 + its host byte.
            let (client, server) = if k.hi_port == 80 { (k.lo_ip[3], k.hi_ip[3]) } else { (k.hi_ip[3], k.lo_ip[3]) };
            let key = (client, server);
            let e = got.entry(key).or_default();
            e.0 += r.flow.packets[0] + r.flow.packets[1];
            e.1 += r.flow.bytes[0] + r.flow.bytes[1];
        }
        let total: u64 = got.values().map(|v| v.0).sum();
        prop_assert_eq!(total, pkts.len() as u64);
        prop_assert_eq!(got, expect);
        prop_assert_eq!(m.stats().active, 0);
    }
}

#[test]
fn reader_yields_for_ctrl_c_without_losing_packets() {
    // A classic pcap of 50 packets of one UDP flow, in memory.
    let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&65535u32.to_le_bytes());
    file.extend_from_slice(&101u32.to_le_bytes()); // raw IP
    for i in 0..50u32 {
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        ip.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        file.extend_from_slice(&(1_700_000_000 + i).to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(&28u32.to_le_bytes());
        file.extend_from_slice(&28u32.to_le_bytes());
        file.extend_from_slice(&ip);
    }
    let source = crate::source::from_reader("mem", Box::new(std::io::Cursor::new(file))).unwrap();
    let mut reader = FlowReader::from_source(source, FlowOptions::default(), None, 16, false).unwrap();
    reader.yield_every(8);
    let (mut pauses, mut rows) = (0, 0);
    loop {
        match reader.next_batch() {
            Err(crate::error::Error::Interrupted) => pauses += 1,
            Ok(Some(b)) => rows += b.num_rows(),
            Ok(None) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((pauses, rows), (6, 1));
    let s = reader.stats();
    assert_eq!((s.packets, s.metered, s.flows), (50, 50, 1));
}
