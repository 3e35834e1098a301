"""BPF filters on capture files (``bpf=``), against tcpdump as the oracle.

tcpdump decides which packets pass: ``tcpdump -r FILE --time-stamp-precision=nano -w OUT EXPR``
writes them, and the frames pktstream keeps with ``bpf=EXPR`` must be exactly those, numbered by
their position in the file. (tcpdump's ``-#`` numbers the packets it prints, not their place in
the file, so the written packets are matched back to the file's frames instead: in file order, by
timestamp, lengths and decoded fields.) libpcap cannot read a pcapng file that mixes link types:
such a file is split per interface first, each part filtered by tcpdump on its own.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pktstream
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import PCAPS, manifest

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample.pcap"

#: Columns that identify a packet for matching tcpdump's output back to the file's frames.
IDENTITY = ["ts", "caplen", "wirelen", "link_type", "ethertype", "vlan_id", "src_ip", "dst_ip", "ip_proto",
            "src_port", "dst_port", "tcp_seq", "icmp_type", "payload_len", "decode_status"]

#: (capture, expressions): Ethernet, VLAN, Linux cooked (SLL), raw IP (101 and 228), BSD loopback,
#: 802.11 radiotap, gzip, pcapng. ``HOST`` becomes the capture's busiest source address.
HOST = "host {busiest}"
CASES: List[Tuple[Path, Sequence[str]]] = [
    (SAMPLE, ["udp", "tcp port 80", "icmp or icmp6", "vlan", "vlan and udp", "ip6", HOST, "greater 500",
              "tcp[tcpflags] & tcp-syn != 0", "not ip and not ip6"]),
    (DATA / "gopacket_test_loopback.pcap", ["ip6", "tcp", "greater 500"]),
    (DATA / "gopacket_test_dns.pcap", ["udp port 53", HOST]),
    (DATA / "pcap_parser_modified_format.pcap", ["icmp or icmp6", "udp"]),
    (PCAPS / "wireshark/dmgr.pcapng", ["tcp", "greater 500", HOST, "ip6"]),
    (PCAPS / "wireshark/dtn_tcpclv3_bpv6_transfer.pcapng", ["tcp", "greater 500"]),
    (PCAPS / "wireshark/http-ooo.pcap", ["tcp port 80", HOST, "greater 100"]),
    (PCAPS / "wireshark/segmented_fpm.pcap", ["tcp", "greater 500", HOST]),
    (PCAPS / "wireshark/sip.pcapng", ["udp", "greater 500"]),
    (PCAPS / "wireshark/tls12-dsb.pcapng", ["tcp port 443", "greater 500"]),
    (PCAPS / "wireshark/logistics_multicast.pcapng", ["udp", "ip6", "vlan", HOST]),
    (PCAPS / "wireshark/icmp.pcapng.gz", ["icmp or icmp6", "udp"]),
    # 802.11 radiotap: "wlan" filters compile only for 802.11, so these need the file's own link
    # type at open (pcapng: its first interface), not Ethernet.
    (PCAPS / "wireshark/owe.pcapng.gz", ["wlan type mgt", "wlan type data", "ether proto 0x888e"]),
    (PCAPS / "wireshark/wpa-eap-tls.pcap.gz", ["wlan type data", "ether proto 0x888e"]),
]

#: pcapng files mixing link types in the corpus (the manifest's ``per-packet``).
MIXED = [c.path for c in manifest() if c.linktype == "per-packet" and c.packets]


def _pcaps_cases() -> List[Tuple[Path, str]]:
    return [(path, expr) for path, exprs in CASES if path.exists() for expr in exprs]


def _plain(path: Path, tmp: Path) -> Path:
    """``path``, gunzipped into ``tmp`` if it is compressed (tcpdump reads no gzip)."""
    if path.read_bytes()[:2] != b"\x1f\x8b":
        return path
    out = tmp / (path.name + ".raw")
    out.write_bytes(gzip.decompress(path.read_bytes()))
    return out


def _split_pcapng(path: Path, tmp: Path) -> List[Tuple[Path, List[int]]]:
    """One pcapng per interface (of each section): (part, the 1-based file positions of its
    packets). Each part holds its section's header, its interface block and its packets."""
    data = path.read_bytes()
    parts: List[Tuple[bytearray, List[int]]] = []
    end, shb, section = "<", b"", 0
    frame, at = 0, 0
    while at + 12 <= len(data):
        if data[at : at + 4] == b"\x0a\x0d\x0d\x0a":
            end = "<" if data[at + 8 : at + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            section = len(parts)
        kind, length = struct.unpack_from(end + "II", data, at)
        block = bytearray(data[at : at + length])
        at += length
        if kind == 0x0A0D0D0A:
            shb = bytes(block)
        elif kind == 1:  # interface description
            parts.append((bytearray(shb + block), []))
        elif kind in (6, 3, 2):  # enhanced, simple, obsolete packet
            frame += 1
            iface = 0 if kind == 3 else struct.unpack_from(end + ("I" if kind == 6 else "H"), block, 8)[0]
            if section + iface < len(parts):
                if kind == 6:
                    struct.pack_into(end + "I", block, 8, 0)
                elif kind == 2:
                    struct.pack_into(end + "H", block, 8, 0)
                parts[section + iface][0].extend(block)
                parts[section + iface][1].append(frame)
    out = []
    for n, (body, positions) in enumerate(parts):
        part = tmp / f"{path.name}.part{n}.pcapng"
        part.write_bytes(bytes(body))
        out.append((part, positions))
    return out


def _rows(path: Path) -> List[tuple]:
    t = pktstream.read_pcap(path, columns=IDENTITY)
    # A pcapng simple packet block has no timestamp; tcpdump writes it as 0.
    ts = pc.fill_null(t.column("ts").cast(pa.int64()), 0)
    return list(zip(ts.to_pylist(), *(t.column(c).to_pylist() for c in IDENTITY[1:])))


def _tcpdump(path: Path, expr: str, out: Path) -> None:
    if not shutil.which("tcpdump"):
        pytest.fail("tcpdump, the oracle of these tests, is not installed: run scripts/setup.sh")
    subprocess.run(["tcpdump", "-r", str(path), "--time-stamp-precision=nano", "-w", str(out), expr],
                   check=True, capture_output=True, timeout=120)


def _subsequence(wanted: List[tuple], rows: List[tuple]) -> List[int]:
    """Indices of ``rows`` matching ``wanted`` in order (each wanted row is in ``rows``)."""
    found, i = [], 0
    for w in wanted:
        while i < len(rows) and rows[i] != w:
            i += 1
        assert i < len(rows), f"tcpdump kept a packet not matched in the file: {w}"
        found.append(i)
        i += 1
    return found


def tcpdump_frames(path: Path, expr: str, tmp: Path) -> List[int]:
    """The 1-based positions in ``path`` of the packets ``tcpdump EXPR`` keeps."""
    plain = _plain(path, tmp)
    link_types = set(pktstream.read_pcap(plain, columns=["link_type"]).column("link_type").to_pylist())
    parts: List[Tuple[Path, Optional[List[int]]]] = [(plain, None)]
    if len(link_types) > 1:
        parts = [(part, positions) for part, positions in _split_pcapng(plain, tmp)]
    frames: List[int] = []
    for n, (part, positions) in enumerate(parts):
        out = tmp / f"tcpdump-{n}.pcap"
        _tcpdump(part, expr, out)
        kept = _subsequence(_rows(out), _rows(part))
        frames += [i + 1 if positions is None else positions[i] for i in kept]
    return sorted(frames)


def expected_frames(path: Path, expr: str, tmp: Path) -> List[int]:
    """:func:`tcpdump_frames`, with no exception: ``len``/``greater``/``less`` test the length on
    the wire, as tcpdump does (a record cut short by the snap length included)."""
    return tcpdump_frames(path, expr, tmp)


def _busiest(path: Path) -> str:
    src = pktstream.read_pcap(path, columns=["src_ip"]).column("src_ip").drop_null().value_counts()
    return max(src.to_pylist(), key=lambda v: (v["counts"], v["values"]))["values"]


def _expr(path: Path, expr: str) -> str:
    return expr.format(busiest=_busiest(path)) if "{busiest}" in expr else expr


@pytest.mark.parametrize(("path", "expr"), _pcaps_cases(),
                         ids=[f"{p.name}:{e}" for p, e in _pcaps_cases()])
def test_frames_are_those_tcpdump_keeps(path: Path, expr: str, tmp_path: Path) -> None:
    expr = _expr(path, expr)
    want = expected_frames(path, expr, tmp_path)
    with pktstream.iter_batches(path, bpf=expr, batch_size=7) as reader:
        got = reader.read_all().column("frame_number").to_pylist()
        stats = reader.stats
    total = pktstream.read_pcap(path, columns=["ts"]).num_rows
    assert got == want, f"{path.name} {expr!r}: {len(got)} frames, tcpdump {len(want)}"
    assert (stats["packets"], stats["filtered"]) == (len(want), total - len(want))


def test_the_cases_cover_kept_and_dropped_packets() -> None:
    """The corpus part of the cases is there, and the sample's filters keep some but not all."""
    assert all(p.exists() for p, _ in CASES), [str(p) for p, _ in CASES if not p.exists()]
    for expr in ["udp", "vlan", "greater 500"]:
        n = pktstream.read_pcap(SAMPLE, bpf=expr, columns=["ts"]).num_rows
        assert 0 < n < 200, (expr, n)


@pytest.mark.parametrize("path", MIXED, ids=[p.name for p in MIXED])
def test_mixed_link_types_are_filtered_per_link_type(path: Path, tmp_path: Path) -> None:
    lts = set(pktstream.read_pcap(path, columns=["link_type"]).column("link_type").to_pylist())
    for expr in ["tcp", "udp", "greater 300", "ip", "not ip6"]:
        got = pktstream.read_pcap(path, bpf=expr, columns=["frame_number"]).column("frame_number").to_pylist()
        assert got == expected_frames(path, expr, tmp_path), (path.name, lts, expr)


def _flow_counts(table: pa.Table) -> List[tuple]:
    keys = ["src_ip", "dst_ip", "src_port", "dst_port", "ip_proto", "vlan_id", "tunnel", "packets", "bytes"]
    return sorted(zip(*(table.column(k).to_pylist() for k in keys)), key=repr)


@pytest.mark.parametrize("path", [SAMPLE, PCAPS / "wireshark/dmgr.pcapng",
                                  PCAPS / "wireshark/http2_follow_multistream.pcapng",
                                  PCAPS / "wireshark/segmented_fpm.pcap"], ids=lambda p: p.name)
def test_flows_equal_flows_of_the_tcpdump_filtered_file(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "tcp.pcap"
    _tcpdump(_plain(path, tmp_path), "tcp", out)
    want = _flow_counts(pktstream.flows(out))
    with pktstream.iter_flows(path, bpf="tcp") as reader:
        got = _flow_counts(reader.read_all())
        stats = reader.stats
    assert want and got == want
    total = pktstream.read_pcap(path, columns=["ts"]).num_rows
    assert stats["packets"] + stats["filtered"] == total
    assert stats["filtered"] == total - pktstream.read_pcap(out, columns=["ts"]).num_rows


def test_an_invalid_expression_is_a_value_error_at_open() -> None:
    for expr, message in [("udp and", "syntax error"), ("port 70000", "port 70000"), ("host", "syntax error"),
                          ("wlan type mgt", "802.11 link-layer types supported only on 802.11")]:
        for open_it in (pktstream.iter_batches, pktstream.iter_flows, pktstream.read_pcap, pktstream.flows):
            with pytest.raises(ValueError, match="invalid BPF filter") as e:
                open_it(SAMPLE, bpf=expr)
            assert message in str(e.value) and repr(expr).strip("'") in str(e.value)


def test_bpf_with_a_packet_reader_source_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bpf"):
        pktstream.iter_flows(pktstream.iter_batches(SAMPLE), bpf="tcp")
    # The reader's own filter applies to the flows metered from it.
    with pktstream.iter_batches(SAMPLE, bpf="tcp") as packets:
        flows = pktstream.flows(packets)
    assert _flow_counts(flows) == _flow_counts(pktstream.flows(SAMPLE, bpf="tcp"))


def test_stats_count_what_was_left_out_and_frame_numbers_index_the_file() -> None:
    everything = pktstream.read_pcap(SAMPLE)
    with pktstream.iter_batches(SAMPLE, bpf="udp", batch_size=5) as reader:
        udp = reader.read_all()
        stats = reader.stats
    assert stats["packets"] == udp.num_rows > 0
    assert stats["packets"] + stats["filtered"] == everything.num_rows
    rows = everything.take([n - 1 for n in udp.column("frame_number").to_pylist()])
    assert rows.equals(udp)


def test_an_empty_result_is_an_empty_table() -> None:
    t = pktstream.read_pcap(DATA / "gopacket_test_dns.pcap", bpf="tcp")
    assert t.num_rows == 0 and t.schema == pktstream.schema()


def test_cli_convert_and_inspect_take_bpf(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pktstream.cli", *args], capture_output=True, text=True,
                              timeout=300)

    out = tmp_path / "udp.parquet"
    result = run("convert", str(SAMPLE), str(out), "--bpf", "udp", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out).equals(pktstream.read_pcap(SAMPLE, bpf="udp"))
    bad = run("convert", str(SAMPLE), str(tmp_path / "x.parquet"), "--bpf", "udp and")
    assert bad.returncode != 0 and "syntax error" in bad.stderr
    shown = run("inspect", str(SAMPLE), "--bpf", "udp", "--json", "--no-progress")
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert (summary["packets"], summary["bpf"]) == (pktstream.read_pcap(SAMPLE, bpf="udp").num_rows, "udp")
    assert summary["packets"] + summary["filtered"] == pktstream.read_pcap(SAMPLE).num_rows
    assert "BPF filter:      'udp'" in run("inspect", str(SAMPLE), "--bpf", "udp", "--no-progress").stdout
    flows = run("flows", str(SAMPLE), "--bpf", "tcp", "-o", str(tmp_path / "f.parquet"), "--no-progress")
    assert flows.returncode == 0, flows.stderr
    assert _flow_counts(pq.read_table(tmp_path / "f.parquet")) == _flow_counts(pktstream.flows(SAMPLE, bpf="tcp"))
    assert "left out by the BPF filter" in flows.stderr



def test_greater_compares_the_length_on_the_wire(tmp_path: Path) -> None:
    """Frame 167 of the sample is 1534 bytes on the wire but 88 captured: ``greater 500`` keeps it
    and ``less 100`` does not, as in tcpdump (the pcap crate's own filter call saw 88)."""
    t = pktstream.read_pcap(SAMPLE, columns=["frame_number", "caplen", "wirelen"]).to_pylist()
    assert (t[166]["caplen"], t[166]["wirelen"]) == (88, 1534)
    assert 167 in tcpdump_frames(SAMPLE, "greater 500", tmp_path)
    assert 167 in pktstream.read_pcap(SAMPLE, bpf="greater 500")["frame_number"].to_pylist()
    assert 167 not in tcpdump_frames(SAMPLE, "less 100", tmp_path)
    assert 167 not in pktstream.read_pcap(SAMPLE, bpf="less 100")["frame_number"].to_pylist()
