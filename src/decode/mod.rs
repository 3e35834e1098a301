//! Frame bytes to header fields.
//!
//! Decoding is lax, in the manner of etherparse's `LaxSlicedPacket` and smoltcp: each layer reads
//! what the captured bytes hold, records the first problem in [`Packet::status`] and stops going
//! deeper; it never panics and never fails the file. Layers live one per file: the link layer
//! ([`link`]), IPv4/IPv6 ([`ip`]), transports ([`transport`]) and encapsulations ([`tunnel`]).
//! The Community ID flow hash is computed from the decoded fields ([`community_id`]).
//!
//! # Why hand-written, and not etherparse
//!
//! The design card names `etherparse` for header parsing. Its lax slicing (`LaxSlicedPacket`,
//! 0.21.0, the latest 0.x) was measured against this decoder on the layers it covers (Ethernet,
//! VLAN, IPv4/IPv6 with extension headers, TCP, UDP, ICMP), decoding the same Ethernet frames
//! into the same [`Packet`] fields (`etherparse_speed` in `tests.rs`, an ignored timing test run
//! in release; best of 5, 2-core shared machine, `nice -n 19`):
//!
//! | frames | hand-written | etherparse into the fields | etherparse slicing alone |
//! | --- | --- | --- | --- |
//! | corpus (`tests/data` + shared corpus, 3,443 frames) | 54 ns | 159 ns | 93 ns |
//! | `bench_decode.py` synthetic capture (100,000 frames) | 214 ns | 324 ns | 241 ns |
//! | generated VLAN/IPv4/IPv6+ext/TCP/UDP/ICMP (36 frames) | 26 ns | 135 ns | 134 ns |
//!
//! etherparse is 1.5-5x slower even before its fields are read (it validates and slices every
//! header, and its slices carry lengths we do not need), it covers none of the other layers
//! (SLL/SLL2, 802.11, radiotap, MPLS, PPPoE, LLC/SNAP, tunnels, SCTP), so adopting it would mean
//! two decoders, and in 0.21 iterating the IPv6 extension headers of a laxly sliced packet can
//! read out of bounds (an unchecked index; found by the oracle below on a second hop-by-hop
//! header). So the hand-written path stays, and etherparse is a **differential oracle**
//! (dev-dependency only): `etherparse_oracle.rs` maps its slices onto [`Packet`], and the property
//! tests (`tests.rs`: the corpus, arbitrary bytes, generated and mutated frames) and the
//! `decode_frame` fuzz target require agreement on every field both cover, or one of the
//! differences documented there (tunnels, shims, first fragments, IPv4 AH, reserved TCP bits, ...).

pub mod community_id;
mod ip;
mod link;
mod link_extra;
mod packet;
mod transport;
mod tunnel;
pub(crate) mod wire;

pub use packet::{IpAddr, Packet, Tunnel};

/// How many encapsulations deep the decoder follows before giving up (guards hostile nesting).
pub(crate) const MAX_DEPTH: u8 = 8;

/// Decodes one captured frame of the given link type into `out` (which is reset first).
///
/// ```
/// use pktstream::decode::{decode, Packet};
/// let mut p = Packet::default();
/// decode(1, &[0u8; 10], &mut p); // too short for Ethernet
/// assert_eq!(p.status.as_deref(), Some("ethernet: truncated header"));
/// ```
pub fn decode(link_type: u16, frame: &[u8], out: &mut Packet) {
    *out = Packet::default();
    link::decode_link(link_type, frame, out);
}

#[cfg(test)]
mod etherparse_oracle;
#[cfg(test)]
mod tests;
