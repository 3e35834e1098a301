"""Deterministic synthetic captures of whole conversations, with the flow records they must give.

:mod:`pktstream.testing.synth` draws packets independently, so nearly every flow is one packet. This
module writes interleaved, time-ordered **conversations** instead and knows, for given timeouts,
exactly which flow records a meter with NFStream's rules (``pktstream.flows``, see
``docs/flows.md``) must produce from them:

* TCP: handshake, requests and responses both ways, then FIN/FIN (most), an RST abort, or a
  refused connection (SYN, RST-ACK);
* UDP request/response (DNS, NTP), some queries unanswered;
* ICMP / ICMPv6 echo request/reply;
* about 20 % over IPv6 and 15 % behind an 802.1Q tag (the VLAN is part of the flow key);
* some conversations pause for 1.3-2.5 idle timeouts mid-way (two records of one key), some run
  1.3-2.7 active timeouts (split by the active timeout), some reuse their 5-tuple for a second
  session, either soon after the FIN (FIN/RST end no flow by default: one record) or after an
  idle gap (two records).

Every gap inside a conversation stays well away from the timeouts (normal gaps under a quarter of
the smaller timeout; pauses over 1.3 ``idle_timeout``; a packet that would fall within 10 ms of a record's active
timeout is moved past it), so the records do not depend on how a meter rounds time (NFStream
works in whole milliseconds). The ground truth itself is derived from the packets as written
(timestamps are strictly increasing, at the file's resolution) by the rules: one record per
undirected key (IP version, endpoints, protocol, VLAN) until the key is idle for ``idle_timeout``
or a packet comes ``active_timeout`` or more after the record's first one (that packet starts the
next record); ``src`` is the sender of the record's first packet; bytes are frame lengths; a
record's ``expiration`` is ``"idle"`` when any later packet of the file comes ``idle_timeout`` or
more after its last one, ``"active"`` when cut by the active timeout, else ``"end"``.

Keys never collide across conversations (client addresses and ports are allotted per
conversation), so every record is one known conversation's. Only the standard library is used; the
packets stream to the file (about 1.1M packets, 600 MB, from 34,000 conversations in 7 s).

Example:
    >>> import os, tempfile
    >>> from pktstream.testing import synth_flows
    >>> path = os.path.join(tempfile.mkdtemp(), "conv.pcap")
    >>> truth = synth_flows.write_flows_pcap(path, conversations=200, seed=1, idle_timeout=5,
    ...                                      active_timeout=30, return_truth=True)
    >>> sorted({r["expiration"] for r in truth})
    ['active', 'end', 'idle']
    >>> import pktstream
    >>> got = synth_flows.flow_rows(pktstream.flows(path, idle_timeout=5, active_timeout=30))
    >>> got == synth_flows.sort_records(truth)
    True

Command line: ``python -m pktstream.testing.synth_flows OUT.pcap --conversations N [--seed S]
[--idle-timeout S] [--active-timeout S] [--ns] [--truth OUT.jsonl]``.
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import json
import random
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

from .._sink import PcapWriter

__all__ = [
    "TRUTH_COLUMNS",
    "flow_rows",
    "main",
    "sort_records",
    "write_flows_pcap",
]

#: Keys of a ground-truth record: the flow schema's key and count columns (timestamps as int ns).
TRUTH_COLUMNS: tuple[str, ...] = (
    "first_seen",
    "last_seen",
    "ip_version",
    "src_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    "ip_proto",
    "vlan_id",
    "packets",
    "bytes",
    "src2dst_packets",
    "src2dst_bytes",
    "dst2src_packets",
    "dst2src_bytes",
    "src2dst_tcp_flags",
    "dst2src_tcp_flags",
    "expiration",
)

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

#: 2024-03-01T00:00:00Z, the first conversation's start.
_BASE_NS = 1_709_251_200 * 1_000_000_000
_S = 1_000_000_000  # ns per second
_MARGIN_NS = 10_000_000  # keep packets this far from a record's active timeout

_ETH = struct.Struct("!6s6sH")
_TAG = struct.Struct("!6s6sHHH")
_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIHHHH")
_UDP = struct.Struct("!HHHH")
_ICMP = struct.Struct("!BBHHH")

_GATEWAY_MAC = bytes.fromhex("00005e0001fe")
_TCP_PORTS = (443, 443, 443, 80, 22, 8080, 5432, 993)
_UDP_PORTS = (53, 53, 53, 123)
#: TCP conversation kinds and the cumulative share of TCP conversations up to each.
_TCP_KINDS = (
    ("fin", 0.70),
    ("rst", 0.78),
    ("refused", 0.82),
    ("pause", 0.90),
    ("reuse", 0.96),
    ("long", 1.01),
)
_PER_CLIENT = 8  # conversations per client address (each with its own port band / ICMP server)


def _servers(v6: bool) -> list[tuple[bytes, str]]:
    out = []
    for i in range(64):
        if v6:
            a: Any = ipaddress.IPv6Address(f"2001:db8:ffff::{i + 1:x}")
        else:
            a = ipaddress.IPv4Address(("192.0.2.", "198.51.100.", "203.0.113.")[i % 3] + str(10 + i))
        out.append((a.packed, str(a)))
    return out


_SERVERS = {False: _servers(False), True: _servers(True)}


class _Conv:
    """One conversation's fixed headers and TCP sequence state; builds its frames."""

    __slots__ = ("key", "names", "proto", "v6", "link", "ports", "addrs", "ttl", "seq", "ident", "icmp_id")

    def __init__(self, i: int, rng: random.Random, proto: int, v6: bool, vlan: Optional[int]) -> None:
        c = i // _PER_CLIENT
        slot = i % _PER_CLIENT
        client: Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
        if v6:
            client = ipaddress.IPv6Address((0x20010DB8 << 96) | (1 << 64) | (c + 1))
            proto = 58 if proto == 1 else proto
        else:
            client = ipaddress.IPv4Address((10 << 24) + c + 1)
        servers = _SERVERS[v6]
        if proto in (1, 58):
            server = servers[slot * 8 + rng.randrange(8)]  # one ICMP server per slot: no collision
            cport = sport = 0
        else:
            server = servers[rng.randrange(64)]
            cport = 32768 + slot * 3000 + rng.randrange(3000)
            sport = rng.choice(_TCP_PORTS if proto == 6 else _UDP_PORTS)
        cl = (client.packed, str(client))
        self.addrs = (cl, server)  # (client, server)
        self.ports = (cport, sport)
        self.proto = proto
        self.v6 = v6
        self.names = (cl[1], server[1])
        lo, hi = sorted([(cl[0], cport), (server[0], sport)])
        self.key = (6 if v6 else 4, lo, hi, proto, vlan)
        cmac = b"\x02" + (c + 1).to_bytes(5, "big")
        etype = 0x86DD if v6 else 0x0800
        if vlan is None:
            self.link = (_ETH.pack(_GATEWAY_MAC, cmac, etype), _ETH.pack(cmac, _GATEWAY_MAC, etype))
        else:
            self.link = (
                _TAG.pack(_GATEWAY_MAC, cmac, 0x8100, vlan, etype),
                _TAG.pack(cmac, _GATEWAY_MAC, 0x8100, vlan, etype),
            )
        self.ttl = (64, rng.choice((52, 57, 117, 243)))
        self.seq = [0, 0]
        self.ident = rng.getrandbits(16)
        self.icmp_id = rng.getrandbits(16)

    def frame(self, d: int, flags: int, plen: int, rng: random.Random, blob: bytes) -> bytes:
        """The frame sent by the client (``d`` = 0) or the server (1)."""
        off = rng.getrandbits(16)
        payload = blob[off : off + plen]
        proto = self.proto
        if proto == 6:
            seq = self.seq
            if flags & SYN:
                seq[d] = rng.getrandbits(32)
            ack = seq[1 - d] if flags & ACK else 0
            seg = _TCP.pack(self.ports[d], self.ports[1 - d], seq[d], ack, 0x5000 | flags, 64240, 0, 0)
            seq[d] = (seq[d] + plen + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        elif proto == 17:
            seg = _UDP.pack(self.ports[d], self.ports[1 - d], 8 + plen, 0)
        else:
            typ = (128, 129)[d] if self.v6 else (8, 0)[d]
            seg = _ICMP.pack(typ, 0, 0, self.icmp_id, flags)  # echo sequence number in ``flags``
        seg += payload
        src, dst = self.addrs[d][0], self.addrs[1 - d][0]
        if self.v6:
            ip = _IP6.pack(0x60000000, len(seg), proto, self.ttl[d], src, dst) + seg
        else:
            self.ident = (self.ident + 1) & 0xFFFF
            total = 20 + len(seg)
            hdr = _IP4.pack(0x45, 0, total, self.ident, 0x4000, self.ttl[d], proto, 0, src, dst)
            s = sum(struct.unpack("!10H", hdr))
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
            ip = hdr[:10] + (~s & 0xFFFF).to_bytes(2, "big") + hdr[12:] + seg
        frame = self.link[d] + ip
        if len(frame) < 60:
            frame += bytes(60 - len(frame))
        return frame


# A plan yields (planned time ns, direction 0 client / 1 server, TCP flags or ICMP seq, payload length).
_Plan = Iterator[tuple[int, int, int, int]]


class _Timing:
    """Gap sizes relative to the timeouts, so no gap comes near one."""

    def __init__(self, rng: random.Random, idle: float, active: float) -> None:
        self.rng = rng
        self.idle = idle
        self.active = active
        self.unit = min(idle, active)

    def ns(self, seconds: float) -> int:
        return max(1, int(seconds * _S))

    def rtt(self) -> int:
        return self.ns(min(self.rng.uniform(0.0005, 0.08), 0.01 * self.unit))

    def think(self) -> int:
        return self.ns(min(self.rng.expovariate(2.0), 0.2 * self.unit))

    def pause(self) -> int:
        return self.ns(self.rng.uniform(1.3, 2.5) * self.idle)


def _tcp_session(t: int, g: _Timing, requests: int, end: str) -> Iterator[tuple[int, int, int, int]]:
    """One TCP session from ``t``; the last item's time is where it stopped."""
    rng = g.rng
    rtt = g.rtt()
    yield t, 0, SYN, 0
    t += rtt // 2
    if end == "refused":
        yield t, 1, RST | ACK, 0
        return
    yield t, 1, SYN | ACK, 0
    t += rtt // 2
    yield t, 0, ACK, 0
    for _ in range(requests):
        t += g.ns(0.0002)
        yield t, 0, PSH | ACK, rng.randrange(60, 700)
        t += rtt // 2 + g.ns(rng.uniform(0, 0.01 * g.unit))
        size = rng.choice((rng.randrange(100, 1400), rng.randrange(1400, 40000)))
        n = 0
        while size > 0:
            seg = min(size, 1448)
            size -= seg
            n += 1
            yield t, 1, (PSH | ACK) if size == 0 else ACK, seg
            t += g.ns(0.00012)
            if n % 2 == 0 or size == 0:
                yield t, 0, ACK, 0  # delayed ACKs: every second segment and the last one
                t += g.ns(0.00005)
        t += rtt // 2 + g.think()
    if end == "rst":
        yield t, rng.randrange(2), RST | ACK, 0
        return
    closer = rng.randrange(2)
    yield t, closer, FIN | ACK, 0
    t += rtt // 2
    yield t, 1 - closer, FIN | ACK, 0
    t += rtt // 2
    yield t, closer, ACK, 0


def _tcp(t: int, g: _Timing, kind: str) -> _Plan:
    rng = g.rng
    if kind in ("fin", "rst", "refused"):
        yield from _tcp_session(t, g, rng.randrange(1, 5), kind)
    elif kind == "pause":  # two sessions' worth of traffic with an idle gap inside one connection
        last = t
        for item in _tcp_session(t, g, rng.randrange(1, 4), "none"):
            if item[2] & FIN:
                break
            last = item[0]
            yield item
        t = last + g.pause()
        d = rng.randrange(2)  # either side may speak first after the pause: the next record's src
        yield t, d, PSH | ACK, rng.randrange(20, 400)
        t += g.rtt()
        yield t, 1 - d, ACK, 0
        yield from _skip_syn(_tcp_session(t + g.think(), g, 0, "fin"))
    elif kind == "reuse":  # a second session on the same 5-tuple, soon after the FIN or after an idle gap
        last = t
        for item in _tcp_session(t, g, rng.randrange(1, 3), "fin"):
            last = item[0]
            yield item
        gap = g.ns(rng.uniform(0.05, 0.2) * g.unit) if rng.random() < 0.5 else g.pause()
        yield from _tcp_session(last + gap, g, rng.randrange(1, 3), rng.choice(("fin", "rst")))
    else:  # long: keepalive-paced exchanges past the active timeout
        end = t + g.ns(rng.uniform(1.3, 2.7) * g.active)
        last = t
        for item in _tcp_session(t, g, 1, "none"):
            last = item[0]
            if item[2] & FIN:
                break
            yield item
        t = last
        while t < end:
            t += g.ns(rng.uniform(0.05, 0.2) * g.unit)
            d = rng.randrange(2)
            yield t, d, PSH | ACK, rng.randrange(20, 300)
            t += g.rtt()
            yield t, 1 - d, ACK, 0
        yield from _skip_syn(_tcp_session(t + g.rtt(), g, 0, "fin"))


def _skip_syn(items: _Plan) -> _Plan:
    for item in items:
        if not item[2] & SYN:
            yield item


def _udp(t: int, g: _Timing, pause: bool) -> _Plan:
    rng = g.rng
    for part in range(2 if pause else 1):
        if part:
            t += g.pause()
        for _ in range(rng.choice((1, 1, 2))):
            yield t, 0, 0, rng.randrange(28, 64)
            if rng.random() < 0.9:
                t += g.rtt()
                yield t, 1, 0, rng.randrange(44, 400)
            t += g.ns(0.001)


def _icmp(t: int, g: _Timing, pause: bool) -> _Plan:
    rng = g.rng
    seq = 0
    for part in range(2 if pause else 1):
        if part:
            t += g.pause()
        for _ in range(rng.randrange(1, 6)):
            seq += 1
            yield t, 0, seq, 56
            if rng.random() < 0.9:
                yield t + g.rtt(), 1, seq, 56
            t += g.ns(min(1.0, 0.2 * g.unit))


def _guard(plan: _Plan, g: _Timing) -> _Plan:
    """Moves a packet that would land within 10 ms of its record's active timeout past it."""
    idle, active = g.ns(g.idle), g.ns(g.active)
    first: Optional[int] = None
    last: Optional[int] = None
    for t, d, f, n in plan:
        if first is None or last is None or t - last >= idle:
            first = t
        elif t - first >= active - _MARGIN_NS:
            if t - first < active + _MARGIN_NS:
                t = first + active + _MARGIN_NS
            if t - first >= active:
                first = t
        last = t
        yield t, d, f, n


def _conversation(i: int, t: int, rng: random.Random, g: _Timing) -> tuple[_Conv, _Plan]:
    r = rng.random()
    v6 = rng.random() < 0.2
    vlan = rng.randrange(2, 4095) if rng.random() < 0.15 else None
    if r < 0.55:
        s = rng.random()
        kind = next(name for name, upto in _TCP_KINDS if s < upto)
        conv = _Conv(i, rng, 6, v6, vlan)
        plan = _tcp(t, g, kind)
    elif r < 0.85:
        conv = _Conv(i, rng, 17, v6, vlan)
        plan = _udp(t, g, rng.random() < 0.15)
    else:
        conv = _Conv(i, rng, 1, v6, vlan)
        plan = _icmp(t, g, rng.random() < 0.15)
    return conv, _guard(plan, g)


class _Truth:
    """The flow records of the packets written, by the meter's rules (per undirected key)."""

    def __init__(self, idle_ns: int, active_ns: int) -> None:
        self.idle = idle_ns
        self.active = active_ns
        self.open: dict[tuple, list[Any]] = {}
        self.done: list[list[Any]] = []

    def add(self, conv: _Conv, t: int, d: int, size: int, flags: int) -> None:
        rec = self.open.get(conv.key)
        if rec is not None:
            if t - rec[1] >= self.idle:
                rec[-1] = "idle"
            elif t - rec[0] >= self.active:
                rec[-1] = "active"
            if rec[-1] is not None:
                self.done.append(rec)
                rec = None
        if rec is None:
            # first, last, conv, src direction, packets[2], bytes[2], flags[2], expiration
            rec = [t, t, conv, d, [0, 0], [0, 0], [0, 0], None]
            self.open[conv.key] = rec
        rec[1] = t
        side = d != rec[3]
        rec[4][side] += 1
        rec[5][side] += size
        rec[6][side] |= flags

    def records(self, end: int) -> list[dict[str, Any]]:
        out = []
        for rec in self.done + list(self.open.values()):
            first, last, conv, d, pk, by, fl, why = rec
            if why is None:
                why = "idle" if end - last >= self.idle else "end"
            tcp = conv.proto == 6
            ported = conv.proto in (6, 17)
            out.append(
                {
                    "first_seen": first,
                    "last_seen": last,
                    "ip_version": conv.key[0],
                    "src_ip": conv.names[d],
                    "dst_ip": conv.names[1 - d],
                    "src_port": conv.ports[d] if ported else None,
                    "dst_port": conv.ports[1 - d] if ported else None,
                    "ip_proto": conv.proto,
                    "vlan_id": conv.key[4],
                    "packets": pk[0] + pk[1],
                    "bytes": by[0] + by[1],
                    "src2dst_packets": pk[0],
                    "src2dst_bytes": by[0],
                    "dst2src_packets": pk[1],
                    "dst2src_bytes": by[1],
                    "src2dst_tcp_flags": fl[0] if tcp else None,
                    "dst2src_tcp_flags": fl[1] if tcp else None,
                    "expiration": why,
                }
            )
        return sort_records(out)


def _write(
    path: str | Path,
    conversations: int,
    seed: int,
    idle_timeout: float,
    active_timeout: float,
    nanosecond: bool,
    rate: float,
    truth: bool,
) -> tuple[int, Optional[list[dict[str, Any]]]]:
    if conversations < 0:
        raise ValueError("conversations must be >= 0")
    if not (idle_timeout > 0 and active_timeout > 0 and rate > 0):
        raise ValueError("idle_timeout, active_timeout and rate must be > 0")
    rng = random.Random(seed)
    blob = rng.randbytes(65536 + 1500)
    g = _Timing(rng, float(idle_timeout), float(active_timeout))
    meter = _Truth(g.ns(idle_timeout), g.ns(active_timeout)) if truth else None
    res = 1 if nanosecond else 1000
    heap: list[tuple[int, int, tuple[int, int, int, int], _Conv, _Plan]] = []
    started = 0
    start = _BASE_NS
    now = -1
    count = 0
    with PcapWriter(path, nanosecond=nanosecond, snaplen=65535) as w:
        while True:
            while started < conversations and (not heap or start <= heap[0][0]):
                conv, plan = _conversation(started, start, rng, g)
                first = next(plan, None)
                if first is not None:
                    heapq.heappush(heap, (first[0], started, first, conv, plan))
                started += 1
                start += g.ns(rng.expovariate(rate))
            if not heap:
                break
            planned, i, (_, d, flags, plen), conv, plan = heap[0]
            t = max(planned - planned % res, now + res)  # strictly increasing at the file's resolution
            now = t
            frame = conv.frame(d, flags, plen, rng, blob)
            w.write(t, frame)
            count += 1
            if meter is not None:
                meter.add(conv, t, d, len(frame), flags if conv.proto == 6 else 0)
            nxt = next(plan, None)
            if nxt is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (nxt[0], i, nxt, conv, plan))
    return count, (meter.records(now) if meter is not None else None)


def write_flows_pcap(
    path: str | Path,
    *,
    conversations: int = 1000,
    seed: int = 0,
    idle_timeout: float = 120.0,
    active_timeout: float = 1800.0,
    nanosecond: bool = False,
    rate: float = 20.0,
    return_truth: bool = False,
) -> Optional[list[dict[str, Any]]]:
    """Writes ``conversations`` interleaved conversations as a classic pcap file (gzip if .gz).

    Args:
        path: Output file. A ``.gz`` suffix writes the file gzip-compressed.
        conversations: How many conversations (about 30 packets each on average, long flows
            included: 34,000 give ~1.1M packets).
        seed: Generator seed: the same arguments always give a byte-identical file.
        idle_timeout: Seconds; pauses and gaps are drawn relative to it. Meter the file with the
            same value for the ground truth to hold.
        active_timeout: Seconds; long conversations last 1.3-2.7 times it. Same remark.
        nanosecond: Write the nanosecond-resolution magic (else microseconds). Timestamps are
            strictly increasing at the file's resolution.
        rate: Conversations started per second (exponential inter-arrival times).
        return_truth: Build and return the ground-truth records (else nothing is kept and the
            packets stream straight to the file).

    Returns:
        With ``return_truth``, the flow records ``pktstream.flows(path, idle_timeout=...,
        active_timeout=...)`` must produce, as dicts with the keys of :data:`TRUTH_COLUMNS`
        (``first_seen``/``last_seen`` in integer ns; ports, ``vlan_id`` and TCP flags None where
        the flow has none), sorted by :func:`sort_records`. Otherwise None.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "c.pcap.gz")
        >>> truth = write_flows_pcap(path, conversations=50, seed=3, return_truth=True)
        >>> tcp = [r for r in truth if r["ip_proto"] == 6]
        >>> all(r["src2dst_packets"] + r["dst2src_packets"] == r["packets"] for r in truth)
        True
        >>> sum(r["packets"] for r in truth) > 50 and tcp[0]["src2dst_tcp_flags"] & 0x10
        16
    """
    return _write(path, conversations, seed, idle_timeout, active_timeout, nanosecond, rate, return_truth)[1]


def sort_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sorts flow records by ``(first_seen, src_ip, src_port)`` (ports None as -1).

    Example:
        >>> sort_records([{"first_seen": 2, "src_ip": "a", "src_port": None},
        ...               {"first_seen": 1, "src_ip": "b", "src_port": 7}])[0]["first_seen"]
        1
    """
    return sorted(
        records, key=lambda r: (r["first_seen"], r["src_ip"], -1 if r["src_port"] is None else r["src_port"])
    )


def flow_rows(table: Any) -> list[dict[str, Any]]:
    """A ``pktstream.flows()`` table as ground-truth-shaped records (:data:`TRUTH_COLUMNS`, ns ints), sorted.

    Example:
        >>> import pktstream
        >>> flow_rows(pktstream.flows("tests/data/sample.pcap"))[0]["first_seen"] > 0
        True
    """
    import pyarrow as pa

    cols = {}
    for name in TRUTH_COLUMNS:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        cols[name] = col.to_pylist()
    rows = [dict(zip(TRUTH_COLUMNS, values)) for values in zip(*cols.values())]
    return sort_records(rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m pktstream.testing.synth_flows OUT --conversations N [--seed S] ...``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit status.

    Example:
        >>> import os, tempfile
        >>> d = tempfile.mkdtemp()
        >>> main([os.path.join(d, "m.pcap"), "--conversations", "20", "--truth", os.path.join(d, "t.jsonl")])
        0
    """
    ap = argparse.ArgumentParser(prog="python -m pktstream.testing.synth_flows", description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output file (.pcap; add .gz to compress)")
    ap.add_argument("--conversations", "-n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--idle-timeout", type=float, default=120.0)
    ap.add_argument("--active-timeout", type=float, default=1800.0)
    ap.add_argument("--rate", type=float, default=20.0, help="conversations started per second")
    ap.add_argument("--ns", action="store_true", help="nanosecond timestamps")
    ap.add_argument("--truth", help="also write the ground-truth flow records here, one JSON object a line")
    args = ap.parse_args(argv)
    packets, truth = _write(
        args.out,
        args.conversations,
        args.seed,
        args.idle_timeout,
        args.active_timeout,
        args.ns,
        args.rate,
        args.truth is not None,
    )
    if truth is not None:
        with open(args.truth, "w") as f:
            for r in truth:
                f.write(json.dumps(r) + "\n")
    print(
        f"wrote {args.conversations:,} conversations, {packets:,} packets to {args.out} "
        f"({Path(args.out).stat().st_size:,} bytes)" + (f"; {len(truth):,} flow records" if truth else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
