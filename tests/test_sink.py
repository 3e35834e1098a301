"""The pcap writer (``pktstream.PcapWriter``, ``write_pcap``) and the opt-in ``frame`` column.

Oracles: tcpdump reads back what we write (``tcpdump -r``), and for a BPF-filtered selection the
records we write are byte-for-byte the ones ``tcpdump -r IN -w OUT EXPR`` writes.
"""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
from pathlib import Path

import pktstream
import pyarrow as pa
import pyarrow.compute as pc
import pytest

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample.pcap"


def records(path: Path) -> bytes:
    """A classic little-endian pcap's bytes after the 24-byte file header."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data[24:]


def test_frame_is_opt_in_and_holds_the_captured_bytes() -> None:
    assert "frame" not in pktstream.schema().names
    t = pktstream.read_pcap(SAMPLE, columns=["caplen", "frame"])
    assert t.schema.field("frame").type == pa.binary()
    assert pc.binary_length(t["frame"]).cast(pa.uint32()).equals(t["caplen"])
    # The file's first record: the frame follows the 24-byte file and 16-byte record headers.
    raw = SAMPLE.read_bytes()
    first = t["frame"][0].as_py()
    assert raw[40:40 + len(first)] == first


def test_rewriting_a_capture_gives_the_same_records() -> None:
    t = pktstream.read_pcap(SAMPLE, columns=["ts", "wirelen", "frame"])
    buf = io.BytesIO()
    assert pktstream.write_pcap(t, buf) == t.num_rows
    assert buf.getvalue()[24:] == records(SAMPLE)


@pytest.mark.parametrize("expr", ["udp", "tcp port 80", "vlan", "greater 500"])
def test_filtered_rows_written_match_tcpdump(tmp_path: Path, expr: str) -> None:
    tcpdump = shutil.which("tcpdump")
    assert tcpdump, "tcpdump is the oracle here: scripts/setup.sh installs it"
    theirs = tmp_path / "tcpdump.pcap"
    subprocess.run([tcpdump, "-r", str(SAMPLE), "-w", str(theirs), expr], check=True, capture_output=True)
    ours = tmp_path / "ours.pcap"
    reader = pktstream.iter_batches(SAMPLE, columns=["ts", "wirelen", "link_type", "frame"], bpf=expr,
                                    batch_size=7)
    with pktstream.PcapWriter(ours) as w:
        for batch in reader:
            w.write_batch(batch)
    assert w.packets > 0 and w.skipped == 0
    assert records(ours) == records(theirs)
    # tcpdump reads what we wrote.
    out = subprocess.run([tcpdump, "-r", str(ours), "--count"], check=True, capture_output=True, text=True)
    assert out.stdout.split()[0] == str(w.packets)


def test_gzip_nanosecond_and_big_endian_files_read_back(tmp_path: Path) -> None:
    t = pktstream.read_pcap(SAMPLE, columns=["ts", "wirelen", "frame"])
    want = pktstream.read_pcap(SAMPLE)
    for name, options in [("a.pcap.gz", {}), ("b.pcap", {"nanosecond": True}), ("c.pcap", {"big_endian": True})]:
        path = tmp_path / name
        with pktstream.PcapWriter(path, **options) as w:
            w.write_table(t)
        got = pktstream.read_pcap(path)
        assert got.drop_columns(["frame_number"]).equals(want.drop_columns(["frame_number"])), name
    assert gzip.decompress((tmp_path / "a.pcap.gz").read_bytes())[24:] == records(SAMPLE)


def test_snaplen_cuts_frames_and_keeps_the_wire_length(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    with pktstream.PcapWriter(path, snaplen=64, link_type=101) as w:
        w.write(1_000_000_000, b"\x45" + b"\x00" * 99)
    got = pktstream.read_pcap(path, columns=["caplen", "wirelen", "link_type"])
    assert got.to_pylist() == [{"caplen": 64, "wirelen": 100, "link_type": 101}]


def test_hostile_rows_are_refused_or_skipped_not_written() -> None:
    buf = io.BytesIO()
    w = pktstream.PcapWriter(buf)
    for ts in (-1, 2**32 * 10**9, 2**63 - 1):
        with pytest.raises(ValueError, match="outside 1970..2106"):
            w.write(ts, b"abc")
    batch = pa.record_batch({
        "ts": pa.array([1, None, 3], pa.timestamp("ns", "UTC")),
        "frame": pa.array([b"a", b"b", None], pa.binary()),
        "link_type": pa.array([1, 1, 1], pa.uint16()),
    })
    assert w.write_batch(batch) == 1 and w.skipped == 2
    other = pa.record_batch({"ts": pa.array([1], pa.timestamp("ns", "UTC")), "frame": pa.array([b"x"]),
                             "link_type": pa.array([113], pa.uint16())})
    assert w.write_batch(other) == 0 and w.skipped == 3
    with pytest.raises(ValueError, match="no `frame` column"):
        w.write_batch(pa.record_batch({"ts": pa.array([1], pa.timestamp("ns", "UTC"))}))
    with pytest.raises(ValueError, match="timestamp"):
        w.write_batch(pa.record_batch({"ts": pa.array([1], pa.int64()), "frame": pa.array([b"x"])}))
    w.close()
    w.close()
    assert w.closed and len(buf.getvalue()) == 24 + 16 + 1
    with pytest.raises(ValueError, match="closed"):
        w.write(1, b"x")
