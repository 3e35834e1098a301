"""`pktstream inspect`: a capinfos-style summary of a capture, computed in one streaming pass.

Example:
    >>> from pktstream._inspect import summarize
    >>> s = summarize("tests/data/sample.pcap", progress=False)
    >>> s.packets, s.format, s.gzip, str(s.first_ts)
    (200, 'pcap', False, '2024-01-01 00:00:00.174299+00:00')
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import pyarrow as pa
import pyarrow.compute as pc

from ._progress import Progress
from ._reader import iter_batches

IP_PROTOCOLS = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP",
                51: "AH", 58: "ICMPv6", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP", 136: "UDP-Lite"}
ETHERTYPES = {0x0806: "ARP", 0x8035: "RARP", 0x88CC: "LLDP", 0x888E: "EAPOL", 0x8863: "PPPoE-discovery",
              0x88F7: "PTP", 0x8906: "FCoE", 0x22F0: "AVTP", 0x9000: "loopback"}
LINK_TYPES = {0: "null (BSD loopback)", 1: "ethernet", 101: "raw IP", 105: "802.11", 108: "loop",
              113: "linux-sll", 127: "802.11 radiotap", 228: "raw IPv4", 229: "raw IPv6", 276: "linux-sll2"}

SUMMARY_COLUMNS = ["frame_number", "ts", "caplen", "wirelen", "link_type", "ethertype", "ip_proto",
                   "src_ip", "dst_ip", "src_port", "dst_port", "tcp_flags", "decode_status"]


@dataclass
class Summary:
    """What `inspect` reports; built by :func:`summarize`."""

    path: str
    format: str = ""
    gzip: bool = False
    packets: int = 0
    #: The BPF filter the packets passed, and how many records it left out.
    bpf: Optional[str] = None
    filtered: int = 0
    captured_bytes: int = 0
    wire_bytes: int = 0
    first_ts: Optional[dt.datetime] = None
    last_ts: Optional[dt.datetime] = None
    link_types: Dict[Any, int] = field(default_factory=dict)
    protocols: collections.Counter = field(default_factory=collections.Counter)
    talkers: collections.Counter = field(default_factory=collections.Counter)
    talker_bytes: collections.Counter = field(default_factory=collections.Counter)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    warnings: List[str] = field(default_factory=list)
    head: Optional[pa.Table] = None

    def as_dict(self) -> dict:
        span = (self.last_ts - self.first_ts).total_seconds() if self.first_ts and self.last_ts else None
        return {
            "path": self.path, "format": self.format, "gzip": self.gzip, "packets": self.packets,
            "bpf": self.bpf, "filtered": self.filtered, "captured_bytes": self.captured_bytes, "wire_bytes": self.wire_bytes,
            "first_ts": self.first_ts.isoformat() if self.first_ts else None,
            "last_ts": self.last_ts.isoformat() if self.last_ts else None, "duration_s": span,
            "link_types": {str(k): v for k, v in self.link_types.items()},
            "protocols": dict(self.protocols.most_common()),
            "top_talkers": dict(self.talkers.most_common(10)),
            "decode_status": dict(self.statuses.most_common()), "warnings": self.warnings,
        }


def _protocol_counts(batch: pa.RecordBatch) -> collections.Counter:
    """Packets per protocol name: counted in Arrow per (ip_proto, ethertype) pair, then named."""
    pairs = pa.table({"p": batch.column("ip_proto"), "e": batch.column("ethertype")})
    agg = pairs.group_by(["p", "e"], use_threads=False).aggregate([([], "count_all")])
    counts: collections.Counter = collections.Counter()
    for proto, etype, n in zip(*(agg.column(c).to_pylist() for c in ("p", "e", "count_all"))):
        if proto is not None:
            counts[IP_PROTOCOLS.get(proto, f"ip-proto-{proto}")] += n
        elif etype is not None:
            counts[ETHERTYPES.get(etype, f"ethertype-0x{etype:04x}")] += n
        else:
            counts["other"] += n
    return counts


def summarize(path: str, *, head: int = 10, progress: Optional[bool] = None, bpf: Optional[str] = None) -> Summary:
    """Streams the file once and returns its :class:`Summary` (memory stays flat); with ``bpf``,
    of the packets passing that tcpdump filter only."""
    s = Summary(path=str(path), bpf=bpf)
    reader = iter_batches(path, columns=SUMMARY_COLUMNS, bpf=bpf)
    with reader, Progress(reader.file_size, "inspecting", progress) as bar:
        for batch in reader:
            if s.head is None or s.head.num_rows < head:
                part = pa.Table.from_batches([batch]).slice(0, head)
                s.head = part if s.head is None else pa.concat_tables([s.head, part]).slice(0, head)
            s.packets += batch.num_rows
            s.captured_bytes += pc.sum(batch.column("caplen")).as_py() or 0
            s.wire_bytes += pc.sum(batch.column("wirelen")).as_py() or 0
            ts = batch.column("ts")
            lo, hi = pc.min(ts).as_py(), pc.max(ts).as_py()
            if lo is not None:
                s.first_ts = lo if s.first_ts is None else min(s.first_ts, lo)
                s.last_ts = hi if s.last_ts is None else max(s.last_ts, hi)
            s.protocols.update(_protocol_counts(batch))
            for src, n in zip(*_value_counts(batch.column("src_ip"))):
                s.talkers[src] += n
            statuses = batch.column("decode_status").drop_null()
            if len(statuses):
                s.statuses.update(statuses.to_pylist())
            bar.update(reader.stats["bytes_read"])
        stats = reader.stats
    s.format = stats.get("format", "")
    s.gzip = bool(stats.get("gzip"))
    s.filtered = int(stats.get("filtered", 0))
    s.link_types = {LINK_TYPES.get(k, f"linktype {k}") if k is not None else "unknown interface": v
                    for k, v in stats.get("link_types", {}).items()}
    s.warnings = list(stats.get("warnings", []))
    return s


def _value_counts(column: pa.Array) -> tuple:
    counts = pc.value_counts(column.drop_null())
    return counts.field("values").to_pylist(), counts.field("counts").to_pylist()


def render(s: Summary, *, top: int = 10) -> str:
    """The human-readable report."""
    lines = []
    fmt = {"pcap": "pcap (microsecond timestamps)", "pcap-ns": "pcap (nanosecond timestamps)",
           "pcap-modified": "pcap (Kuznetzov modified)", "pcapng": "pcapng"}.get(s.format, s.format)
    lines.append(f"File:            {s.path}")
    lines.append(f"Format:          {fmt}{' (gzip-compressed)' if s.gzip else ''}")
    lines.append(f"Link types:      {', '.join(f'{k} ({v})' for k, v in s.link_types.items()) or '-'}")
    lines.append(f"Packets:         {s.packets:,}")
    if s.bpf is not None:
        lines.append(f"BPF filter:      {s.bpf!r} ({s.filtered:,} packets left out)")
    lines.append(f"Bytes captured:  {s.captured_bytes:,} (on the wire: {s.wire_bytes:,})")
    if s.first_ts and s.last_ts:
        span = (s.last_ts - s.first_ts).total_seconds()
        lines.append(f"First packet:    {s.first_ts.isoformat()}")
        lines.append(f"Last packet:     {s.last_ts.isoformat()}")
        rate = f"  ({s.packets / span:,.1f} packets/s, {s.wire_bytes * 8 / span:,.0f} bit/s)" if span > 0 else ""
        lines.append(f"Duration:        {span:.6f} s{rate}")
    decode_errors = sum(s.statuses.values())
    lines.append(f"Decode problems: {decode_errors:,}")
    for status, n in s.statuses.most_common(top):
        lines.append(f"    {n:>10,}  {status}")
    for w in s.warnings:
        lines.append(f"Warning:         {w}")
    lines.append("")
    lines.append("Protocols:")
    for name, n in s.protocols.most_common(top):
        lines.append(f"    {n:>10,}  {100 * n / max(s.packets, 1):5.1f}%  {name}")
    lines.append("Top talkers (source address, packets):")
    for ip, n in s.talkers.most_common(top):
        lines.append(f"    {n:>10,}  {ip}")
    if s.head is not None and s.head.num_rows:
        lines.append("")
        lines.append(f"First {s.head.num_rows} packets:")
        lines.extend(_table(s.head))
    return "\n".join(lines)


def _table(t: pa.Table) -> List[str]:
    rows = [["#", "time (UTC)", "len", "source", "destination", "proto", "info"]]
    for r in t.to_pylist():
        src = r["src_ip"] or "-"
        dst = r["dst_ip"] or "-"
        if r["src_port"] is not None:
            src, dst = f"{src}:{r['src_port']}", f"{dst}:{r['dst_port']}"
        proto = IP_PROTOCOLS.get(r["ip_proto"], str(r["ip_proto"])) if r["ip_proto"] is not None else (
            ETHERTYPES.get(r["ethertype"], f"0x{r['ethertype']:04x}") if r["ethertype"] is not None else "-")
        info = r["decode_status"] or (f"flags=0x{r['tcp_flags']:03x}" if r["tcp_flags"] is not None else "")
        ts = r["ts"].strftime("%H:%M:%S.%f") if r["ts"] is not None else "-"
        rows.append([str(r["frame_number"]), ts, str(r["caplen"]), src, dst, proto, info])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
