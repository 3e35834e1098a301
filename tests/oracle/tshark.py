"""Running tshark and reading its records: every occurrence of every field, and the protocol chain.

:func:`run_tshark` runs ``tshark -T fields`` once per capture, with reassembly and
defragmentation off (pktstream reassembles nothing), and keeps every occurrence of every field:
a tunnelled packet has one ``ip.src`` per IP header, an ICMP error one more for the header it
quotes. :meth:`Frame.at` picks the occurrence that belongs to one layer of the chain.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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


SNAP_PIDS = (
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
    **_owned(("llc",), "llc.oui llc.type " + " ".join(f"llc.{pid}" for pid in SNAP_PIDS.split())),
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


class OracleError(AssertionError):
    """tshark's output does not fit the oracle's model; fix the oracle, not the decoder."""



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

