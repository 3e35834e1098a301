//! One frame through the link/IP/transport/tunnel decoders, then the Community ID hash; Ethernet
//! frames are also decoded by etherparse, which must agree on every field both cover or differ
//! for a documented reason (`src/decode/etherparse_oracle.rs`).
//! Input: 2 bytes choosing the link type (index into LINK_TYPES, or a raw value), then the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
// The oracle file names `super::{IpAddr, Packet}`, as it does inside `pktstream::decode`.
use pktstream::decode::{community_id, decode, IpAddr, Packet};

#[path = "../../src/decode/etherparse_oracle.rs"]
#[allow(dead_code)]
mod etherparse_oracle;
use etherparse_oracle::{differences, etherparse_ethernet, Theirs};

/// The link types the decoder handles; a 12th slot means "any other value" (unsupported).
const LINK_TYPES: [u16; 11] = [0, 1, 12, 101, 105, 108, 113, 127, 228, 229, 276];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let sel = u16::from_be_bytes([data[0], data[1]]);
    // Seeds store the real link type big-endian in the prefix, which is used as is when it is a
    // supported type; any other prefix picks slot `sel % 12` of the table, slot 11 meaning the raw
    // (almost always unsupported) value itself.
    let link_type = if LINK_TYPES.contains(&sel) {
        sel
    } else {
        LINK_TYPES.get(usize::from(sel) % (LINK_TYPES.len() + 1)).copied().unwrap_or(sel)
    };
    let frame = &data[2..];
    let mut p = Packet::default();
    decode(link_type, frame, &mut p);
    let mut out = [0u8; community_id::LEN];
    if community_id::community_id(&p, &mut out) {
        assert!(out.starts_with(b"1:"), "community id without version prefix: {out:?}");
        assert!(std::str::from_utf8(&out).is_ok(), "community id is not ASCII");
    }
    // Decoding twice into the same Packet must give the same result (decode resets `out`).
    let mut q = p.clone();
    decode(link_type, frame, &mut q);
    assert_eq!(p, q, "decode is not deterministic / does not reset its output");
    if link_type == 1 {
        let mut theirs = Theirs::default();
        etherparse_ethernet(frame, &mut theirs);
        let diffs = differences(&p, &theirs);
        assert!(diffs.is_empty(), "etherparse disagrees: {diffs:#?}\nours {p:?}\netherparse {:?}", theirs.p);
    }
});
