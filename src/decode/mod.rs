//! Frame bytes to header fields.
//!
//! Decoding is lax, in the manner of etherparse's `LaxSlicedPacket` and smoltcp: each layer reads
//! what the captured bytes hold, records the first problem in [`Packet::status`] and stops going
//! deeper; it never panics and never fails the file. Layers live one per file: the link layer
//! ([`link`]), IPv4/IPv6 ([`ip`]), transports ([`transport`]) and encapsulations ([`tunnel`]).
//! The Community ID flow hash is computed from the decoded fields ([`community_id`]).

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
mod tests;
