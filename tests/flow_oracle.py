"""NFStream 6.6 as an oracle for the flow meter (used by ``test_flows.py``).

:func:`compare` meters one capture with both pktstream and NFStream (one meter, no dissection, no
statistics, the same timeouts) and compares, per undirected key (IP version, endpoints, IP
protocol, VLAN), the number of flow records, packets and bytes. Where they differ, the difference
must be covered by packets one of :data:`RULES` names (each is documented, with its reason, in
``docs/flows.md``): it computes per key how many packets and bytes those rules excuse and raises
``AssertionError`` unless they account for the whole gap. :func:`packet_rules` finds the rules of
each packet from pktstream's packet table and from what libpcap (NFStream's reader) delivers.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import functools
import gzip
import ipaddress
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional

import pktstream

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
PCAPS = Path(os.environ.get("PKTSTREAM_PCAPS") or ROOT.parent / "shared" / "pcaps")

#: Link types NFStream's packet parser decodes (DLT values as libpcap maps the file's LINKTYPE:
#: NULL, EN10MB, PPP, RAW, PPP_SERIAL, C_HDLC, LINUX_SLL, IEEE802_11_RADIO, IPV4, IPV6).
NFS_LINKTYPES = {0, 1, 9, 12, 14, 50, 101, 104, 113, 127, 228, 229}
PORT_PROTOS = {6, 17, 132, 136}
INNER_TUNNELS = {"gre", "vxlan", "geneve", "teredo"}

#: Per-packet rules under which NFStream meters a packet differently (docs/flows.md lists each
#: with its reason). A packet a rule names may be missing from NFStream's flow of its key.
RULES = {
    "libpcap_skipped": "libpcap, NFStream's reader, does not deliver the packet (pcapng interfaces/sections)",
    "link_type": "NFStream's parser does not decode the link type",
    "short_frame": "NFStream ignores frames shorter than 28 bytes",
    "ipv6_snaplen": "NFStream ignores IPv6 packets cut by the snap length",
    "ipv4_zero_length": "NFStream ignores IPv4 packets with total length 0 (segmentation offload)",
    "qinq": "NFStream does not walk 802.1ad (QinQ) outer tags: the packet is ignored",
    "inner_tunnel": "pktstream meters the inner packet of GRE/VXLAN/Geneve/Teredo, NFStream the outer one",
    "truncated_transport": "ports cut by the snap length are 0 here; NFStream reads past the captured bytes",
    "sctp_ports": "pktstream keys SCTP and UDP-Lite flows by their ports, NFStream with ports 0",
    "u16_size": "NFStream's packet sizes are 16-bit: a frame over 65535 bytes wraps",
    "not_ip_as_ip": "NFStream reads a non-IP frame that starts with nibble 4 or 6 as IP",
    "pktstream_stopped": "pktstream stops (and warns) at a tail it cannot read; NFStream's libpcap reads on",
}


@functools.cache
def _libpcap() -> Any:
    name = ctypes.util.find_library("pcap")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.pcap_open_offline.restype = ctypes.c_void_p
    lib.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.pcap_next_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


class _Hdr(ctypes.Structure):
    _fields_ = [
        ("sec", ctypes.c_long),
        ("usec", ctypes.c_long),
        ("caplen", ctypes.c_uint32),
        ("len", ctypes.c_uint32),
    ]


def libpcap_records(path: Path) -> Optional[list[tuple[int, int]]]:
    """``(caplen, len)`` of every packet libpcap delivers from the file, None if it refuses it."""
    lib = _libpcap()
    if lib is None:
        return None
    err = ctypes.create_string_buffer(512)
    handle = lib.pcap_open_offline(str(path).encode(), err)
    if not handle:
        return None
    hdr, data = ctypes.POINTER(_Hdr)(), ctypes.c_void_p()
    out = []
    while lib.pcap_next_ex(handle, ctypes.byref(hdr), ctypes.byref(data)) == 1:
        out.append((hdr.contents.caplen, hdr.contents.len))
    lib.pcap_close(handle)
    return out


def _ip(s: str) -> ipaddress._BaseAddress:
    return ipaddress.ip_address(s)


def undirected(version: int, a: str, ap: int, b: str, bp: int, proto: int, vlan: int) -> tuple:
    ends = sorted([(_ip(a), int(ap)), (_ip(b), int(bp))], key=lambda e: (e[0].packed, e[1]))
    return (int(version), str(ends[0][0]), ends[0][1], str(ends[1][0]), ends[1][1], int(proto), int(vlan))


def _int(v: Any) -> int:
    return 0 if v is None else int(v)


def plain_copy(path: Path, tmp: Path) -> Path:
    """libpcap (and so NFStream) reads no gzip: hand it the inflated file."""
    if path.read_bytes()[:2] != b"\x1f\x8b":
        return path
    out = tmp / path.name.removesuffix(".gz")
    with gzip.open(path) as src, out.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


@functools.cache
def nfstream_flows(path: str) -> tuple[Optional[str], dict[tuple, list[int]]]:
    """NFStream's flows per undirected key: ``[flows, packets, bytes]``; or its refusal."""
    import nfstream

    try:
        df = nfstream.NFStreamer(
            source=path,
            statistical_analysis=False,
            n_dissections=0,
            splt_analysis=0,
            idle_timeout=120,
            active_timeout=1800,
            n_meters=1,
        ).to_pandas()
    except Exception as e:  # noqa: BLE001  (NFStream raises ValueError/OSError/... for files it refuses)
        return f"{type(e).__name__}: {e}", {}
    agg: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    if df is not None:
        for r in df.itertuples():
            k = undirected(r.ip_version, r.src_ip, r.src_port, r.dst_ip, r.dst_port, r.protocol, r.vlan_id)
            agg[k][0] += 1
            agg[k][1] += int(r.bidirectional_packets)
            agg[k][2] += int(r.bidirectional_bytes)
    return None, dict(agg)


def our_flows(path: Path) -> dict[tuple, list[int]]:
    agg: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for r in pktstream.flows(path).to_pylist():
        k = undirected(
            r["ip_version"],
            r["src_ip"],
            _int(r["src_port"]),
            r["dst_ip"],
            _int(r["dst_port"]),
            r["ip_proto"],
            _int(r["vlan_id"]),
        )
        agg[k][0] += 1
        agg[k][1] += r["packets"]
        agg[k][2] += r["bytes"]
    return dict(agg)


PACKET_COLUMNS = [
    "caplen",
    "wirelen",
    "link_type",
    "interface_id",
    "ethertype",
    "ip_version",
    "src_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    "ip_proto",
    "vlan_id",
    "inner_vlan_id",
    "frag_offset",
    "ip_len",
    "tunnel",
    "outer_src_ip",
    "outer_dst_ip",
    "decode_status",
]


def packet_rules(
    path: Path, nfs_path: Path
) -> tuple[list[tuple[Optional[tuple], set[str], dict[str, Any]]], int]:
    """Every packet: its flow key as the meter computes it (None: no flow), the rules that apply;
    and, if pktstream stopped with a warning (a tail it cannot read, such as a pcapng section of
    an unsupported version), how many packets it read (else 0)."""
    with _warnings() as caught:
        packets = pktstream.read_pcap(path, columns=PACKET_COLUMNS).to_pylist()
    delivered = libpcap_records(nfs_path)
    beyond = len(packets) if caught else 0
    seen = [False] * len(packets)
    if delivered is not None:  # libpcap's packets, matched in order on their lengths
        i = 0
        for caplen, wirelen in delivered:
            while i < len(packets) and (packets[i]["caplen"], packets[i]["wirelen"]) != (caplen, wirelen):
                i += 1
            if i < len(packets):
                seen[i] = True
                i += 1
    out = []
    for p, delivered_here in zip(packets, seen):
        rules = set()
        if delivered is not None and not delivered_here:
            rules.add("libpcap_skipped")
        if p["link_type"] not in NFS_LINKTYPES:
            rules.add("link_type")
        if p["caplen"] < 28:
            rules.add("short_frame")
        if p["ip_version"] == 6 and p["caplen"] < p["wirelen"]:
            rules.add("ipv6_snaplen")
        if p["ip_version"] == 4 and p["ip_len"] == 0:
            rules.add("ipv4_zero_length")
        if p["inner_vlan_id"] is not None:
            rules.add("qinq")
        if p["tunnel"] in INNER_TUNNELS:
            rules.add("inner_tunnel")
        if p["ip_proto"] in (132, 136):
            rules.add("sctp_ports")
        if p["ip_proto"] in PORT_PROTOS and (
            p["src_port"] is None or (p["decode_status"] or "").endswith("truncated header")
        ):
            rules.add("truncated_transport")
        key = None
        if None not in (p["src_ip"], p["dst_ip"], p["ip_proto"], p["ip_version"]) and not p["frag_offset"]:
            ports = (_int(p["src_port"]), _int(p["dst_port"])) if p["ip_proto"] in PORT_PROTOS else (0, 0)
            vlan = p["inner_vlan_id"] if p["inner_vlan_id"] is not None else _int(p["vlan_id"])
            key = undirected(
                p["ip_version"], p["src_ip"], ports[0], p["dst_ip"], ports[1], p["ip_proto"], vlan
            )
        out.append((key, rules, p))
    return out, beyond


@contextlib.contextmanager
def _warnings() -> Iterator[list]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def compare(path: Path, tmp: Path) -> dict[str, Any]:
    """pktstream against NFStream on one capture; raises AssertionError on an unexplained gap."""
    nfs_path = plain_copy(path, tmp)
    refused, theirs = nfstream_flows(str(nfs_path))
    ours = our_flows(path)
    per_packet, stopped_at = packet_rules(path, nfs_path)
    # Where pktstream stopped with a warning, NFStream's libpcap may read on: what it has beyond
    # pktstream's packets may only add to flows, never contradict them.
    beyond = sum(v[1] for v in theirs.values()) - stopped_at if stopped_at else 0
    # Self-consistency first: the flows hold exactly the packets that have a key.
    by_key: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0])
    for key, _, p in per_packet:
        if key is not None:
            by_key[key][0] += 1
            by_key[key][1] += p["wirelen"]
    assert {k: v[1:] for k, v in ours.items()} == {k: v for k, v in by_key.items()}
    if refused is not None:
        return {"refused": refused, "keys": len(ours)}
    excused: dict[tuple, list[int]] = collections.defaultdict(lambda: [0, 0])
    wrapped: collections.Counter[tuple] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    for key, rules, p in per_packet:
        if key is not None and p["wirelen"] > 0xFFFF:
            wrapped[key] += p["wirelen"] - (p["wirelen"] & 0xFFFF)
        if key is not None and rules:
            excused[key][0] += 1
            excused[key][1] += p["wirelen"]
    agree, explained = 0, 0
    for key in set(ours) | set(theirs):
        o, n = ours.get(key, [0, 0, 0]), theirs.get(key, [0, 0, 0])
        if o == n:
            agree += 1
            continue
        if wrapped[key]:
            # Exact: NFStream's 16-bit packet size drops 65536 per wrap from the byte count.
            o = [o[0], o[1], o[2] - wrapped[key]]
            reasons["u16_size"] += 1
            if o == n:
                explained += 1
                continue
        if n[1] > o[1] and n[1] - o[1] <= beyond:
            # pktstream stopped at a tail it cannot read (and warned); libpcap read on.
            beyond -= n[1] - o[1]
            reasons["pktstream_stopped"] += n[1] - o[1]
        elif key in ours:
            x = excused.get(key, [0, 0])
            assert x[0] > 0, f"{path}: {key}: pktstream {o} vs NFStream {n}, no rule applies"
            assert o[1] - x[0] <= n[1] <= o[1], f"{path}: {key}: packets {o} vs {n}, {x} excused"
            assert o[2] - x[1] <= n[2] <= o[2], f"{path}: {key}: bytes {o} vs {n}, {x} excused"
            for k2, rules, _ in per_packet:
                if k2 == key:
                    reasons.update(rules)
        else:
            # A flow only NFStream has: the outer packet of a tunnel we open, ports it read past
            # the captured bytes, or a non-IP frame its parser took for IP.
            ips = {key[1], key[3]}
            outer = [
                p
                for _, r, p in per_packet
                if "inner_tunnel" in r and {p["outer_src_ip"], p["outer_dst_ip"]} == ips
            ]
            cut = [
                p
                for _, r, p in per_packet
                if "truncated_transport" in r and {p["src_ip"], p["dst_ip"]} == ips
            ]
            not_ip = [p for k2, _, p in per_packet if k2 is None and p["ethertype"] not in (0x0800, 0x86DD)]
            sctp = [p for _, r, p in per_packet if "sctp_ports" in r and {p["src_ip"], p["dst_ip"]} == ips]
            if sctp and key[5] in (132, 136) and key[2] == key[4] == 0:
                assert n[1] <= len(sctp), f"{path}: {key}: {n} but {len(sctp)} SCTP/UDP-Lite packets"
                reasons["sctp_ports"] += n[1]
            elif outer:
                assert n[1] <= len(outer), f"{path}: {key}: {n} but {len(outer)} tunnelled packets"
                reasons["inner_tunnel"] += n[1]
            elif cut:
                assert n[1] <= len(cut), f"{path}: {key}: {n} but {len(cut)} cut packets"
                reasons["truncated_transport"] += n[1]
            else:
                assert n[1] <= len(not_ip), f"{path}: {key}: only NFStream has {n}, no rule explains it"
                reasons["not_ip_as_ip"] += n[1]
        explained += 1
    our_agree = sum(1 for k, v in ours.items() if theirs.get(k) == v)
    return {
        "refused": None,
        "keys": agree + explained,
        "agree": agree,
        "explained": explained,
        "reasons": reasons,
        "our_keys": len(ours),
        "our_agree": our_agree,
    }


def corpus() -> list[Path]:
    manifest = PCAPS / "MANIFEST.tsv"
    if not manifest.exists():
        if os.environ.get("PKTSTREAM_REQUIRE_CORPUS") == "1":
            raise RuntimeError(f"PKTSTREAM_REQUIRE_CORPUS=1 but {manifest} is missing")
        return []
    lines = manifest.read_text().splitlines()[1:]
    return [PCAPS / line.split("\t")[0] for line in lines if line]


CAPTURES = sorted(DATA.glob("*.pcap*")) + corpus()


def _id(p: Path) -> str:
    return str(p.relative_to(PCAPS)) if PCAPS in p.parents else p.name


def _readable(path: Path) -> bool:
    try:
        pktstream.read_pcap(path, columns=["caplen"])
    except pktstream.FormatError:
        return False
    return True
