"""The transport layer (TCP, UDP, UDP-Lite, SCTP, ICMP, ICMPv6): ports, TCP fields, ICMP type
and code, the payload length, and the Community ID of the flow, checked against tshark's."""

from __future__ import annotations

from typing import Any

from .community_id import community_id
from .contract import DEEPER_THAN_CONTRACT
from .model import AnyOf, IpLayer, to_int
from .tshark import Frame


def transport_columns(f: Frame, chain: list[str], ip: IpLayer, proto: int | None,
                      ip_payload: int | None, tunnelled: bool, v: dict[str, Any],
                      notes: list[str], errors: list[str]) -> None:  # fmt: skip
    """The transport columns of ``ip``'s transport layer, and the flow's Community ID."""
    t = ip.transport if ip.transport is not None else len(chain)
    name = chain[t] if t < len(chain) else None
    sport = dport = None
    if name == "tcp":
        sport, dport = to_int(f.at("tcp.srcport", t)), to_int(f.at("tcp.dstport", t))
        v["tcp_flags"] = to_int(f.at("tcp.flags", t), 16)
        v["tcp_seq"] = to_int(f.at("tcp.seq_raw", t))
        v["tcp_ack"] = to_int(f.at("tcp.ack_raw", t))
        v["tcp_window"] = to_int(f.at("tcp.window_size_value", t))
        hdr_len = to_int(f.at("tcp.hdr_len", t))  # bytes (tshark omits tcp.len for fragments)
        v["payload_len"] = None if ip_payload is None or hdr_len is None else ip_payload - hdr_len
        if any(note.startswith("IPv4 total length 0") for note in notes):
            v["payload_len"] = to_int(f.at("tcp.len", t))  # from tshark's TSO run: frame-based
    elif name in ("udp", "udplite"):
        sport, dport = to_int(f.at("udp.srcport", t)), to_int(f.at("udp.dstport", t))
        length = to_int(f.at("udp.length", t))
        if name == "udp":
            v["payload_len"] = None if length is None else length - 8
        else:  # UDP-Lite's length field is a checksum coverage; the contract says "UDP"
            v["payload_len"] = AnyOf(
                (None if ip_payload is None else ip_payload - 8,), "UDP-Lite: IP payload - 8"
            )
    elif name == "sctp":
        sport, dport = to_int(f.at("sctp.srcport", t)), to_int(f.at("sctp.dstport", t))
        v["payload_len"] = None if ip_payload is None else ip_payload - 12
    elif name in ("icmp", "icmpv6"):
        v["icmp_type"] = to_int(f.at(f"{name}.type", t))
        v["icmp_code"] = to_int(f.at(f"{name}.code", t))
        v["payload_len"] = None if ip_payload is None else ip_payload - 8
    elif proto in (6, 17, 132, 136, 1, 58):
        # no transport layer although the protocol has one: a non-first fragment. The contract's
        # per-protocol formula needs the transport header; the IP payload is the other reading.
        v["payload_len"] = AnyOf((None, ip_payload), "non-first fragment")
    else:
        v["payload_len"] = ip_payload
    v["src_port"], v["dst_port"] = sport, dport

    # Community ID
    src, dst = v["src_ip"], v["dst_ip"]
    tshark_cid = f.first("communityid")
    if src is None or dst is None or proto is None:
        v["community_id"] = None
        return
    ours: Any
    if name in ("tcp", "udp", "sctp") and sport is not None and dport is not None:
        ours = community_id(proto, src, dst, sport, dport)
        comparable = True
    elif name == "udplite" and sport is not None and dport is not None:
        # tshark hashes UDP-Lite as UDP (17); the spec has ports only for TCP/UDP/SCTP
        ours = AnyOf((community_id(136, src, dst), community_id(136, src, dst, sport, dport)),
                     "UDP-Lite: spec hashes no ports, the contract lists UDP-Lite ports")  # fmt: skip
        comparable = False
    elif proto in (6, 17, 132):
        ours = None  # contract: NULL for TCP/UDP/SCTP without ports (tshark: IP-only hash)
        comparable = False
    elif name in ("icmp", "icmpv6") and v["icmp_type"] is not None:
        ours = community_id(proto, src, dst, v["icmp_type"], v["icmp_code"])
        comparable = True
    elif proto in (1, 58):
        ours = AnyOf((None, community_id(proto, src, dst)), "ICMP without its header")
        comparable = False
    else:
        # IP-only flow. tshark hashes it only for IPv4 and takes the protocol from the OUTERMOST
        # IP header; the contract hashes the innermost 5-tuple, for IPv6 too.
        ours = community_id(proto, src, dst)
        comparable = v["ip_version"] == 4 and not tunnelled
    deeper = any(note.split(":")[0] in DEEPER_THAN_CONTRACT for note in notes)
    # tshark hashes a transport header cut by caplen as IP-only, whatever ports it shows
    comparable = comparable and not any(note.startswith("header cut") for note in notes)
    # Where tshark's flow is the contract's, the oracle's own hash must agree with tshark's (tshark
    # emits none for a few ICMPv6 types, e.g. 143; the own hash stands there).
    if comparable and not deeper and tshark_cid is not None and tshark_cid != ours:
        errors.append(f"own Community ID {ours} != tshark {tshark_cid} for {chain}")
    v["community_id"] = ours
