"""pktstream against tshark, field by field, on every capture of the shared corpus.

The expected values come from :mod:`oracle` (tshark 4.0 with reassembly off); its docstring and
tables say which tshark occurrence each column takes and where the contract differs from tshark.
A failure lists ``file frame column: ours=... tshark=...`` for the first mismatches.
"""

from __future__ import annotations

import ipaddress
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import oracle
import pktstream
import pyarrow as pa
import pytest

#: Every column of the contract, in schema order; all of them are compared.
COLUMNS: tuple[str, ...] = (
    "frame_number", "ts", "caplen", "wirelen", "interface_id", "link_type", *oracle.DECODE_COLUMNS,
    "decode_status",
)  # fmt: skip
ADDRESS_COLUMNS = frozenset({"src_ip", "dst_ip", "outer_src_ip", "outer_dst_ip"})
SHOWN = 20


def columns_as_python(table: pa.Table) -> dict[str, list[Any]]:
    """Each column as a Python list; ``ts`` as exact integer nanoseconds."""
    out = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        out[name] = column.to_pylist()
    return out


def compare(label: str, table: pa.Table, frames: list[oracle.Frame]) -> tuple[list[str], list[str]]:
    """(mismatches, oracle errors) between a pktstream table and tshark's packet records."""
    mismatches: list[str] = []
    errors: list[str] = []
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        mismatches.append(f"{label}: columns missing from the table: {missing}")
    if table.num_rows != len(frames):
        mismatches.append(f"{label}: {table.num_rows} rows, tshark {len(frames)} packets")
    ours = columns_as_python(table)
    for row, frame in enumerate(frames[: table.num_rows]):
        expected = oracle.expect(frame, row_number=row + 1)
        where = f"{label} frame {frame.number}"
        errors += [f"{where}: {e}" for e in expected.oracle_errors]
        for column in COLUMNS:
            if column not in ours:
                continue
            value, want = ours[column][row], expected.values[column]
            if not oracle.same(value, want, address=column in ADDRESS_COLUMNS):
                note = f" [{'; '.join(expected.notes)}]" if expected.notes else ""
                mismatches.append(
                    f"{where} {column}: ours={value!r} tshark={want!r} ({':'.join(frame.chain)}){note}"
                )
            elif (
                column in ADDRESS_COLUMNS
                and value is not None
                and value != str(ipaddress.ip_address(value))  # RFC 5952, as ipaddress prints
            ):
                mismatches.append(f"{where} {column}: {value!r} is not in canonical form")
    return mismatches, errors


def report(mismatches: list[str]) -> str:
    by_column = Counter(m.split(": ")[0].split(" ")[-1] for m in mismatches)
    head = "\n".join(mismatches[:SHOWN])
    more = f"\n... and {len(mismatches) - SHOWN} more" if len(mismatches) > SHOWN else ""
    return f"{len(mismatches)} mismatches (by column: {dict(by_column)}):\n{head}{more}"


def check_against_tshark(path: Path, label: str, result: oracle.TsharkResult) -> None:
    frames = oracle.packet_records(result.frames)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = pktstream.read_pcap(path)
    truncated = [w for w in caught if issubclass(w.category, pktstream.TruncatedCaptureWarning)]
    mismatches, errors = compare(label, table, frames)
    if result.cut_short and not truncated:
        mismatches.append(f"{label}: tshark says cut short, no TruncatedCaptureWarning")
    if truncated and not result.cut_short:
        mismatches.append(f"{label}: TruncatedCaptureWarning ({truncated[0].message}) but tshark "
                          "reads the whole file")  # fmt: skip
    assert not errors, "oracle errors (fix tests/oracle/):\n" + "\n".join(errors[:SHOWN])
    assert not mismatches, report(mismatches)


def test_matches_tshark(good_capture: Any, tshark: Any) -> None:
    result = tshark(good_capture.path)
    # The manifest's broken files (no packet count) are left out; test_corpus checks them.
    assert not result.rejected, f"tshark rejects a file the manifest calls good: {result.error}"
    check_against_tshark(good_capture.path, good_capture.rel, result)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_synthetic_capture_matches_tshark(fmt: str, tshark: Any, tmp_path: Path) -> None:
    """The corpus has no VLAN tags, fragments or GRE/VXLAN tunnels; pktstream.testing.synth does."""
    from pktstream.testing import synth
    path = tmp_path / f"synth.{fmt}"
    writer = synth.write_pcap if fmt == "pcap" else synth.write_pcapng
    writer(path, 3000, seed=11)
    check_against_tshark(path, path.name, tshark(path))


def edge_case_frames(scapy: Any) -> dict[int, list[Any]]:
    """Frames the corpus and pktstream.testing.synth lack, by link type: every tunnel kind and shim,
    IPv6 extension headers, fragments, ICMP errors, 802.3/SNAP, IP headers cut by caplen, and
    the cooked, loopback and raw link types."""
    from scapy.all import (  # type: ignore[attr-defined]  # re-exported dynamically
        AH,
        ARP,
        ESP,
        GRE,
        ICMP,
        IP,
        LLC,
        PPP,
        SNAP,
        TCP,
        UDP,
        CookedLinux,
        Dot1AD,
        Dot1Q,
        Dot3,
        Ether,
        ICMPv6EchoRequest,
        IPv6,
        IPv6ExtHdrDestOpt,
        IPv6ExtHdrFragment,
        IPv6ExtHdrHopByHop,
        IPv6ExtHdrRouting,
        PPPoE,
        Raw,
    )  # fmt: skip
    from scapy.contrib.erspan import ERSPAN_II
    from scapy.contrib.geneve import GENEVE
    from scapy.contrib.gtp import GTP_U_Header, GTPEchoRequest
    from scapy.contrib.mpls import MPLS
    from scapy.layers.l2 import CookedLinuxV2
    from scapy.layers.sctp import SCTP, SCTPChunkInit
    from scapy.layers.vxlan import VXLAN

    def eth() -> Any:
        return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

    def ip4(**kw: Any) -> Any:
        return IP(src="192.0.2.1", dst="198.51.100.2", **kw)

    def ip6(**kw: Any) -> Any:
        return IPv6(src="2001:db8::1", dst="2001:db8:0:0:1::2", **kw)

    def inner() -> Any:
        return IP(src="10.1.1.1", dst="10.2.2.2") / TCP(sport=1234, dport=80, flags="SA", seq=7)

    def cut(frame: Any, keep: int) -> bytes:
        return bytes(frame)[:keep]

    def tso(frame: Any) -> bytes:  # IPv4 total length 0, as segmentation offload leaves it
        raw = bytearray(bytes(frame))
        raw[16:18] = b"\0\0"
        return bytes(raw)

    ethernet = [
        eth() / Dot1Q(vlan=10) / ip4() / UDP(sport=5, dport=53) / b"x",
        eth() / Dot1AD(vlan=100) / Dot1Q(vlan=20) / ip6() / TCP(),
        eth() / Dot1Q(vlan=7) / Dot1Q(vlan=8) / ARP(),
        eth() / ip4() / GRE() / inner(),
        eth() / ip4() / GRE(proto=0x6558) / Ether() / Dot1Q(vlan=99) / inner(),
        eth() / ip4() / GRE(proto=0x88BE, seqnum_present=1) / ERSPAN_II(vlan=5) / Ether() / inner(),
        eth() / ip4() / GRE(proto=0x880B, version=1, key_present=1, seqnum_present=1)
        / PPP(proto=0x21) / inner(),
        eth() / ip4() / GRE(proto=0x0800),  # keepalive: no payload, not entered
        eth() / ip4() / UDP(sport=40000, dport=4789) / VXLAN(vni=42) / Ether() / inner(),
        eth() / ip4() / UDP(sport=40000, dport=4789) / VXLAN(vni=42) / Ether() / ARP(),
        eth() / ip4() / UDP(sport=40000, dport=6081) / GENEVE(proto=0x6558) / Ether() / inner(),
        eth() / ip4() / UDP(sport=40000, dport=6081) / GENEVE(proto=0x0800) / inner(),
        eth() / ip4() / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=7) / inner(),
        eth() / ip4() / UDP(sport=2152, dport=2152) / GTP_U_Header() / GTPEchoRequest(),
        eth() / ip4() / UDP(sport=3544, dport=3544) / IPv6(src="2001::1", dst="2001::2") / UDP(),
        eth() / MPLS(label=16, s=0) / MPLS(label=17, s=1) / inner(),
        eth() / PPPoE(sessionid=3) / PPP(proto=0x57) / ip6() / UDP(sport=1, dport=2),
        eth() / ip4() / IPv6(src="2001:db8::a", dst="2001:db8::b") / UDP(sport=1, dport=2),
        eth() / ip6() / IP(src="10.9.9.9", dst="10.8.8.8") / ICMP(type=8),
        eth() / ip6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / UDP(),
        eth() / ip6() / IPv6ExtHdrFragment(m=1, id=9) / UDP(sport=7, dport=9) / (b"y" * 64),
        eth() / ip6() / IPv6ExtHdrFragment(offset=9, id=9, nh=17) / (b"y" * 16),
        eth() / ip6() / AH(nh=6, payloadlen=1) / TCP(sport=22, dport=2222),
        eth() / ip4(flags="MF", id=3) / TCP(sport=1, dport=2) / (b"z" * 64),
        eth() / ip4(frag=9, id=3, proto=6) / (b"z" * 16),
        eth() / ip4() / ICMP(type=3, code=3) / IP(src="198.51.100.2", dst="192.0.2.1") / UDP(),
        eth() / ip6() / ICMPv6EchoRequest(id=1, seq=2),
        eth() / ip4() / SCTP(sport=2905, dport=2906) / SCTPChunkInit(),
        eth() / ip4(proto=136) / Raw(bytes.fromhex("1f4000350000abcd") + b"lite"),
        eth() / ip4() / ESP(spi=1, seq=1) / b"zzzz",
        eth() / ip6() / ESP(spi=1, seq=1) / b"zzzz",
        eth() / ip6() / IPv6ExtHdrDestOpt(nh=89) / b"ospfospfospf",
        Dot3(src="02:00:00:00:00:01", dst="01:80:c2:00:00:00") / LLC(dsap=0x42, ssap=0x42, ctrl=3)
        / b"stp",
        Dot3(src="02:00:00:00:00:01", dst="01:00:0c:cc:cc:cc")
        / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0x00000C, code=0x2000) / b"cdp",
        Dot3(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800) / ip4() / UDP(),
        cut(eth() / ip4() / TCP(), 14 + 10),  # IPv4 header cut
        cut(eth() / ip6() / UDP(), 14 + 30),  # IPv6 header cut
        cut(eth() / ip4() / TCP(sport=1, dport=2), 14 + 20 + 6),  # TCP header cut after ports
        cut(eth() / ip4() / UDP(sport=1, dport=2), 14 + 20 + 4),  # UDP header cut after ports
        cut(eth(), 10),  # Ethernet header cut
        tso(eth() / ip4() / TCP(sport=1, dport=2) / b"abcd"),
    ]  # fmt: skip
    udp4 = ip4() / UDP(sport=3, dport=4)
    return {
        1: ethernet,
        113: [CookedLinux(proto=0x86DD, lladdrlen=6, src=b"\x02\0\0\0\0\x09") / ip6() / UDP()],
        276: [CookedLinuxV2(proto=0x0800, lladdrlen=6, src=b"\x02\0\0\0\0\x0a") / udp4],
        108: [b"\0\0\0\x02" + bytes(udp4)],
        0: [b"\x18\0\0\0" + bytes(ip6() / UDP()), b"\x02\0\0\0" + bytes(udp4)],
        101: [udp4, ip6() / UDP()],
        12: [udp4],
        14: [ip6() / UDP()],
        228: [udp4],
        229: [ip6() / ICMPv6EchoRequest()],
    }


@pytest.mark.parametrize("linktype", [1, 113, 276, 108, 0, 101, 12, 14, 228, 229])
def test_edge_cases_match_tshark(linktype: int, tshark: Any, tmp_path: Path) -> None:
    import scapy.all as scapy
    path = tmp_path / f"edge-linktype{linktype}.pcap"
    frames = edge_case_frames(scapy)[linktype]
    scapy.wrpcap(str(path), [bytes(f) for f in frames], linktype=linktype)
    check_against_tshark(path, path.name, tshark(path))


def test_community_id_reference_vectors() -> None:
    """The oracle's own Community ID (used where tshark's differs from the contract) against the
    values of the spec's reference implementation."""
    assert oracle.community_id(6, "128.232.110.120", "66.35.250.204", 34855, 80) == (
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    )
    assert oracle.community_id(17, "192.168.1.52", "8.8.8.8", 54585, 53) == ("1:d/FP5EW3wiY1vCndhwleRRKHowQ=")
    assert oracle.community_id(1, "192.168.0.89", "192.168.0.1", 8, 0) == ("1:X0snYXpgwiv9TZtqg64sgzUn6Dk=")


def test_oracle_timestamps_are_exact() -> None:
    assert oracle.epoch_ns("1500000000.830079000") == 1_500_000_000_830_079_000
    assert oracle.epoch_ns("0.000000001") == 1
    assert oracle.epoch_ns("-1.500000000") == -1_500_000_000
    assert oracle.epoch_ns("") is None
