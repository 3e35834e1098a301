//! The link layer: Ethernet (with 802.1Q/802.1ad tags and 802.3 LLC/SNAP), Linux cooked capture
//! (SLL and SLL2), raw IP, BSD loopback, and 802.11 data frames (plain or behind radiotap); the
//! rarer ones are in [`super::link_extra`].
//! Unknown link types keep their row, with a status, so a mixed pcapng never loses packets.

use super::wire::{array, be16};
use super::{ip, link_extra, tunnel, Packet};

/// LINKTYPE_ values (tcpdump.org/linktypes.html) this decoder understands.
pub mod linktype {
    pub const NULL: u16 = 0;
    pub const ETHERNET: u16 = 1;
    pub const RAW: u16 = 101;
    /// DLT_RAW as some platforms wrote it into files.
    pub const RAW_DLT12: u16 = 12;
    pub const RAW_DLT14: u16 = 14;
    pub const IEEE802_11: u16 = 105;
    pub const LOOP: u16 = 108;
    pub const LINUX_SLL: u16 = 113;
    pub const IEEE802_11_RADIOTAP: u16 = 127;
    pub const IPV4: u16 = 228;
    pub const IPV6: u16 = 229;
    pub const LINUX_SLL2: u16 = 276;
}

pub(crate) fn decode_link(link_type: u16, frame: &[u8], p: &mut Packet) {
    use linktype::*;
    match link_type {
        ETHERNET => ethernet(frame, p, 0),
        LINUX_SLL => sll(frame, p),
        LINUX_SLL2 => sll2(frame, p),
        RAW | RAW_DLT12 | RAW_DLT14 => ip::ip_by_version(frame, p, 0, "raw"),
        IPV4 => ip::ipv4(frame, p, 0),
        IPV6 => ip::ipv6(frame, p, 0),
        NULL => null_loopback(frame, p, false),
        LOOP => null_loopback(frame, p, true),
        IEEE802_11 => wlan(frame, p),
        IEEE802_11_RADIOTAP => radiotap(frame, p),
        other => {
            if !link_extra::decode(other, frame, p) {
                p.fail(format!("link: unsupported link type {other}"));
            }
        }
    }
}

/// An Ethernet II / 802.3 frame. `depth > 0` means an inner frame (VXLAN, GRE bridging): its
/// addresses and tags are not recorded, so the columns keep describing the wire.
pub(crate) fn ethernet(data: &[u8], p: &mut Packet, depth: u8) {
    let outer = depth == 0;
    if data.len() < 14 {
        p.fail(if outer { "ethernet: truncated header" } else { "inner ethernet: truncated header" });
        return;
    }
    if outer {
        p.eth_dst = Some(array(data, 0));
        p.eth_src = Some(array(data, 6));
    }
    ethertype_payload(be16(data, 12), &data[14..], p, depth, outer);
}

/// What follows an ethertype: VLAN tags, an 802.3 LLC/SNAP header, then the network layer.
fn ethertype_payload(mut ethertype: u16, mut rest: &[u8], p: &mut Packet, depth: u8, record: bool) {
    let mut tags = 0u8;
    while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0x9300) {
        if rest.len() < 4 {
            p.fail("vlan: truncated tag");
            return;
        }
        let vid = be16(rest, 0) & 0x0fff;
        if record {
            match tags {
                0 => p.vlan_id = Some(vid),
                1 => p.inner_vlan_id = Some(vid),
                _ => {}
            }
        }
        tags = tags.saturating_add(1);
        ethertype = be16(rest, 2);
        rest = &rest[4..];
    }
    if ethertype <= 1500 {
        // 802.3 length field: only an LLC/SNAP header carries an ethertype.
        match snap_ethertype(rest) {
            Some(t) => {
                ethertype = t;
                rest = &rest[8..];
            }
            None => return,
        }
    }
    if record {
        p.ethertype = Some(ethertype);
    }
    network(ethertype, rest, p, depth);
}

/// Dispatches on an ethertype to the network layer (or a shim that leads to one).
pub(crate) fn network(ethertype: u16, rest: &[u8], p: &mut Packet, depth: u8) {
    match ethertype {
        0x0800 => ip::ipv4(rest, p, depth),
        0x86dd => ip::ipv6(rest, p, depth),
        0x8847 | 0x8848 => tunnel::mpls(rest, p, depth),
        0x8864 => tunnel::pppoe_session(rest, p, depth),
        _ => {}
    }
}

/// Linux cooked capture v1: 16-byte pseudo header ending in the protocol (an ethertype).
fn sll(data: &[u8], p: &mut Packet) {
    if data.len() < 16 {
        p.fail("sll: truncated header");
        return;
    }
    let addr_len = be16(data, 4);
    if addr_len == 6 {
        p.eth_src = Some(array(data, 6));
    }
    cooked_protocol(be16(data, 14), &data[16..], p);
}

/// Linux cooked capture v2: 20-byte pseudo header starting with the protocol.
fn sll2(data: &[u8], p: &mut Packet) {
    if data.len() < 20 {
        p.fail("sll2: truncated header");
        return;
    }
    if data[11] == 6 {
        p.eth_src = Some(array(data, 12));
    }
    cooked_protocol(be16(data, 0), &data[20..], p);
}

fn cooked_protocol(protocol: u16, rest: &[u8], p: &mut Packet) {
    match protocol {
        // ETH_P_802_2: an LLC header follows (ethertype only behind SNAP).
        0x0004 => ethertype_payload(0, rest, p, 0, true),
        // Other ETH_P_ pseudo-protocols below 1536 (802.3 raw, CAN, ...) carry no ethertype.
        0..=1500 => {}
        _ => ethertype_payload(protocol, rest, p, 0, true),
    }
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte order (`LINKTYPE_NULL`)
/// or network order (`LINKTYPE_LOOP`).
fn null_loopback(data: &[u8], p: &mut Packet, network_order: bool) {
    if data.len() < 4 {
        p.fail("null: truncated header");
        return;
    }
    let raw = [data[0], data[1], data[2], data[3]];
    let family = if network_order {
        u32::from_be_bytes(raw)
    } else {
        // Host order of an unknown host: a family is small, so the order that gives a small value wins.
        let le = u32::from_le_bytes(raw);
        if le & 0xffff_0000 != 0 {
            u32::from_be_bytes(raw)
        } else {
            le
        }
    };
    let rest = &data[4..];
    match family {
        2 => ip::ipv4(rest, p, 0),
        // AF_INET6 on Linux (10), the BSDs (24), FreeBSD (28) and Darwin (30).
        10 | 24 | 28 | 30 => ip::ipv6(rest, p, 0),
        other => p.fail(format!("null: unknown address family {other}")),
    }
}

/// Radiotap: a little-endian length at bytes 2..4, then an 802.11 frame.
fn radiotap(data: &[u8], p: &mut Packet) {
    if data.len() < 4 {
        p.fail("radiotap: truncated header");
        return;
    }
    let len = u16::from_le_bytes([data[2], data[3]]) as usize;
    if len < 8 || data.len() < len {
        p.fail("radiotap: truncated header");
        return;
    }
    wlan(&data[len..], p);
}

/// An 802.11 frame: only unprotected data frames carry LLC/SNAP and so an IP packet.
fn wlan(data: &[u8], p: &mut Packet) {
    if data.len() < 2 {
        p.fail("802.11: truncated header");
        return;
    }
    let fc0 = data[0];
    let flags = data[1];
    let frame_type = (fc0 >> 2) & 0x3;
    let subtype = fc0 >> 4;
    if frame_type != 2 || subtype & 0x4 != 0 || flags & 0x40 != 0 {
        // Management/control, a data frame without a body (null function), or protected.
        return;
    }
    let mut hdr = 24;
    if flags & 0x3 == 0x3 {
        hdr += 6; // four-address frame
    }
    if subtype & 0x8 != 0 {
        hdr += 2; // QoS control
        if flags & 0x80 != 0 {
            hdr += 4; // HT control
        }
    }
    if data.len() < hdr {
        p.fail("802.11: truncated header");
        return;
    }
    let body = &data[hdr..];
    if let Some(ethertype) = snap_ethertype(body) {
        p.ethertype = Some(ethertype);
        network(ethertype, &body[8..], p, 0);
    }
}

/// The ethertype behind an LLC/SNAP header, if the header is one whose protocol id *is* an
/// ethertype: OUI 00-00-00 (RFC 1042) or 00-00-F8 (802.1H). Other OUIs (Cisco's CDP, ...) carry
/// their own protocol numbers, which are not ethertypes.
pub(crate) fn snap_ethertype(llc: &[u8]) -> Option<u16> {
    match llc {
        [0xaa, 0xaa, 0x03, 0x00, 0x00, 0x00 | 0xf8, hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}
