"""tshark as a test oracle: the column values pktstream must produce, frame by frame.

:func:`run_tshark` runs ``tshark -T fields`` once per capture, with reassembly and
defragmentation off (pktstream reassembles nothing), and keeps every occurrence of every field:
a tunnelled packet has one ``ip.src`` per IP header, an ICMP error one more for the header it
quotes. :func:`expect` then walks each frame's ``frame.protocols`` chain the way pktstream
decodes a packet (link layer, VLAN tags, MPLS, PPPoE, IP and IPv6 with extension headers,
IP-in-IP, GRE, ERSPAN, VXLAN, Geneve, GTP-U, then TCP/UDP/UDP-Lite/SCTP/ICMP) and picks, for
every column, the occurrence that belongs to the layer the contract names: innermost IP for
tunnels, never the header quoted inside an ICMP error. Three things the decoder does beyond the
contract's text are checked the same way, marked where they are handled: 802.11 (plain and
radiotap) data frames, Teredo as tunnel kind ``"teredo"``, and PPP in PPTP's enhanced GRE.

Where tshark decodes deeper than pktstream (decrypted WireGuard, 6LoWPAN, L2TP, ...) the walk
stops at the first layer pktstream does not decode, and the columns come from the layers before
it. Every such case is listed, with its reason, in :data:`DEEPER_THAN_CONTRACT`; a frame where
tshark goes deeper through a protocol missing from that table is an :class:`OracleError`, so the
table can only grow on purpose. Where the contract deliberately differs from tshark (Community
ID of fragments, of truncated transport headers and of IPv6 or tunnelled IP-only flows; frame
numbers with pcapng custom blocks) the rule sits next to the code that applies it.

Example:
    >>> frames = run_tshark("../shared/pcaps/wireshark/ipoipoip.pcap")  # doctest: +SKIP
    >>> expect(packet_records(frames)[0]).values["tunnel"]  # doctest: +SKIP
    'ipip'
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TSHARK = shutil.which("tshark")

#: Preferences: no reassembly or defragmentation (pktstream reassembles nothing), raw TCP
#: sequence numbers, the IPv4 total length as written (no "TSO" guess for a zero length), and the
#: Community ID post-dissector with the contract's parameters (seed 0, base64).
PREFS: dict[str, str] = {
    "ip.defragment": "FALSE",
    "ipv6.defragment": "FALSE",
    "ip.tso_support": "FALSE",
    "tcp.desegment_tcp_streams": "FALSE",
    "tcp.reassemble_out_of_order": "FALSE",
    "tcp.analyze_sequence_numbers": "FALSE",
    "tcp.relative_sequence_numbers": "FALSE",
    "sctp.reassembly": "FALSE",
    "communityid.seed": "0",
    "communityid.do_base64": "TRUE",
}


def _owned(owners: tuple[str, ...], names: str) -> dict[str, tuple[str, ...]]:
    return {name: owners for name in names.split()}


_SNAP_PIDS = (
    "pid cisco_pid apple_atalk_pid foundry_pid cimetrics_pid wlccp_pid iana_pid hpteam_pid "
    "nortel_pid extreme_pid bluetooth_pid apple_awdl_pid"
)

#: tshark fields, each with the ``frame.protocols`` layer names that produce one occurrence of it
#: (``ip.version`` is added by both the IPv4 and the IPv6 dissector; UDP-Lite uses udp.* fields).
FIELDS: dict[str, tuple[str, ...]] = {
    **_owned(
        ("frame",),
        "frame.number frame.time_epoch frame.len frame.cap_len frame.interface_id "
        "frame.encap_type frame.cb_pen _ws.malformed communityid",
    ),
    **_owned(("eth",), "eth.src eth.dst eth.type eth.len"),
    **_owned(("vlan",), "vlan.id vlan.etype"),
    **_owned(("ieee8021ad",), "ieee8021ad.id"),
    **_owned(("ieee8021ad", "ieee8021ah"), "ieee8021ah.etype"),
    **_owned(("llc",), "llc.oui llc.type " + " ".join(f"llc.{pid}" for pid in _SNAP_PIDS.split())),
    **_owned(("sll",), "sll.src.eth sll.halen sll.etype sll.ltype sll.gretype"),
    **_owned(("fr",), "fr.snaptype"),
    **_owned(("ip", "ipv6"), "ip.version"),
    **_owned(("ip",), "ip.hdr_len ip.len ip.flags.mf ip.frag_offset ip.ttl ip.proto ip.src ip.dst"),
    **_owned(("ipv6",), "ipv6.plen ipv6.nxt ipv6.hlim ipv6.src ipv6.dst"),
    **_owned(("ipv6.hopopts",), "ipv6.hopopts.nxt ipv6.hopopts.len_oct"),
    **_owned(("ipv6.routing",), "ipv6.routing.nxt ipv6.routing.len_oct"),
    **_owned(("ipv6.dstopts",), "ipv6.dstopts.nxt ipv6.dstopts.len_oct"),
    **_owned(("ipv6.fraghdr",), "ipv6.fraghdr.nxt ipv6.fraghdr.offset ipv6.fraghdr.more"),
    **_owned(("ah",), "ah.next_header ah.length"),
    **_owned(("mipv6",), "mip6.proto mip6.hlen"),
    **_owned(("hip",), "hip.proto hip.hdr_len"),
    **_owned(("shim6",), "shim6.nxt shim6.len"),
    **_owned(
        ("tcp",),
        "tcp.srcport tcp.dstport tcp.flags tcp.seq_raw tcp.ack_raw tcp.window_size_value "
        "tcp.urgent_pointer tcp.hdr_len tcp.len",
    ),
    **_owned(("udp", "udplite"), "udp.srcport udp.dstport udp.length udp.checksum"),
    **_owned(("sctp",), "sctp.srcport sctp.dstport sctp.checksum"),
    **_owned(("icmp",), "icmp.type icmp.code icmp.checksum"),
    **_owned(("icmpv6",), "icmpv6.type icmpv6.code icmpv6.checksum"),
    "frame.protocols": ("frame",),  # last: the chain is the last cell of a line
}

#: Layers tshark decodes but the contract does not, after which tshark finds another link,
#: network or transport header. The walk stops at the key; the columns come from the layers
#: before it. A key ``a>b`` means: ``b`` directly after ``a`` without a layer name in between.
DEEPER_THAN_CONTRACT: dict[str, str] = {
    "wg": "WireGuard: tshark decrypts transport data with the keys of the capture's Decryption "
    "Secrets Block and dissects the inner packet; pktstream sees an opaque UDP payload",
    "6lowpan": "6LoWPAN (IPv6 over 802.15.4) is not decoded by the contract",
    "ayiya": "AYIYA (anything in anything, UDP 5072) is not a tunnel kind of the contract",
    "etherip": "EtherIP (IP protocol 97) is not a tunnel kind of the contract",
    "l2tp": "L2TP is not a tunnel kind of the contract",
    "ppp": "PPP is decoded only in a PPPoE session or PPTP's GRE, and only for IP payloads",
    "esp": "ESP stops the contract's walk (tshark decrypts it only with configured SAs)",
    "ah": "AH is walked only as an IPv6 extension header; over IPv4, ip_proto is 51 and the "
    "transport columns stay NULL",
    "nsh": "Network Service Header is not decoded by the contract",
    "capwap.data": "CAPWAP data channel is not a tunnel kind of the contract",
    "lisp-data": "LISP data plane is not a tunnel kind of the contract",
    "openvpn": "OpenVPN is not decoded by the contract",
    "pwethheuristic": "Ethernet pseudowire over MPLS: the contract decodes IP directly under MPLS",
    "pwethcw": "Ethernet pseudowire over MPLS: the contract decodes IP directly under MPLS",
    "pwethnocw": "Ethernet pseudowire over MPLS: the contract decodes IP directly under MPLS",
    "udp>ip": "IP directly in UDP without a named layer (tshark's VXLAN-GPE, UDP 4790): not a "
    "tunnel kind of the contract",
    "udp>ipv6": "IPv6 directly in UDP without a named layer (tshark's VXLAN-GPE, UDP 4790): not "
    "a tunnel kind of the contract",
    "udp>eth": "Ethernet directly in UDP without a named layer: not a tunnel kind of the contract",
}

#: Link types the contract decodes, by tshark encapsulation (frame.encap_type) -> LINKTYPE_ values.
DECODED_ENCAPS: dict[int, frozenset[int]] = {
    1: frozenset({1}),  # Ethernet
    25: frozenset({113}),  # Linux cooked (SLL)
    210: frozenset({276}),  # Linux cooked v2 (SLL2)
    7: frozenset({101, 12, 14}),  # raw IP
    129: frozenset({228}),  # raw IPv4
    130: frozenset({229}),  # raw IPv6
    15: frozenset({0}),  # BSD null
    174: frozenset({108}),  # OpenBSD loop
    # 802.11, plain and behind radiotap: not in the contract's list, but src/decode/link.rs decodes
    # unprotected data frames (LLC/SNAP ethertype, then IP); checked here against tshark.
    20: frozenset({105}),
    23: frozenset({127}),
    # Link layers in src/decode/link_extra.rs (LLC/SNAP or an NLPID in front of IP).
    2: frozenset({6}),  # Token Ring
    5: frozenset({10}),  # FDDI
    6: frozenset({10}),  # FDDI, bit-swapped addresses (what libpcap writes as LINKTYPE_FDDI)
    26: frozenset({107}),  # Frame Relay
}
DECODED_LINKTYPES = frozenset().union(*DECODED_ENCAPS.values())

#: Columns a link type the contract does not decode leaves NULL.
DECODE_COLUMNS: tuple[str, ...] = (
    "eth_src", "eth_dst", "ethertype", "vlan_id", "inner_vlan_id", "ip_version", "src_ip",
    "dst_ip", "ip_proto", "ttl", "ip_len", "frag_offset", "more_fragments", "src_port",
    "dst_port", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_window", "icmp_type", "icmp_code",
    "payload_len", "community_id", "tunnel", "outer_src_ip", "outer_dst_ip",
)  # fmt: skip

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
TRANSPORTS = ("tcp", "udp", "udplite", "sctp", "icmp", "icmpv6")
#: UDP ports on which pktstream decodes a tunnel, like tshark on either port (Teredo is beyond the
#: contract's list of tunnel kinds, but src/decode/tunnel.rs decodes it as "teredo").
UDP_TUNNELS: dict[str, int] = {"vxlan": 4789, "geneve": 6081, "gtp": 2152, "teredo": 3544}
#: Last fixed-header field of each decoded layer: missing means tshark ran out of captured bytes.
HEADER_END: dict[str, tuple[str, ...]] = {
    "eth": ("eth.type", "eth.len"),
    "vlan": ("vlan.etype",),
    "ieee8021ad": ("ieee8021ah.etype",),
    "ip": ("ip.dst",),
    "ipv6": ("ipv6.dst",),
    "tcp": ("tcp.urgent_pointer",),
    "udp": ("udp.checksum",),
    "udplite": ("udp.checksum",),
    "sctp": ("sctp.checksum",),
    "icmp": ("icmp.checksum",),
    "icmpv6": ("icmpv6.checksum",),
}
_NETWORKISH = frozenset({"eth", "vlan", "ip", "ipv6", *TRANSPORTS})


class OracleError(AssertionError):
    """tshark's output does not fit the oracle's model; fix the oracle, not the decoder."""


@dataclass(frozen=True)
class AnyOf:
    """An expectation the contract leaves open between a few values."""

    options: tuple[Any, ...]
    why: str

    def accepts(self, value: Any) -> bool:
        return any(same(value, option) for option in self.options)

    def __repr__(self) -> str:
        return f"AnyOf{self.options!r}"


@dataclass(frozen=True)
class Satisfies:
    """An expectation stated as a predicate (e.g. "a non-NULL decode status")."""

    check: Callable[[Any], bool]
    what: str

    def accepts(self, value: Any) -> bool:
        return bool(self.check(value))

    def __repr__(self) -> str:
        return f"<{self.what}>"


def same(ours: Any, expected: Any, *, address: bool = False) -> bool:
    """Typed equality; with ``address``, IP addresses compare by value (``2001:DB8::1`` ==
    ``2001:db8::1``)."""
    if isinstance(expected, (AnyOf, Satisfies)):
        return expected.accepts(ours)
    if address and isinstance(ours, str) and isinstance(expected, str):
        try:
            return ipaddress.ip_address(ours) == ipaddress.ip_address(expected)
        except ValueError:
            return False
    return ours == expected and type(ours) is type(expected)


@dataclass
class Frame:
    """One tshark record: every occurrence of every field, and the protocol chain."""

    values: dict[str, list[str]]
    chain: list[str]

    @property
    def number(self) -> int:
        return int(self.values["frame.number"][0])

    def first(self, name: str) -> str | None:
        occurrences = self.values.get(name) or []
        return occurrences[0] if occurrences else None

    def at(self, name: str, pos: int) -> str | None:
        """Value of field ``name`` for the layer at ``chain[pos]``: the n-th occurrence, where n
        counts the earlier layers that produce this field."""
        owners = FIELDS[name]
        index = sum(1 for layer in self.chain[:pos] if layer in owners)
        occurrences = self.values.get(name) or []
        return occurrences[index] if index < len(occurrences) else None


@dataclass
class TsharkResult:
    frames: list[Frame]
    returncode: int
    stderr: str

    @property
    def error(self) -> str | None:
        """tshark's complaint about the file, if any (a cut-short file still lists its frames)."""
        lines = [line for line in self.stderr.splitlines() if "Running as user" not in line]
        text = " ".join(line.strip() for line in lines).strip()
        return text or None

    @property
    def cut_short(self) -> bool:
        return "cut short in the middle of a packet" in self.stderr

    @property
    def rejected(self) -> bool:
        """tshark could not read the file through to its end (corrupt, unsupported, ...)."""
        return self.error is not None and not self.cut_short


@functools.cache
def tshark_version() -> str:
    if TSHARK is None:
        return "none"
    out = subprocess.run([TSHARK, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"TShark \(Wireshark\) (\S+)", out)
    return match.group(1) if match else out.splitlines()[0]


def tshark_command(path: str | os.PathLike[str], **prefs: str) -> list[str]:
    if TSHARK is None:
        raise OracleError("tshark is not installed")
    cmd = [TSHARK, "-r", os.fspath(path), "-n", "--enable-protocol", "communityid"]
    for pref, value in {**PREFS, **{k.replace("__", "."): v for k, v in prefs.items()}}.items():
        cmd += ["-o", f"{pref}:{value}"]
    cmd += ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in FIELDS:
        cmd += ["-e", name]
    return cmd


def run_tshark(path: str | os.PathLike[str], cache_dir: Path | None = None) -> TsharkResult:
    """Every record tshark reads from ``path`` (packets and pcapng custom blocks alike).

    With ``cache_dir``, the result is kept on disk keyed by the file's content (SHA-256) and by the
    tshark version, preferences and fields, so a second test run does not run tshark again.
    """
    cmd = tshark_command(path)
    cache_file = None
    if cache_dir is not None:
        content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        key = json.dumps([content, tshark_version(), cmd[3:]])
        cache_file = Path(cache_dir) / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")
        if cache_file.exists():
            cached = json.loads(cache_file.read_text())
            return _parse(cached["stdout"], cached["returncode"], cached["stderr"])
    stdout, returncode, stderr = _tshark(cmd)
    if "0" in _column(stdout, "ip.len").replace("\t", ",").split(","):
        # An IPv4 total length of 0, as TCP segmentation offload leaves it. With ip.tso_support
        # off, ip.len stays the raw 0 but tshark stops at that header; with it on, tshark goes
        # on but reports the frame's length. Take ip.len from the first run, the rest from a
        # second one.
        tso_out, _, _ = _tshark(tshark_command(path, ip__tso_support="TRUE"))
        stdout = _merge_ip_len(stdout, tso_out)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        payload = {"stdout": stdout, "returncode": returncode, "stderr": stderr}
        cache_file.write_text(json.dumps(payload))
    return _parse(stdout, returncode, stderr)


def _tshark(cmd: list[str]) -> tuple[str, int, str]:
    env = {**os.environ, "LC_ALL": "C"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if "aren't valid" in proc.stderr or "unknown preference" in proc.stderr.lower():
        raise OracleError(f"tshark refuses the oracle's fields or preferences: {proc.stderr}")
    return proc.stdout, proc.returncode, proc.stderr


def _column(stdout: str, name: str) -> str:
    index = list(FIELDS).index(name)
    return "\t".join(line.split("\t")[index] for line in stdout.splitlines())


def _merge_ip_len(raw: str, tso: str) -> str:
    """``tso``'s lines with the raw ``ip.len`` values of ``raw`` for the IP headers ``raw`` has."""
    index = list(FIELDS).index("ip.len")
    merged = []
    for raw_line, tso_line in zip(raw.splitlines(), tso.splitlines()):
        raw_len = raw_line.split("\t")[index].split(",") if raw_line.split("\t")[index] else []
        cells = tso_line.split("\t")
        tso_len = cells[index].split(",") if cells[index] else []
        cells[index] = ",".join(raw_len + tso_len[len(raw_len) :])
        merged.append("\t".join(cells))
    return "\n".join(merged)


def _parse(stdout: str, returncode: int, stderr: str) -> TsharkResult:
    names = list(FIELDS)
    frames = []
    for line in stdout.splitlines():
        cells = line.split("\t")
        if len(cells) != len(names):
            raise OracleError(f"tshark printed {len(cells)} cells, expected {len(names)}: {line!r}")
        values = {name: (cell.split(",") if cell else []) for name, cell in zip(names, cells)}
        chain = cells[-1].split(":") if cells[-1] else []
        for name, occurrences in values.items():
            owners = FIELDS[name]
            if owners != ("frame",) and len(occurrences) > sum(layer in owners for layer in chain):
                # more occurrences than layers: Frame.at would pick the wrong layer's value
                raise OracleError(f"{name} occurs {len(occurrences)} times in {':'.join(chain)}")
        frames.append(Frame(values, chain))
    return TsharkResult(frames, returncode, stderr)


def packet_records(frames: Sequence[Frame]) -> list[Frame]:
    """The frames that are packets. tshark also numbers pcapng custom blocks (which carry a
    Private Enterprise Number and no encapsulation) as frames; pktstream rows are packets only."""
    return [f for f in frames if f.first("frame.cb_pen") is None and f.first("frame.encap_type")]


def epoch_ns(text: str | None) -> int | None:
    """``frame.time_epoch`` ("1500000000.830079000", maybe negative) as exact integer ns."""
    if not text:
        return None
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    if len(frac) > 9 or not (whole + frac).isdigit():
        raise OracleError(f"unexpected frame.time_epoch {text!r}")
    ns = int(whole) * 1_000_000_000 + int(frac.ljust(9, "0") or "0")
    return -ns if negative else ns


# ---- Community ID v1 (https://github.com/corelight/community-id-spec) --------------------------

_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
                139: 140, 140: 139, 144: 145, 145: 144}  # fmt: skip


def community_id(proto: int, src: str, dst: str, sport: int | None = None,
                 dport: int | None = None, seed: int = 0) -> str:  # fmt: skip
    """Community ID v1 of a flow; ``sport``/``dport`` are ICMP type/code for ICMP(v6)."""
    saddr, daddr = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    one_way = False
    if proto in (1, 58) and sport is not None:
        pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
        if sport in pairs:
            dport = pairs[sport]
        else:
            one_way = True
    has_ports = sport is not None and dport is not None
    ordered = (one_way or saddr < daddr
               or (saddr == daddr and (not has_ports or sport <= dport)))  # type: ignore[operator]  # fmt: skip
    if not ordered:
        saddr, daddr, sport, dport = daddr, saddr, dport, sport
    data = struct.pack("!H", seed) + saddr + daddr + struct.pack("!BB", proto, 0)
    if has_ports:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


# ---- the walk ---------------------------------------------------------------------------------


@dataclass
class IpLayer:
    pos: int  # index in the chain
    version: int
    ext: list[int] = field(default_factory=list)  # chain indexes of IPv6 extension headers
    transport: int | None = None  # chain index of the transport layer after it


@dataclass
class Expectation:
    """What pktstream must produce for one frame."""

    values: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # exclusions and contract rules applied
    oracle_errors: list[str] = field(default_factory=list)


def _int(text: str | None, base: int = 10) -> int | None:
    return None if text is None else int(text, base)


def _bool(text: str | None) -> bool | None:
    return None if text is None else text in ("1", "True")


def expect(frame: Frame, row_number: int | None = None) -> Expectation:
    """The pktstream row for a tshark packet record (``row_number``: its 1-based position among
    the capture's packets; defaults to tshark's frame number)."""
    f, chain = frame, frame.chain
    v: dict[str, Any] = {}
    notes: list[str] = []
    errors: list[str] = []

    # frame_number: tshark numbers every record, including pcapng custom blocks; pktstream
    # numbers packets. Without custom blocks the two agree.
    v["frame_number"] = row_number if row_number is not None else f.number
    v["ts"] = epoch_ns(f.first("frame.time_epoch"))  # None only for Simple Packet Blocks
    v["caplen"] = _int(f.first("frame.cap_len"))
    v["wirelen"] = _int(f.first("frame.len"))
    v["interface_id"] = _int(f.first("frame.interface_id"))  # absent for classic pcap
    encap = _int(f.first("frame.encap_type"))
    if encap in DECODED_ENCAPS:
        options = tuple(sorted(DECODED_ENCAPS[encap]))
        v["link_type"] = options[0] if len(options) == 1 else AnyOf(options, "same tshark encap")
    else:
        v["link_type"] = Satisfies(lambda x: x not in DECODED_LINKTYPES, "a link type not decoded")
        for column in DECODE_COLUMNS:
            v[column] = None
        v["decode_status"] = Satisfies(
            lambda x: isinstance(x, str) and x.startswith("link:"), 'a "link: ..." status'
        )
        notes.append(f"link type not decoded by the contract (tshark encap {encap})")
        return Expectation(v, notes, errors)

    # ---- walk the chain as the contract decodes ----
    tags: list[int] = []  # VLAN tags of the outermost link header
    ips: list[IpLayer] = []
    tunnel: str | None = None
    truncated: list[str] = []
    i, n = 0, len(chain)

    def skip_ethertype(k: int) -> int:
        return k + 1 if k < n and chain[k] == "ethertype" else k

    def end_ok(pos: int) -> bool:
        names = HEADER_END.get(chain[pos])
        if names is None or any(f.at(name, pos) is not None for name in names):
            return True
        truncated.append(chain[pos])
        return False

    # link layer
    first_link = chain[0] if chain else None
    ethertype: Any = None
    if encap == 1:
        if first_link != "eth":
            raise OracleError(f"frame {f.number}: Ethernet frame without eth layer: {chain}")
        end_ok(0)
        i = 1
    elif encap in (25, 210):
        i = 1
    elif encap in (15, 174, 7):
        if first_link not in ("null", "raw"):
            raise OracleError(f"frame {f.number}: unexpected link layer {chain[:1]}")
        i = 1
    elif encap in (2, 5, 6):
        if first_link not in ("tr", "fddi"):
            raise OracleError(f"frame {f.number}: unexpected link layer {chain[:1]}")
        i = 1
    elif encap == 26:
        if first_link != "fr":
            raise OracleError(f"frame {f.number}: unexpected link layer {chain[:1]}")
        ethertype = _int(f.at("fr.snaptype", 0), 16)  # only SNAP (NLPID 0x80) names an ethertype
        i = 1
    elif encap in (20, 23):
        if "wlan" not in chain:
            raise OracleError(f"frame {f.number}: 802.11 frame without wlan layer: {chain}")
        i = chain.index("wlan") + 1
    # raw IPv4 / IPv6 (129, 130): the chain starts at ip / ipv6

    # link-level run: VLAN tags, then the payload ethertype
    if encap == 1 and i < n and chain[i] == "ethertype":
        ethertype = _int(f.at("eth.type", 0), 16)
        i = skip_ethertype(i)
        while i < n and chain[i] in ("vlan", "ieee8021ad"):
            tags.append(i)
            end_ok(i)
            name = "vlan.etype" if chain[i] == "vlan" else "ieee8021ah.etype"
            ethertype = _int(f.at(name, i), 16)
            i = skip_ethertype(i + 1)
    elif encap in (1, 2, 5, 6, 20, 23) and i < n and chain[i] == "llc":
        # 802.3 (or 802.11) LLC. Contract: NULL "for 802.3/LLC frames without SNAP"; behind a
        # SNAP header the protocol ID is an ethertype only for OUI 00-00-00 (RFC 1042) and
        # 00-00-F8 (802.1H); other OUIs number their own protocols (CDP is Cisco's 0x2000).
        oui = f.at("llc.oui", i)
        if oui is not None:
            if _int(oui, 16) in (0x000000, 0x0000F8):
                ethertype = _snap_protocol(f, i)
            i += 1
    elif encap in (25, 210):
        for name in ("sll.etype", "sll.ltype", "sll.gretype"):
            if f.at(name, 0) is not None:
                ethertype = _int(f.at(name, 0), 16)
                break
        i = skip_ethertype(i)
        if i < n and chain[i] in ("vlan", "ieee8021ad"):
            notes.append("VLAN tags under SLL: ethertype is the SLL protocol or the tagged type")
            sll_protocol = ethertype
            while i < n and chain[i] in ("vlan", "ieee8021ad"):
                tags.append(i)
                name = "vlan.etype" if chain[i] == "vlan" else "ieee8021ah.etype"
                ethertype = _int(f.at(name, i), 16)
                i = skip_ethertype(i + 1)
            ethertype = AnyOf((sll_protocol, ethertype), "contract: 'for SLL the protocol field'")

    # network and tunnel layers. A tunnel counts once pktstream "enters" it, i.e. decodes its
    # payload: from then on the network columns describe only the layers inside (none, if the
    # payload holds no IP header), and the outermost IP header goes to outer_src_ip/outer_dst_ip.
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
            ports = {_int(f.at("udp.srcport", i - 1)), _int(f.at("udp.dstport", i - 1))}
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

    if truncated:
        notes.append(f"header cut by caplen in: {', '.join(truncated)}")

    # deeper than the contract?
    rest = chain[stop:]
    previous = chain[stop - 1] if stop > 0 else None
    if rest and previous not in ("icmp", "icmpv6") and _NETWORKISH.intersection(rest):
        key = f"{previous}>{rest[0]}" if rest[0] in _NETWORKISH else rest[0]
        reason = DEEPER_THAN_CONTRACT.get(key)
        if reason is None:
            errors.append(
                f"tshark decodes deeper than the contract through {key!r} ({':'.join(chain)}); "
                "add it to DEEPER_THAN_CONTRACT with a reason"
            )
        else:
            notes.append(f"{key}: {reason}")

    # ---- link columns ----
    if encap == 1:
        v["eth_src"], v["eth_dst"] = f.at("eth.src", 0), f.at("eth.dst", 0)
    elif encap in (25, 210):
        v["eth_src"] = f.at("sll.src.eth", 0) if _int(f.at("sll.halen", 0)) == 6 else None
        v["eth_dst"] = None
    else:
        v["eth_src"] = v["eth_dst"] = None
    if encap in (1, 25, 210, 20, 23, 2, 5, 6, 26):
        v["ethertype"] = ethertype
    else:
        # null / loop / raw IP: the contract defines no ethertype for these link types
        inner = ips[0].version if ips else None
        by_version = {4: 0x0800, 6: 0x86DD}.get(inner)  # type: ignore[arg-type]
        v["ethertype"] = AnyOf((None, by_version), "no ethertype defined for null/loop/raw")
    tag_ids = [_int(f.at("vlan.id" if chain[t] == "vlan" else "ieee8021ad.id", t)) for t in tags]
    v["vlan_id"] = tag_ids[0] if tag_ids else None
    v["inner_vlan_id"] = tag_ids[1] if len(tag_ids) > 1 else None

    # ---- IP columns: innermost decoded IP header (inside the innermost tunnel entered) ----
    for column in DECODE_COLUMNS[5:]:
        v[column] = None
    if ips[inner_from:]:
        ip = ips[-1]
        p = ip.pos
        v["ip_version"] = ip.version
        final_proto: int | None
        if ip.version == 4:
            v["src_ip"], v["dst_ip"] = f.at("ip.src", p), f.at("ip.dst", p)
            final_proto = _int(f.at("ip.proto", p))
            v["ttl"] = _int(f.at("ip.ttl", p))
            v["ip_len"] = _int(f.at("ip.len", p))
            offset = _int(f.at("ip.frag_offset", p))
            v["frag_offset"] = None if offset is None else offset * 8  # tshark: 8-byte units
            v["more_fragments"] = _bool(f.at("ip.flags.mf", p))
            hdr_len = _int(f.at("ip.hdr_len", p))
            ip_payload = None if v["ip_len"] is None or hdr_len is None else v["ip_len"] - hdr_len
            if v["ip_len"] == 0:  # TSO (see run_tshark): pktstream takes the length from the frame
                notes.append("IPv4 total length 0 (TSO)")
                ip_payload = None
        else:
            v["src_ip"], v["dst_ip"] = f.at("ipv6.src", p), f.at("ipv6.dst", p)
            final_proto = _int(f.at("ipv6.nxt", p))
            v["ttl"] = _int(f.at("ipv6.hlim", p))
            plen = _int(f.at("ipv6.plen", p))
            v["ip_len"] = None if plen is None else 40 + plen
            ip_payload = plen
            for e in ip.ext:
                nxt_field, len_field, to_bytes = IPV6_EXT_NEXT[chain[e]]
                final_proto = _int(f.at(nxt_field, e))
                if chain[e] == "ipv6.fraghdr":
                    offset = _int(f.at("ipv6.fraghdr.offset", e))
                    v["frag_offset"] = None if offset is None else offset * 8  # 8-byte units
                    v["more_fragments"] = _bool(f.at("ipv6.fraghdr.more", e))
                    ext_len: int | None = 8
                else:
                    raw = _int(f.at(len_field, e)) if len_field else None
                    ext_len = None if raw is None or to_bytes is None else to_bytes(raw)
                ip_payload = None if ip_payload is None or ext_len is None else ip_payload - ext_len
        v["ip_proto"] = final_proto
        tunnelled = tunnel is not None or len(ips) > 1
        _transport_columns(f, chain, ip, final_proto, ip_payload, tunnelled, v, notes, errors)
    v["tunnel"] = tunnel
    if tunnel is not None:
        outer = ips[0]
        src, dst = ("ip.src", "ip.dst") if outer.version == 4 else ("ipv6.src", "ipv6.dst")
        v["outer_src_ip"], v["outer_dst_ip"] = f.at(src, outer.pos), f.at(dst, outer.pos)

    # ---- decode_status ----
    if truncated:
        v["decode_status"] = Satisfies(lambda x: isinstance(x, str) and x != "", "a decode status")
    elif f.first("_ws.malformed") is not None:
        # tshark flags a malformed layer, possibly one pktstream does not decode: open
        v["decode_status"] = AnyOf((None, Satisfies(bool, "any status")), "tshark: malformed")
    else:
        v["decode_status"] = None
    return Expectation(v, notes, errors)


def _snap_protocol(f: Frame, pos: int) -> int | None:
    """The protocol ID of the SNAP header at ``chain[pos]``: tshark names the field after the OUI
    (``llc.type`` for RFC 1042 ethertypes, ``llc.cisco_pid``, ...)."""
    for name in ["llc.type"] + [f"llc.{pid}" for pid in _SNAP_PIDS.split()]:
        value = f.at(name, pos)
        if value is not None:
            return int(value, 16) if value.startswith("0x") else int(value)
    raise OracleError(f"frame {f.number}: SNAP header without a protocol ID field")


def chain_prev(chain: list[str], i: int) -> str | None:
    """The layer before ``chain[i]``, skipping tshark's ``ethertype`` pseudo-layer."""
    j = i - 1
    while j >= 0 and chain[j] == "ethertype":
        j -= 1
    return chain[j] if j >= 0 else None


def _transport_columns(f: Frame, chain: list[str], ip: IpLayer, proto: int | None,
                       ip_payload: int | None, tunnelled: bool, v: dict[str, Any],
                       notes: list[str], errors: list[str]) -> None:  # fmt: skip
    t = ip.transport if ip.transport is not None else len(chain)
    name = chain[t] if t < len(chain) else None
    sport = dport = None
    if name == "tcp":
        sport, dport = _int(f.at("tcp.srcport", t)), _int(f.at("tcp.dstport", t))
        v["tcp_flags"] = _int(f.at("tcp.flags", t), 16)
        v["tcp_seq"] = _int(f.at("tcp.seq_raw", t))
        v["tcp_ack"] = _int(f.at("tcp.ack_raw", t))
        v["tcp_window"] = _int(f.at("tcp.window_size_value", t))
        hdr_len = _int(f.at("tcp.hdr_len", t))  # bytes (tshark omits tcp.len for fragments)
        v["payload_len"] = None if ip_payload is None or hdr_len is None else ip_payload - hdr_len
        if any(note.startswith("IPv4 total length 0") for note in notes):
            v["payload_len"] = _int(f.at("tcp.len", t))  # from tshark's TSO run: frame-based
    elif name in ("udp", "udplite"):
        sport, dport = _int(f.at("udp.srcport", t)), _int(f.at("udp.dstport", t))
        length = _int(f.at("udp.length", t))
        if name == "udp":
            v["payload_len"] = None if length is None else length - 8
        else:  # UDP-Lite's length field is a checksum coverage; the contract says "UDP"
            v["payload_len"] = AnyOf(
                (None if ip_payload is None else ip_payload - 8,), "UDP-Lite: IP payload - 8"
            )
    elif name == "sctp":
        sport, dport = _int(f.at("sctp.srcport", t)), _int(f.at("sctp.dstport", t))
        v["payload_len"] = None if ip_payload is None else ip_payload - 12
    elif name in ("icmp", "icmpv6"):
        v["icmp_type"] = _int(f.at(f"{name}.type", t))
        v["icmp_code"] = _int(f.at(f"{name}.code", t))
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
