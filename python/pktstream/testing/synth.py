"""Deterministic synthetic packet captures, with the column values a decoder must produce.

The generator builds Ethernet frames from a seeded :class:`random.Random`, so the same ``seed``
always gives byte-identical captures. Every frame comes with an ``expected`` dict that holds, for
each header column of the pktstream schema, the value the decoder has to produce for it (``None``
where the packet does not have the field). Tests compare decoders against it; benchmarks use it
to make large, realistic captures without shipping any.

The mix imitates an enterprise uplink: mostly TCP (handshakes, pure ACKs, full-MSS segments) and
UDP over IPv4 and IPv6, with 802.1Q and QinQ tags, IPv6 extension headers, IPv4 and IPv6
fragments, ICMP, IP-in-IP / GRE / VXLAN tunnels, ARP, 802.3 spanning tree, snaplen-truncated
frames (headers complete) and a few frames cut inside the TCP header. A million packets average
~560 bytes per frame and are written in well under a minute. Only the standard library is used.

Example:
    >>> import tempfile, os
    >>> from pktstream.testing import synth
    >>> first = next(synth.packets(1, seed=7))
    >>> first == next(synth.packets(1, seed=7))
    True
    >>> sorted(first.expected) == sorted(synth.EXPECTED_KEYS)
    True
    >>> path = os.path.join(tempfile.mkdtemp(), "demo.pcap")
    >>> rows = synth.write_pcap(path, 100, seed=7, return_expected=True)
    >>> len(rows), rows[0]["frame_number"], rows[0]["caplen"] <= rows[0]["wirelen"]
    (100, 1, True)

Command line: ``python -m pktstream.testing.synth OUT.pcap -n 100000 [--seed S] [--pcapng] [--ns]``.
"""

from __future__ import annotations

import argparse
import gzip
import random
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, BinaryIO

from .._sink import PcapWriter

__all__ = [
    "EXPECTED_KEYS",
    "SynthPacket",
    "main",
    "packets",
    "write_pcap",
    "write_pcapng",
]

#: Keys of :attr:`SynthPacket.expected`: header columns of the contract, plus the clean-decode flag.
EXPECTED_KEYS: tuple[str, ...] = (
    "eth_src",
    "eth_dst",
    "ethertype",
    "vlan_id",
    "inner_vlan_id",
    "ip_version",
    "src_ip",
    "dst_ip",
    "ip_proto",
    "ttl",
    "ip_len",
    "frag_offset",
    "more_fragments",
    "src_port",
    "dst_port",
    "tcp_flags",
    "tcp_seq",
    "tcp_ack",
    "tcp_window",
    "icmp_type",
    "icmp_code",
    "payload_len",
    "tunnel",
    "outer_src_ip",
    "outer_dst_ip",
    "decode_status_is_null",
)

_TEMPLATE: dict[str, Any] = dict.fromkeys(EXPECTED_KEYS)
_TEMPLATE["decode_status_is_null"] = True

#: 2024-01-01T00:00:00Z, the first timestamp (plus a seeded jitter below one second).
_BASE_TS_NS = 1_704_067_200 * 1_000_000_000

_ETH = struct.Struct("!6s6sH")
_TAG = struct.Struct("!HHH")  # TPID, TCI, next ethertype
_QINQ = struct.Struct("!HHHHH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP4_WORDS = struct.Struct("!10H")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIHHHH")
_UDP = struct.Struct("!HHHH")
_ICMP = struct.Struct("!BBHHH")
_EXT8 = struct.Struct("!BB6s")  # an 8-byte IPv6 extension header: next header, length, body
_FRAG6 = struct.Struct("!BBHI")
_GRE = struct.Struct("!HH")
_VXLAN = struct.Struct("!II")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_U32 = struct.Struct("<I")

_PAD60 = bytes(60)
_BROADCAST = (b"\xff" * 6, "ff:ff:ff:ff:ff:ff")
# TCP options: SYN (MSS, SACK-permitted, timestamps, NOP, window scale) and data (NOP NOP TS).
_OPT_SYN = bytes.fromhex("020405b40402080a") + bytes(8) + bytes.fromhex("01030307")
_OPT_TS = bytes.fromhex("0101080a") + bytes(8)
_SERVER_PORTS_TCP = (443, 443, 443, 80, 80, 22, 8080, 3306, 5432, 993, 25, 8443)
_SERVER_PORTS_UDP = (53, 53, 53, 443, 123, 5353, 51820, 161, 514, 1900)


@dataclass(frozen=True)
class SynthPacket:
    """One synthetic frame and what a decoder must read from it.

    Attributes:
        frame: The captured bytes (shorter than ``wirelen`` for truncated frames).
        wirelen: The frame's length on the wire (Ethernet padding included, FCS excluded).
        ts_ns: Capture time in nanoseconds since the Unix epoch (writers with microsecond
            resolution store ``ts_ns // 1000``).
        expected: Column name -> expected value, for every name in :data:`EXPECTED_KEYS`.
        kind: What was generated (``"tcp4"``, ``"udp6"``, ``"vxlan"``, ``"frag4"``, ``"snap"``,
            ``"trunc"``, ...), for tests and debugging.
        header_len: How many leading bytes hold headers; a capture cut shorter than this no
            longer decodes cleanly, so the writers refuse a ``snaplen`` below it.

    Example:
        >>> p = next(packets(1, seed=1))
        >>> len(p.frame) <= p.wirelen and p.expected["eth_src"].count(":")
        5
    """

    frame: bytes
    wirelen: int
    ts_ns: int
    expected: dict[str, Any]
    kind: str
    header_len: int


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


class _Generator:
    """The packet factory. Pools of addresses and a payload blob are built once per seed."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.ts = _BASE_TS_NS + rng.getrandbits(29)
        self.ident = rng.getrandbits(16)
        self.pending: list[tuple[bytes, int, dict[str, Any], str, int]] = []
        self.blob = rng.randbytes(65536 + 1600)
        macs = []
        for i in range(64):
            raw = bytearray(rng.randbytes(6))
            raw[0] &= 0xFE  # unicast
            if i % 8 == 0:
                raw[0] = 0x00  # leading zeros in the text form
            macs.append((bytes(raw), _mac(bytes(raw))))
        self.macs = macs
        v4 = []
        for i in range(512):
            r = i % 5
            if r == 0:
                a = IPv4Address(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
            elif r == 1:
                a = IPv4Address(f"192.168.{rng.randrange(8)}.{rng.randrange(1, 255)}")
            elif r == 2:
                a = IPv4Address(f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(256)}")
            elif r == 3:
                a = IPv4Address(
                    f"{rng.choice((198, 203))}.{rng.choice((51, 0))}."
                    f"{rng.randrange(256)}.{rng.randrange(1, 255)}"
                )
            else:
                a = IPv4Address(rng.randrange(1 << 24, 223 << 24))
            v4.append((a.packed, str(a)))
        self.v4 = v4
        v6 = []
        for i in range(256):
            r = i % 6
            h = [rng.getrandbits(16) | 1 for _ in range(8)]
            if r == 0:  # 2001:db8:x:y::z
                h[:2] = [0x2001, 0xDB8]
                h[4:7] = [0, 0, 0]
            elif r == 1:  # a single zero group is not compressed (RFC 5952 4.2.2)
                h[:3] = [0x2001, 0xDB8, 0]
            elif r == 2:  # link-local
                h[:4] = [0xFE80, 0, 0, 0]
            elif r == 3:  # two equal zero runs: the first one is compressed
                h[:2] = [0x2001, 0xDB8]
                h[3:5] = [0, 0]
                h[6:8] = [0, 0]
            elif r == 4:  # a short host part
                h[:2] = [0x2001, 0xDB8]
                h[2:7] = [0, 0, 0, 0, 0]
                h[7] = rng.randrange(1, 256)
            else:
                h[0] = 0x2000 | (h[0] & 0x0FFF)
            a6 = IPv6Address(b"".join(x.to_bytes(2, "big") for x in h))
            v6.append((a6.packed, str(a6)))
        self.v6 = v6
        self.mld_dst = (IPv6Address("ff02::16").packed, "ff02::16")

    # ------------------------------------------------------------------ helpers
    def payload(self, n: int) -> bytes:
        off = self.rng.getrandbits(16)
        return self.blob[off : off + n]

    def ip_pair(self, v6: bool) -> tuple[tuple[bytes, str], tuple[bytes, str]]:
        pool = self.v6 if v6 else self.v4
        bits = 8 if v6 else 9
        gb = self.rng.getrandbits
        a = pool[gb(bits)]
        b = pool[gb(bits)]
        if a is b:
            b = pool[(pool.index(a) + 1) % len(pool)]
        return a, b

    def ports(self, udp: bool) -> tuple[int, int]:
        rng = self.rng
        servers = _SERVER_PORTS_UDP if udp else _SERVER_PORTS_TCP
        server = servers[rng.getrandbits(16) % len(servers)]
        client = 32768 + rng.getrandbits(16) % 28232  # Linux ephemeral range
        return (client, server) if rng.random() < 0.5 else (server, client)

    def next_ident(self) -> int:
        self.ident = (self.ident + 1 + self.rng.getrandbits(3)) & 0xFFFF
        return self.ident

    # --------------------------------------------------------------- transports
    def tcp(self, e: dict[str, Any], header_only: bool = False) -> tuple[bytes, int]:
        """A TCP segment; fills the TCP columns of ``e``. Returns (segment, header length)."""
        rng = self.rng
        r = rng.random()
        gb = rng.getrandbits
        ack = gb(32)
        opts = b""
        plen = 0
        if r < 0.03:
            flags = 0x002 if r < 0.024 else (0x0C2 if r < 0.028 else 0x1C2)  # SYN, ECN, AccECN
            opts = _OPT_SYN
            ack = 0
        elif r < 0.06:
            flags = 0x012 if r < 0.058 else 0x052  # SYN-ACK (ECN-setup)
            opts = _OPT_SYN
        elif r < 0.08:
            flags = 0x011
            opts = _OPT_TS
        elif r < 0.09:
            flags = 0x004 if r < 0.085 else 0x014
            if flags == 0x004:
                ack = 0
        elif r < 0.44:
            flags = 0x010
            opts = _OPT_TS if r < 0.30 else b""
        else:
            flags = 0x018 if r < 0.75 else 0x010
            if r > 0.99:
                flags |= 0x020  # URG
            opts = _OPT_TS if r < 0.85 else b""
            s = rng.random()
            if s < 0.58:
                plen = 1448 if opts else 1460
            elif s < 0.75:
                plen = 1 + gb(10)  # 1..1024
            else:
                plen = 1 + gb(7)  # 1..128
        if header_only:
            plen = 0
        sport, dport = self.ports(False)
        seq = gb(32)
        win = gb(16)
        hlen = 20 + len(opts)
        urg = gb(16) if flags & 0x020 else 0
        seg = _TCP.pack(sport, dport, seq, ack, (hlen << 10) | flags, win, gb(16), urg) + opts
        e["src_port"] = sport
        e["dst_port"] = dport
        e["tcp_flags"] = flags
        e["tcp_seq"] = seq
        e["tcp_ack"] = ack
        e["tcp_window"] = win
        e["payload_len"] = plen
        e["ip_proto"] = 6
        if plen:
            seg += self.payload(plen)
        return seg, hlen

    def udp_len(self) -> int:
        s = self.rng.random()
        if s < 0.55:
            return 20 + self.rng.getrandbits(8)  # DNS-sized
        if s < 0.85:
            return 160 + self.rng.getrandbits(10)  # media, QUIC acks
        return 1200 + self.rng.getrandbits(8)  # QUIC / VPN full packets

    def udp(self, e: dict[str, Any], plen: int | None = None) -> tuple[bytes, int]:
        if plen is None:
            plen = self.udp_len()
        sport, dport = self.ports(True)
        seg = _UDP.pack(sport, dport, 8 + plen, self.rng.getrandbits(16) | 1) + self.payload(plen)
        e["src_port"] = sport
        e["dst_port"] = dport
        e["payload_len"] = plen
        e["ip_proto"] = 17
        return seg, 8

    def icmp(self, e: dict[str, Any], v6: bool) -> tuple[bytes, int]:
        rng = self.rng
        reply = rng.random() < 0.5
        if v6:
            typ = 129 if reply else 128
        else:
            typ = 0 if reply else 8
        plen = 56 if rng.random() < 0.7 else rng.getrandbits(10)
        seg = _ICMP.pack(
            typ, 0, rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(10)
        ) + self.payload(plen)
        e["icmp_type"] = typ
        e["icmp_code"] = 0
        e["payload_len"] = plen
        e["ip_proto"] = 58 if v6 else 1
        return seg, 8

    def transport(self, e: dict[str, Any], v6: bool) -> tuple[bytes, int, str]:
        r = self.rng.random()
        if r < 0.63:
            seg, h = self.tcp(e)
            return seg, h, "tcp"
        if r < 0.95:
            seg, h = self.udp(e)
            return seg, h, "udp"
        seg, h = self.icmp(e, v6)
        return seg, h, "icmp"

    # ------------------------------------------------------------------ network
    def ip4(
        self,
        e: dict[str, Any] | None,
        src: tuple[bytes, str],
        dst: tuple[bytes, str],
        proto: int,
        body: bytes,
        *,
        ttl: int = 0,
        frag: int = 0,
        mf: bool = False,
        ident: int = -1,
        total: int = 0,
        options: bytes = b"",
    ) -> bytes:
        """An IPv4 header (valid checksum) + body; fills the IP columns of ``e`` when given."""
        rng = self.rng
        if not ttl:
            ttl = (64, 128, 255, 63, 57, 117)[rng.getrandbits(16) % 6]
        if ident < 0:
            ident = self.next_ident() if rng.random() < 0.7 else 0
        ihl = 5 + len(options) // 4
        if not total:
            total = ihl * 4 + len(body)
        ff = (frag >> 3) | (0x2000 if mf else 0) | (0x4000 if (not frag and not mf and ident == 0) else 0)
        tos = 0 if rng.random() < 0.8 else 0xB8
        hdr = _IP4.pack(0x40 | ihl, tos, total, ident, ff, ttl, proto, 0, src[0], dst[0])
        s = sum(_IP4_WORDS.unpack(hdr))
        if options:
            hdr += options
            s += sum(struct.unpack(f"!{len(options) // 2}H", options))
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        csum = ~s & 0xFFFF
        hdr = hdr[:10] + csum.to_bytes(2, "big") + hdr[12:]
        if e is not None:
            e["ip_version"] = 4
            e["src_ip"] = src[1]
            e["dst_ip"] = dst[1]
            e["ip_proto"] = proto
            e["ttl"] = ttl
            e["ip_len"] = total
            e["frag_offset"] = frag
            e["more_fragments"] = mf
        return hdr + body

    def ip6(
        self,
        e: dict[str, Any] | None,
        src: tuple[bytes, str],
        dst: tuple[bytes, str],
        nh: int,
        body: bytes,
        *,
        hlim: int = 0,
        plen: int = -1,
    ) -> bytes:
        rng = self.rng
        if not hlim:
            hlim = (64, 255, 128, 58, 121)[rng.getrandbits(16) % 5]
        if plen < 0:
            plen = len(body)
        vtf = 0x60000000 | (rng.getrandbits(20) if rng.random() < 0.5 else 0)
        if e is not None:
            e["ip_version"] = 6
            e["src_ip"] = src[1]
            e["dst_ip"] = dst[1]
            e["ttl"] = hlim
            e["ip_len"] = 40 + plen
        return _IP6.pack(vtf, plen, nh, hlim, src[0], dst[0]) + body

    # ---------------------------------------------------------------- link
    def ether(
        self,
        e: dict[str, Any],
        ethertype: int,
        body: bytes,
        dst: tuple[bytes, str] | None = None,
    ) -> tuple[bytes, int]:
        """Prefixes Ethernet (and, sometimes, VLAN tags); returns (frame, link header length)."""
        rng = self.rng
        gb = rng.getrandbits
        src = self.macs[gb(6)]
        if dst is None:
            dst = self.macs[gb(6)]
        e["eth_src"] = src[1]
        e["eth_dst"] = dst[1]
        if ethertype > 1500:
            e["ethertype"] = ethertype
        r = rng.random()
        if r < 0.10:
            vid = 1 + gb(12) % 4094
            tci = (gb(3) << 13) | (gb(1) << 12) | vid
            e["vlan_id"] = vid
            return dst[0] + src[0] + _TAG.pack(0x8100, tci, ethertype) + body, 18
        if r < 0.13:
            vid = 1 + gb(12) % 4094
            ivid = 1 + gb(12) % 4094
            e["vlan_id"] = vid
            e["inner_vlan_id"] = ivid
            head = _QINQ.pack(0x88A8, (gb(3) << 13) | vid, 0x8100, (gb(3) << 13) | ivid, ethertype)
            return dst[0] + src[0] + head + body, 22
        return _ETH.pack(dst[0], src[0], ethertype) + body, 14

    # ------------------------------------------------------------------ kinds
    def plain(self, e: dict[str, Any]) -> tuple[bytes, int, str, int]:
        """IPv4/IPv6 with TCP, UDP or ICMP (the bulk of the traffic)."""
        v6 = self.rng.random() < 0.25
        seg, th, kind = self.transport(e, v6)
        a, b = self.ip_pair(v6)
        if v6:
            pkt = self.ip6(e, a, b, e["ip_proto"], seg)
            frame, lh = self.ether(e, 0x86DD, pkt)
            return frame, lh + 40 + th, kind + "6", lh + 40 + len(seg)
        pkt = self.ip4(e, a, b, e["ip_proto"], seg)
        frame, lh = self.ether(e, 0x0800, pkt)
        return frame, lh + 20 + th, kind + "4", lh + 20 + len(seg)

    def ipv6_ext(self, e: dict[str, Any]) -> tuple[bytes, int, str, int]:
        """IPv6 with hop-by-hop / destination-options extension headers, or ESP."""
        rng = self.rng
        r = rng.random()
        a, b = self.ip_pair(True)
        if r < 0.35:  # MLDv2 report behind a hop-by-hop router alert
            nrec = 1 + rng.getrandbits(2)
            body = struct.pack("!BBHHH", 143, 0, rng.getrandbits(16), 0, nrec)
            for _ in range(nrec):
                body += b"\x04\x00\x00\x00\xff\x02" + bytes(9) + rng.randbytes(5)
            hbh = _EXT8.pack(58, 0, b"\x05\x02\x00\x00\x01\x00")
            e["ip_proto"] = 58
            e["icmp_type"] = 143
            e["icmp_code"] = 0
            e["payload_len"] = len(body) - 8
            pkt = self.ip6(e, a, self.mld_dst, 0, hbh + body, hlim=1)
            ext, th = 8, 8
        elif r < 0.7:  # destination options + TCP
            seg, th = self.tcp(e)
            pkt = self.ip6(e, a, b, 60, _EXT8.pack(6, 0, b"\x01\x04\x00\x00\x00\x00") + seg)
            ext, body = 8, seg
        elif r < 0.85:  # hop-by-hop + destination options (16 bytes) + UDP
            seg, th = self.udp(e)
            hbh = _EXT8.pack(60, 0, b"\x01\x04\x00\x00\x00\x00")
            dst = bytes((17, 1)) + b"\x01\x0c" + bytes(12)
            pkt = self.ip6(e, a, b, 0, hbh + dst + seg)
            ext, body = 24, seg
        else:  # ESP: the extension walk stops, no ports
            plen = 64 + rng.getrandbits(9)
            body = rng.getrandbits(32).to_bytes(4, "big") + self.payload(plen - 4)
            e["ip_proto"] = 50
            e["payload_len"] = plen
            pkt = self.ip6(e, a, b, 50, body)
            ext, th = 0, 8
        frame, lh = self.ether(e, 0x86DD, pkt)
        return frame, lh + 40 + ext + th, "ext6", lh + 40 + ext + len(body)

    def fragments(self, e: dict[str, Any], v6: bool) -> tuple[bytes, int, str, int]:
        """A fragmented UDP datagram: the first fragment now, the rest queued in ``pending``."""
        rng = self.rng
        dlen = 8 + 2000 + rng.getrandbits(12)  # UDP datagram of 2 to 6 KB
        udp_e: dict[str, Any] = {}
        seg, _ = self.udp(udp_e, dlen - 8)
        a, b = self.ip_pair(v6)
        src_mac, dst_mac = self.macs[rng.getrandbits(6)], self.macs[rng.getrandbits(6)]
        ttl = 64 if v6 else 128
        ident = rng.getrandbits(32) if v6 else self.next_ident()
        step = 1448 if v6 else 1480
        out = []
        for off in range(0, dlen, step):
            chunk = seg[off : off + step]
            mf = off + step < dlen
            fe = _TEMPLATE.copy()
            fe["eth_src"] = src_mac[1]
            fe["eth_dst"] = dst_mac[1]
            if v6:
                fe["ethertype"] = 0x86DD
                fh = _FRAG6.pack(17, 0, off | mf, ident)
                pkt = self.ip6(fe, a, b, 44, fh + chunk, hlim=ttl)
                fe["ip_proto"] = 17
                fe["frag_offset"] = off
                fe["more_fragments"] = mf
                frame = _ETH.pack(dst_mac[0], src_mac[0], 0x86DD) + pkt
                hl = 14 + 48
            else:
                fe["ethertype"] = 0x0800
                pkt = self.ip4(fe, a, b, 17, chunk, ttl=ttl, frag=off, mf=mf, ident=ident)
                frame = _ETH.pack(dst_mac[0], src_mac[0], 0x0800) + pkt
                hl = 14 + 20
            if len(frame) < 60:
                frame += _PAD60[len(frame) :]
            if off == 0:
                fe.update(udp_e)
                hl += 8
            else:
                fe["payload_len"] = len(chunk)
            out.append((frame, hl, fe, "frag6" if v6 else "frag4", len(frame)))
        first = out.pop(0)
        out.reverse()
        self.pending = out
        e.update(first[2])
        return first[0], first[1], first[3], first[4]

    def tunnel(self, e: dict[str, Any]) -> tuple[bytes, int, str, int]:
        """IP-in-IP (and 6in4), GRE (optionally keyed) or VXLAN around an inner IPv4/IPv6 packet."""
        rng = self.rng
        r = rng.random()
        outer_a, outer_b = self.ip_pair(False)
        if r < 0.33:
            inner_v6 = rng.random() < 0.3
            seg, th, _ = self.transport(e, inner_v6)
            a, b = self.ip_pair(inner_v6)
            if inner_v6:
                inner = self.ip6(e, a, b, e["ip_proto"], seg)
                ih = 40
            else:
                inner = self.ip4(e, a, b, e["ip_proto"], seg)
                ih = 20
            pkt = self.ip4(None, outer_a, outer_b, 41 if inner_v6 else 4, inner)
            e["tunnel"] = "ipip"
            shim = 0
        elif r < 0.66:
            seg, th, _ = self.transport(e, False)
            a, b = self.ip_pair(False)
            inner = self.ip4(e, a, b, e["ip_proto"], seg)
            ih = 20
            if rng.random() < 0.5:
                gre = _GRE.pack(0x2000, 0x0800) + rng.getrandbits(32).to_bytes(4, "big")
            else:
                gre = _GRE.pack(0, 0x0800)
            shim = len(gre)
            pkt = self.ip4(None, outer_a, outer_b, 47, gre + inner)
            e["tunnel"] = "gre"
        else:
            seg, th = self.tcp(e)
            a, b = self.ip_pair(False)
            inner = self.ip4(e, a, b, 6, seg)
            ih = 20
            imac_s, imac_d = (
                self.macs[rng.getrandbits(6)],
                self.macs[rng.getrandbits(6)],
            )
            vx = _VXLAN.pack(0x08000000, (1 + rng.getrandbits(24) % 0xFFFFFE) << 8)
            inner_frame = _ETH.pack(imac_d[0], imac_s[0], 0x0800) + inner
            body = vx + inner_frame
            sport = 49152 + rng.getrandbits(14)
            udp = _UDP.pack(sport, 4789, 8 + len(body), 0) + body
            shim = 8 + 8 + 14
            pkt = self.ip4(None, outer_a, outer_b, 17, udp)
            e["tunnel"] = "vxlan"
        e["outer_src_ip"] = outer_a[1]
        e["outer_dst_ip"] = outer_b[1]
        frame, lh = self.ether(e, 0x0800, pkt)
        head = lh + 20 + shim + ih
        return frame, head + th, e["tunnel"], head + len(seg)

    def arp(self, e: dict[str, Any]) -> tuple[bytes, int, str, int]:
        rng = self.rng
        sha = self.macs[rng.getrandbits(6)]
        a, b = self.ip_pair(False)
        request = rng.random() < 0.6
        body = _ARP.pack(
            1,
            0x0800,
            6,
            4,
            1 if request else 2,
            sha[0],
            a[0],
            bytes(6) if request else self.macs[rng.getrandbits(6)][0],
            b[0],
        )
        frame, lh = self.ether(e, 0x0806, body, _BROADCAST if request else None)
        return frame, lh + 28, "arp", lh + 28

    def stp(self, e: dict[str, Any]) -> tuple[bytes, int, str, int]:
        """An 802.3 spanning-tree BPDU (LLC without SNAP): no ethertype."""
        bpdu = b"\x42\x42\x03" + b"\x00\x00\x00\x00" + self.rng.randbytes(31)
        src = self.macs[self.rng.getrandbits(6)]
        frame = _ETH.pack(b"\x01\x80\xc2\x00\x00\x00", src[0], len(bpdu)) + bpdu
        e["eth_src"] = src[1]
        e["eth_dst"] = "01:80:c2:00:00:00"
        return frame, len(frame), "stp", len(frame)

    def igmp(self, e: dict[str, Any]) -> tuple[bytes, int, str, int]:
        """IGMPv2 behind an IPv4 router-alert option (IHL 6): an 'other' protocol."""
        src = self.v4[self.rng.getrandbits(9)]
        group = IPv4Address(0xEF000000 | self.rng.getrandbits(16))
        body = struct.pack("!BBH4s", 0x16, 0, 0, group.packed)
        pkt = self.ip4(
            e,
            src,
            (group.packed, str(group)),
            2,
            body,
            ttl=1,
            options=b"\x94\x04\x00\x00",
        )
        e["payload_len"] = 8
        frame, lh = self.ether(e, 0x0800, pkt)
        return frame, lh + 24 + 8, "igmp", lh + 32

    def truncated(self, e: dict[str, Any]) -> tuple[bytes, int, str, int]:
        """A TCP packet cut one byte into the TCP header: decode_status is set, TCP fields null."""
        v6 = self.rng.random() < 0.3
        seg, _ = self.tcp(e, header_only=True)
        for k in (
            "src_port",
            "dst_port",
            "tcp_flags",
            "tcp_seq",
            "tcp_ack",
            "tcp_window",
            "payload_len",
        ):
            e[k] = None
        a, b = self.ip_pair(v6)
        pkt = self.ip6(e, a, b, 6, seg) if v6 else self.ip4(e, a, b, 6, seg)
        frame, _lh = self.ether(e, 0x86DD if v6 else 0x0800, pkt)
        e["decode_status_is_null"] = False
        cut = len(frame) - len(seg) + 1
        return frame, cut, "trunc", cut

    def next(self) -> tuple[bytes, int, int, dict[str, Any], str, int]:
        """Returns (captured bytes, wirelen, ts_ns, expected, kind, header_len)."""
        rng = self.rng
        self.ts += 1000 + rng.getrandbits(20)
        if self.pending:
            frame, hl, e, kind, _ = self.pending.pop()
            return frame, len(frame), self.ts, e, kind, hl
        e = _TEMPLATE.copy()
        r = rng.random()
        if r < 0.9265:
            frame, hl, kind, full = self.plain(e)
        elif r < 0.9515:
            frame, hl, kind, full = self.ipv6_ext(e)
        elif r < 0.9555:
            frame, hl, kind, full = self.fragments(e, rng.random() < 0.3)
        elif r < 0.9855:
            frame, hl, kind, full = self.tunnel(e)
        elif r < 0.9955:
            frame, hl, kind, full = self.arp(e)
        elif r < 0.997:
            frame, hl, kind, full = self.stp(e)
        elif r < 0.998:
            frame, hl, kind, full = self.igmp(e)
        else:
            frame, hl, kind, full = self.truncated(e)
        if len(frame) < 60:
            frame += _PAD60[len(frame) :]
        wirelen = len(frame)
        if kind == "trunc":
            frame = frame[:hl]
        elif full > hl and rng.random() < 0.02:
            # Snaplen-truncated: headers complete, payload cut short.
            frame = frame[: hl + rng.getrandbits(16) % min(full - hl, 96)]
            kind = "snap"
        return frame, wirelen, self.ts, e, kind, hl


def _raw(n: int, seed: int) -> Iterator[tuple[bytes, int, int, dict[str, Any], str, int]]:
    gen = _Generator(seed)
    nxt = gen.next
    for _ in range(n):
        yield nxt()


def packets(n: int, *, seed: int = 0) -> Iterator[SynthPacket]:
    """Generates ``n`` synthetic Ethernet frames, deterministically for a given ``seed``.

    Args:
        n: How many packets to generate.
        seed: Seed of the generator; the same seed always gives the same packets.

    Yields:
        One :class:`SynthPacket` per frame, in capture order (timestamps increase).

    Example:
        >>> kinds = {p.kind for p in packets(2000, seed=3)}
        >>> {"tcp4", "udp6", "vxlan", "arp", "trunc"} <= kinds
        True
    """
    for frame, wirelen, ts, e, kind, hl in _raw(n, seed):
        yield SynthPacket(frame, wirelen, ts, e, kind, hl)


class _Sink:
    """Buffered output to a plain or gzip file (gzip when the name ends in ``.gz``)."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        self.f: BinaryIO
        if p.name.endswith(".gz"):
            self.f = gzip.GzipFile(p, "wb", compresslevel=6, mtime=0)  # type: ignore[assignment]
        else:
            self.f = open(p, "wb")  # noqa: SIM115 - closed in close()
        self.parts: list[bytes] = []

    def flush(self) -> None:
        self.f.write(b"".join(self.parts))
        self.parts.clear()

    def close(self) -> None:
        self.flush()
        self.f.close()


def _check_snaplen(frame_number: int, caplen: int, header_len: int) -> None:
    if caplen < header_len:
        raise ValueError(
            f"snaplen {caplen} cuts into the headers of packet {frame_number} "
            f"({header_len} header bytes): its expected values would not hold"
        )


def write_pcap(
    path: str | Path,
    n: int,
    *,
    seed: int = 0,
    nanosecond: bool = False,
    big_endian: bool = False,
    snaplen: int = 65535,
    return_expected: bool = False,
) -> list[dict[str, Any]] | None:
    """Writes ``n`` synthetic packets as a classic pcap file (gzipped if ``path`` ends in .gz).

    Args:
        path: Output file. A ``.gz`` suffix writes the file gzip-compressed.
        n: Number of packets.
        seed: Generator seed (see :func:`packets`).
        nanosecond: Write the nanosecond-resolution magic (0xa1b23c4d) instead of microseconds.
        big_endian: Write all header fields big-endian (as a SPARC or PowerPC host would).
        snaplen: The file's snapshot length; longer frames are cut to it. It must not cut into
            a packet's headers (ValueError), so keep it at 160 or more.
        return_expected: Return the expected rows (else nothing is kept: 1M packets stream
            straight to the file).

    Returns:
        With ``return_expected``, one dict per packet: the :data:`EXPECTED_KEYS` plus
        ``frame_number``, ``ts`` (integer ns as stored at the file's resolution), ``caplen``,
        ``wirelen``, ``interface_id`` (None) and ``link_type`` (1). Otherwise None.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "x.pcap.gz")
        >>> rows = write_pcap(path, 10, seed=1, nanosecond=True, return_expected=True)
        >>> rows[-1]["frame_number"], rows[0]["link_type"], rows[0]["interface_id"]
        (10, 1, None)
    """
    out: list[dict[str, Any]] | None = [] if return_expected else None
    with PcapWriter(path, nanosecond=nanosecond, big_endian=big_endian, snaplen=snaplen) as w:
        for i, (frame, wirelen, ts, e, _kind, hl) in enumerate(_raw(n, seed), 1):
            caplen = len(frame)
            if caplen > snaplen:
                _check_snaplen(i, snaplen, hl)
                caplen = snaplen  # the writer cuts the frame
            w.write(ts, frame, wirelen)
            if out is not None:
                e["frame_number"] = i
                e["ts"] = ts if nanosecond else ts - ts % 1000
                e["caplen"] = caplen
                e["wirelen"] = wirelen
                e["interface_id"] = None
                e["link_type"] = 1
                out.append(e)
    return out


def _pcapng_option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) & 3)


def write_pcapng(
    path: str | Path,
    n: int,
    *,
    seed: int = 0,
    tsresol: int = 6,
    interfaces: int = 1,
    big_endian: bool = False,
    return_expected: bool = False,
) -> list[dict[str, Any]] | None:
    """Writes ``n`` synthetic packets as pcapng Enhanced Packet Blocks (gzipped if .gz).

    Args:
        path: Output file. A ``.gz`` suffix writes the file gzip-compressed.
        n: Number of packets.
        seed: Generator seed (see :func:`packets`).
        tsresol: Timestamp resolution of interface 0, as a power of ten: 6 (microseconds, the
            pcapng default, written without an ``if_tsresol`` option) or 9 (nanoseconds).
        interfaces: 1, or 2 Ethernet interfaces; interface 1 uses the other resolution (with an
            explicit ``if_tsresol``) and packets alternate between them.
        big_endian: Write the section big-endian.
        return_expected: Return the expected rows (see :func:`write_pcap`); ``interface_id``
            holds the packet's interface.

    Returns:
        The expected rows with ``return_expected``, else None.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "x.pcapng")
        >>> rows = write_pcapng(path, 4, tsresol=9, interfaces=2, return_expected=True)
        >>> [r["interface_id"] for r in rows]
        [0, 1, 0, 1]
    """
    if tsresol not in (6, 9):
        raise ValueError(f"tsresol must be 6 or 9, not {tsresol!r}")
    if interfaces not in (1, 2):
        raise ValueError(f"interfaces must be 1 or 2, not {interfaces!r}")
    order = ">" if big_endian else "<"
    u32 = struct.Struct(order + "I")
    epb = struct.Struct(order + "IIIIIII")
    resols = [tsresol, 15 - tsresol][:interfaces]
    out: list[dict[str, Any]] | None = [] if return_expected else None
    sink = _Sink(path)
    parts = sink.parts
    try:
        opts = _pcapng_option(order, 4, b"pktstream.synth") + _pcapng_option(order, 0, b"")
        total = 28 + len(opts)
        parts.append(
            struct.pack(order + "IIIHHq", 0x0A0D0D0A, total, 0x1A2B3C4D, 1, 0, -1) + opts + u32.pack(total)
        )
        for k, res in enumerate(resols):
            opts = _pcapng_option(order, 2, f"synth{k}".encode())
            if k > 0 or res != 6:
                opts += _pcapng_option(order, 9, bytes((res,)))
            opts += _pcapng_option(order, 0, b"")
            total = 20 + len(opts)
            parts.append(struct.pack(order + "IIHHI", 1, total, 1, 0, 262144) + opts + u32.pack(total))
        for i, (frame, wirelen, ts, e, _kind, _hl) in enumerate(_raw(n, seed), 1):
            iface = (i - 1) % interfaces
            ns = resols[iface] == 9
            units = ts if ns else ts // 1000
            caplen = len(frame)
            pad = -caplen & 3
            total = 32 + caplen + pad
            parts.append(epb.pack(6, total, iface, units >> 32, units & 0xFFFFFFFF, caplen, wirelen))
            parts.append(frame)
            parts.append(_PAD60[:pad] + u32.pack(total))
            if out is not None:
                e["frame_number"] = i
                e["ts"] = units if ns else units * 1000
                e["caplen"] = caplen
                e["wirelen"] = wirelen
                e["interface_id"] = iface
                e["link_type"] = 1
                out.append(e)
            if len(parts) >= 4096:
                sink.flush()
    finally:
        sink.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m pktstream.testing.synth OUT -n N [--seed S] [--pcapng] [--ns]``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit status.

    Example:
        >>> import tempfile, os
        >>> main([os.path.join(tempfile.mkdtemp(), "m.pcapng"), "-n", "5", "--pcapng", "--ns"])
        0
    """
    ap = argparse.ArgumentParser(prog="python -m pktstream.testing.synth", description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output file (.pcap, .pcapng; add .gz to compress)")
    ap.add_argument("-n", "--packets", type=int, default=100_000, help="number of packets")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pcapng", action="store_true", help="write pcapng instead of pcap")
    ap.add_argument("--ns", action="store_true", help="nanosecond timestamps")
    ap.add_argument("--big-endian", action="store_true")
    ap.add_argument("--interfaces", type=int, default=1, choices=(1, 2), help="pcapng interfaces")
    args = ap.parse_args(argv)
    if args.pcapng:
        write_pcapng(
            args.out,
            args.packets,
            seed=args.seed,
            tsresol=9 if args.ns else 6,
            interfaces=args.interfaces,
            big_endian=args.big_endian,
        )
    else:
        write_pcap(
            args.out,
            args.packets,
            seed=args.seed,
            nanosecond=args.ns,
            big_endian=args.big_endian,
        )
    print(
        f"wrote {args.packets} packets to {args.out} ({Path(args.out).stat().st_size:,} bytes)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
