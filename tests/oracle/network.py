"""The network and tunnel layers: IPv4 and IPv6 with extension headers, IP-in-IP, GRE (with
ERSPAN and PPTP's PPP), MPLS, PPPoE, VXLAN, Geneve, GTP-U and Teredo; where tshark goes deeper
than the contract; and the IP columns, of the innermost IP header inside the innermost tunnel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .contract import DECODE_COLUMNS, DEEPER_THAN_CONTRACT, NETWORKISH, TRANSPORTS
from .model import IpLayer, Walk, to_bool, to_int
from .transport import transport_columns

IPV6_EXT_NEXT: dict[str, tuple[str, str | None, Callable[[int], int] | None]] = {
    # layer -> (next-header field, length field, length field value -> header bytes)
    "ipv6.hopopts": ("ipv6.hopopts.nxt", "ipv6.hopopts.len_oct", lambda v: v),
    "ipv6.routing": ("ipv6.routing.nxt", "ipv6.routing.len_oct", lambda v: v),
    "ipv6.dstopts": ("ipv6.dstopts.nxt", "ipv6.dstopts.len_oct", lambda v: v),
    "ipv6.fraghdr": ("ipv6.fraghdr.nxt", None, None),
    "ah": ("ah.next_header", "ah.length", lambda v: (v + 2) * 4),
    "mipv6": ("mip6.proto", "mip6.hlen", lambda v: (v + 1) * 8),
    "hip": ("hip.proto", "hip.hdr_len", lambda v: (v + 1) * 8),
    "shim6": ("shim6.nxt", "shim6.len", lambda v: (v + 1) * 8),
}
#: UDP ports on which pktstream decodes a tunnel, like tshark on either port (Teredo is beyond the
#: contract's list of tunnel kinds, but src/decode/tunnel.rs decodes it as "teredo").
UDP_TUNNELS: dict[str, int] = {"vxlan": 4789, "geneve": 6081, "gtp": 2152, "teredo": 3544}


def walk_network(w: Walk) -> None:
    """Walks the network and tunnel layers from ``w.i``; fills ``w.ips``, ``w.tunnel``,
    ``w.inner_from`` and ``w.stop`` (the first layer the contract does not decode).

    A tunnel counts once pktstream "enters" it, i.e. decodes its payload: from then on the network
    columns describe only the layers inside (none, if the payload holds no IP header), and the
    outermost IP header goes to outer_src_ip/outer_dst_ip."""
    f, chain, n, ips, i = w.frame, w.chain, w.n, w.ips, w.i
    skip_ethertype, end_ok = w.skip_ethertype, w.end_ok
    tunnel = w.tunnel
    state = "l3"  # what may come next
    pending: str | None = None  # tunnel kind whose payload comes next
    inner_from = 0  # index in `ips` of the first IP header inside the innermost tunnel entered
    stop: int | None = None

    def enter() -> None:
        nonlocal tunnel, pending, inner_from
        if pending is not None:
            tunnel = tunnel or pending
            inner_from, pending = len(ips), None

    while i < n:
        name = chain[i]
        if name == "ethertype":
            i += 1
        elif (
            state in ("l3", "gre", "geneve", "gtp")
            and name in ("ip", "ipv6")
            or (state == "teredo" and name == "ipv6")
        ):
            enter()
            layer = IpLayer(i, 4 if name == "ip" else 6)
            ips.append(layer)
            i += 1
            if not end_ok(i - 1):
                break
            while name == "ipv6" and i < n and chain[i] in IPV6_EXT_NEXT:
                layer.ext.append(i)
                i += 1
            state = "ip"
        elif state == "ip" and name in ("ip", "ipv6"):  # IP in IP (protocols 4 and 41)
            pending, state = "ipip", "l3"
        elif state == "ip" and name == "gre":
            pending, state = "gre", "gre"
            i += 1
        elif state == "gre" and name == "erspan":
            i += 1
        elif state == "gre" and name == "ppp" and i + 1 < n and chain[i + 1] in ("ip", "ipv6"):
            # PPTP's enhanced GRE: beyond the contract's list, decoded by src/decode/tunnel.rs
            i += 1
        elif state in ("l3", "gre") and name == "mpls":
            enter()
            state = "l3"
            i += 1
        elif state in ("gre", "vxlan", "geneve") and name == "eth":
            # transparent Ethernet (GRE 0x6558, ERSPAN, VXLAN, Geneve): its tags are not reported
            enter()
            end_ok(i)
            i = skip_ethertype(i + 1)
            while i < n and chain[i] in ("vlan", "ieee8021ad"):
                end_ok(i)
                i = skip_ethertype(i + 1)
            state = "l3"
        elif state == "l3" and name == "pppoes" and not ips:
            if i + 1 < n and chain[i + 1] == "ppp":
                i += 2
            else:
                stop = i + 1
                break
        elif state == "ip" and name in TRANSPORTS:
            ips[-1].transport = i
            i += 1
            if not end_ok(i - 1):
                break
            ports = {to_int(f.at("udp.srcport", i - 1)), to_int(f.at("udp.dstport", i - 1))}
            if name == "udp" and i < n and UDP_TUNNELS.get(chain[i]) in ports:
                pending = state = chain[i]
                i += 1
            else:
                stop = i
                break
        else:
            stop = i
            break
    if stop is None:
        stop = i
    w.i, w.tunnel, w.inner_from, w.stop = i, tunnel, inner_from, stop


def deeper_than_contract(w: Walk) -> None:
    """Notes why tshark decodes past where the walk stopped; an oracle error if the table has no
    reason for it."""
    chain, stop = w.chain, w.stop
    rest = chain[stop:]
    previous = chain[stop - 1] if stop > 0 else None
    if rest and previous not in ("icmp", "icmpv6") and NETWORKISH.intersection(rest):
        key = f"{previous}>{rest[0]}" if rest[0] in NETWORKISH else rest[0]
        reason = DEEPER_THAN_CONTRACT.get(key)
        if reason is None:
            w.errors.append(
                f"tshark decodes deeper than the contract through {key!r} ({':'.join(chain)}); "
                "add it to DEEPER_THAN_CONTRACT with a reason"
            )
        else:
            w.notes.append(f"{key}: {reason}")


def ip_columns(w: Walk, v: dict[str, Any]) -> None:
    """The IP columns (of the innermost decoded IP header inside the innermost tunnel entered),
    the transport columns under it, and the tunnel columns."""
    f, chain, ips, tunnel, inner_from = w.frame, w.chain, w.ips, w.tunnel, w.inner_from
    notes, errors = w.notes, w.errors
    for column in DECODE_COLUMNS[5:]:
        v[column] = None
    if ips[inner_from:]:
        ip = ips[-1]
        p = ip.pos
        v["ip_version"] = ip.version
        final_proto: int | None
        if ip.version == 4:
            v["src_ip"], v["dst_ip"] = f.at("ip.src", p), f.at("ip.dst", p)
            final_proto = to_int(f.at("ip.proto", p))
            v["ttl"] = to_int(f.at("ip.ttl", p))
            v["ip_len"] = to_int(f.at("ip.len", p))
            offset = to_int(f.at("ip.frag_offset", p))
            v["frag_offset"] = None if offset is None else offset * 8  # tshark: 8-byte units
            v["more_fragments"] = to_bool(f.at("ip.flags.mf", p))
            hdr_len = to_int(f.at("ip.hdr_len", p))
            ip_payload = None if v["ip_len"] is None or hdr_len is None else v["ip_len"] - hdr_len
            if v["ip_len"] == 0:  # TSO (see run_tshark): pktstream takes the length from the frame
                notes.append("IPv4 total length 0 (TSO)")
                ip_payload = None
        else:
            v["src_ip"], v["dst_ip"] = f.at("ipv6.src", p), f.at("ipv6.dst", p)
            final_proto = to_int(f.at("ipv6.nxt", p))
            v["ttl"] = to_int(f.at("ipv6.hlim", p))
            plen = to_int(f.at("ipv6.plen", p))
            v["ip_len"] = None if plen is None else 40 + plen
            ip_payload = plen
            for e in ip.ext:
                nxt_field, len_field, to_bytes = IPV6_EXT_NEXT[chain[e]]
                final_proto = to_int(f.at(nxt_field, e))
                if chain[e] == "ipv6.fraghdr":
                    offset = to_int(f.at("ipv6.fraghdr.offset", e))
                    v["frag_offset"] = None if offset is None else offset * 8  # 8-byte units
                    v["more_fragments"] = to_bool(f.at("ipv6.fraghdr.more", e))
                    ext_len: int | None = 8
                else:
                    raw = to_int(f.at(len_field, e)) if len_field else None
                    ext_len = None if raw is None or to_bytes is None else to_bytes(raw)
                ip_payload = None if ip_payload is None or ext_len is None else ip_payload - ext_len
        v["ip_proto"] = final_proto
        tunnelled = tunnel is not None or len(ips) > 1
        transport_columns(f, chain, ip, final_proto, ip_payload, tunnelled, v, notes, errors)
    v["tunnel"] = tunnel
    if tunnel is not None:
        outer = ips[0]
        src, dst = ("ip.src", "ip.dst") if outer.version == 4 else ("ipv6.src", "ipv6.dst")
        v["outer_src_ip"], v["outer_dst_ip"] = f.at(src, outer.pos), f.at(dst, outer.pos)
