//! A direct-mapped cache of Community IDs keyed by the flow tuple.
//!
//! Computing an ID costs a SHA-1; packets of one flow arrive close together in real traffic, so a
//! small cache indexed by a hash of the tuple turns most of those into a compare and a copy. A
//! collision simply recomputes: the cache can never return a wrong ID, only miss. The key is
//! direction-free (except for ICMP), so a reply finds the ID its request computed.
//!
//! The slots (~350 KB) do not stay in L1/L2, so each slot has a 16-bit tag from other bits of the
//! hash in a separate 8 KB array that does: a miss is usually decided there without touching the
//! slot (reading a cold slot first cost ~7% of a packet when most lookups miss), and a fresh ID
//! is handed out from the stack rather than read back from the slot just written.

use crate::decode::community_id::community_id_words;
use crate::decode::{IpAddr, Packet};

const SLOTS: usize = 4096;

/// Everything the Community ID depends on.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    icmp: Option<(u8, Option<u8>)>,
}

#[derive(Clone, Copy)]
struct Slot {
    key: Key,
    id: [u64; 4],
}

pub(crate) struct CommunityIdCache {
    /// Part of each slot's hash (0 for empty slots: a filter only, the key is always compared).
    tags: Box<[u16; SLOTS]>,
    slots: Box<[Option<Slot>; SLOTS]>,
}

impl Default for CommunityIdCache {
    fn default() -> Self {
        // Built on the heap (350 KB is a lot of stack for a thread).
        let slots = vec![None; SLOTS].into_boxed_slice().try_into();
        Self { tags: Box::new([0; SLOTS]), slots: slots.unwrap_or_else(|_| unreachable!("vec of SLOTS")) }
    }
}

impl CommunityIdCache {
    /// The packet's Community ID (as [`community_id_words`]), or `None` if it has no flow.
    #[inline]
    pub(crate) fn get(&mut self, p: &Packet) -> Option<[u64; 4]> {
        let (Some(src), Some(dst), Some(proto)) = (p.src_ip, p.dst_ip, p.ip_proto) else {
            return None;
        };
        // Both directions of a flow share one ID (and so one slot): the key puts the lower
        // endpoint first. Not for ICMP, whose ID maps message types to their replies, so a key
        // with the type must keep its direction.
        let (mut src, mut dst, mut src_port, mut dst_port) = (src, dst, p.src_port, p.dst_port);
        if p.icmp_type.is_none() && (dst, dst_port) < (src, src_port) {
            std::mem::swap(&mut src, &mut dst);
            std::mem::swap(&mut src_port, &mut dst_port);
        }
        let key = Key { src, dst, proto, src_port, dst_port, icmp: p.icmp_type.map(|t| (t, p.icmp_code)) };
        let h = hash(&key);
        let (index, tag) = (h as usize % SLOTS, (h >> 16) as u16);
        if self.tags[index] == tag {
            if let Some(slot) = &self.slots[index] {
                if slot.key == key {
                    return Some(slot.id);
                }
            }
        }
        let id = community_id_words(p)?;
        self.tags[index] = tag;
        self.slots[index] = Some(Slot { key, id });
        Some(id)
    }
}

/// FxHash-style mixing of the tuple (fast; quality only affects the hit rate).
fn hash(k: &Key) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = 0u64;
    let mut mix = |v: u64| h = (h.rotate_left(5) ^ v).wrapping_mul(K);
    for ip in [k.src, k.dst] {
        match ip {
            IpAddr::V4(a) => mix(u64::from(u32::from_ne_bytes(a))),
            IpAddr::V6(a) => {
                let (hi, lo) = a.split_at(8);
                mix(u64::from_ne_bytes(hi.try_into().unwrap_or_default()));
                mix(u64::from_ne_bytes(lo.try_into().unwrap_or_default()));
            }
        }
    }
    let ports = u64::from(k.src_port.unwrap_or(0)) << 16 | u64::from(k.dst_port.unwrap_or(0));
    let icmp = k.icmp.map_or(0, |(t, c)| u64::from(t) << 8 | u64::from(c.unwrap_or(0)));
    mix(ports << 24 | icmp << 8 | u64::from(k.proto));
    h >> 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_ids_equal_fresh_ones_and_collisions_recompute() {
        let mut cache = CommunityIdCache::default();
        let mut p = Packet {
            src_ip: Some(IpAddr::V4([10, 0, 0, 1])),
            dst_ip: Some(IpAddr::V4([10, 0, 0, 2])),
            ip_proto: Some(6),
            src_port: Some(1),
            ..Default::default()
        };
        for port in 0..20_000u16 {
            p.dst_port = Some(port);
            let fresh = community_id_words(&p);
            assert!(fresh.is_some());
            assert_eq!(cache.get(&p), fresh);
            assert_eq!(cache.get(&p), fresh);
        }
        p.src_port = None;
        assert!(cache.get(&p).is_none());
    }

    #[test]
    fn both_directions_share_a_slot_and_icmp_keeps_its_direction() {
        let mut cache = CommunityIdCache::default();
        let fwd = Packet {
            src_ip: Some(IpAddr::V6([1; 16])),
            dst_ip: Some(IpAddr::V6([2; 16])),
            ip_proto: Some(17),
            src_port: Some(5353),
            dst_port: Some(53),
            ..Default::default()
        };
        let rev = Packet {
            src_ip: fwd.dst_ip,
            dst_ip: fwd.src_ip,
            src_port: fwd.dst_port,
            dst_port: fwd.src_port,
            ..fwd.clone()
        };
        let id = cache.get(&fwd);
        assert!(id.is_some());
        assert_eq!(community_id_words(&rev), id);
        // The reverse packet hits the forward packet's slot: poison it to prove it.
        let slot = cache.slots.iter_mut().flatten().find(|s| s.id == id.unwrap_or_default());
        slot.expect("cached").id = [7; 4];
        assert_eq!(cache.get(&rev), Some([7; 4]));
        // ICMP echo request and reply: different keys, each its own (correct) ID.
        let mut cache = CommunityIdCache::default();
        let req = Packet {
            src_ip: Some(IpAddr::V4([10, 0, 0, 1])),
            dst_ip: Some(IpAddr::V4([10, 0, 0, 2])),
            ip_proto: Some(1),
            icmp_type: Some(8),
            icmp_code: Some(0),
            ..Default::default()
        };
        let reply = Packet { src_ip: req.dst_ip, dst_ip: req.src_ip, icmp_type: Some(0), ..req.clone() };
        let unreachable = Packet { icmp_type: Some(3), ..reply.clone() };
        for p in [&req, &reply, &unreachable, &req, &unreachable, &reply] {
            assert_eq!(cache.get(p), community_id_words(p));
        }
    }
}
