"""The raw packet archive: a raw topic into rolling pcap files, crash-safe, and queries over them."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pktstream
import pyarrow.compute as pc
import pytest
from pktstream import archive as pa_archive
from pktstream.testing import synth


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archive") / "mixed.pcap"
    synth.write_pcap(str(path), 5000, seed=21)
    return path


def records(path: Path) -> Counter:
    return Counter((t // 1000 * 1000, frame, orig) for t, frame, orig, _ in pa_archive.read_records(path))


def archived(directory: Path) -> Counter:
    total: Counter = Counter()
    for name in os.listdir(directory):
        assert not name.endswith(".part"), name
        total += records(directory / name)
    return total


def test_rolled_files_hold_exactly_the_original_packets(bootstrap, topic_factory, mixed, tmp_path, tshark):
    topic = topic_factory(partitions=3)
    pktstream.produce_pcap(mixed, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    out = tmp_path / "archive"
    report = pa_archive.archive(
        topic, out, bootstrap_servers=bootstrap, group_id="arch", roll_packets=400, roll_seconds=3600, idle_timeout=3
    )
    assert report.packets == 5000
    names = sorted(os.listdir(out))
    assert len(names) == report.files >= 5000 // 400
    assert archived(out) == records(mixed)  # byte for byte, no packet lost or doubled
    for name in names:
        topic_, partition, first_offset, first_ts = pa_archive.parse_name(name)
        assert topic_ == topic and 0 <= partition < 3
        recs = list(pa_archive.read_records(out / name))
        assert 1 <= len(recs) <= 400 and recs[0][0] == first_ts
        # tshark reads every rolled file, and pktstream inspects it.
        seen = tshark(out / name)
        assert seen.error is None and len(seen.frames) == len(recs)
        assert pktstream.read_pcap(out / name).num_rows == len(recs)
    # Offsets were committed: a second run finds nothing new.
    again = pa_archive.archive(topic, tmp_path / "again", bootstrap_servers=bootstrap, group_id="arch", idle_timeout=3)
    assert again.packets == 0


def test_files_roll_on_packet_time(bootstrap, topic_factory, mixed, tmp_path):
    topic = topic_factory()
    pktstream.produce_pcap(mixed, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    span = pktstream.read_pcap(mixed, columns=["ts"])["ts"]
    seconds = (pc.max(span).value - pc.min(span).value) / 1e9
    roll = seconds / 4
    out = tmp_path / "a"
    pa_archive.archive(topic, out, bootstrap_servers=bootstrap, group_id="roll", roll_packets=10**9,
                       roll_seconds=roll, idle_timeout=3)
    for name in os.listdir(out):
        ts = [t for t, *_ in pa_archive.read_records(out / name)]
        assert ts[-1] - ts[0] < roll * 1e9
    assert 4 <= len(os.listdir(out)) <= 6
    assert archived(out) == records(mixed)
    # Captures are private to the user: the directory 0700, every file 0600.
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert {stat.S_IMODE(os.stat(out / name).st_mode) for name in os.listdir(out)} == {0o600}


def test_killed_archiver_restarts_without_loss_or_duplicates(bootstrap, topic_factory, tmp_path):
    path = tmp_path / "40k.pcap"
    synth.write_pcap(str(path), 40_000, seed=3)
    topic = topic_factory(partitions=2)
    pktstream.produce_pcap(path, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    out = tmp_path / "archive"
    cmd = [sys.executable, "-m", "pktstream.cli", "archive", "-t", topic, "-o", str(out), "-b", bootstrap,
           "-g", "crashy", "--roll-packets", "500", "--idle-timeout", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and len([n for n in os.listdir(out) if n.endswith(".pcap")]) >= 5:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = [n for n in os.listdir(out) if n.endswith(".pcap")]
    assert 5 <= len(before) < 80, "the archiver must die mid-run"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert archived(out) == records(path)


def test_query_matches_a_filter_on_the_original(bootstrap, topic_factory, mixed, tmp_path):
    topic = topic_factory(partitions=3)
    pktstream.produce_pcap(mixed, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    out = tmp_path / "archive"
    pa_archive.archive(topic, out, bootstrap_servers=bootstrap, group_id="q", roll_packets=300, idle_timeout=3)
    table = pktstream.read_pcap(mixed)
    ts = pc.cast(table["ts"], "int64").to_pylist()
    start, end = ts[1000], ts[4000]
    tcp443 = table.filter(pc.fill_null(pc.and_(pc.equal(table["ip_proto"], 6), pc.or_(
        pc.equal(table["src_port"], 443), pc.equal(table["dst_port"], 443))), False))
    assert tcp443.num_rows > 0
    frames = list(pa_archive.read_records(mixed))
    rows = table.to_pylist()

    def expect(pred):
        return [(f[0] // 1000 * 1000, f[1]) for f, r in zip(frames, rows) if pred(r)]

    result = tmp_path / "q.pcap"
    n = pa_archive.query(out, result, start=start, end=end, proto=6, port=443)
    want = expect(lambda r: start <= pc_ns(r["ts"]) < end and r["ip_proto"] == 6 and 443 in (r["src_port"], r["dst_port"]))
    got = [(t, f) for t, f, *_ in pa_archive.read_records(result)]
    assert n == len(want) > 0 and sorted(got) == sorted(want)
    assert stat.S_IMODE(os.stat(result).st_mode) == 0o600
    assert [t for t, _ in got] == sorted(t for t, _ in got)  # time-ordered
    src = rows[2000]["src_ip"]
    subprocess.run([sys.executable, "-m", "pktstream.cli", "query", str(out), "-o", str(result), "--src-ip", src],
                   check=True, capture_output=True)
    got = sorted((t, f) for t, f, *_ in pa_archive.read_records(result))
    assert got == sorted(expect(lambda r: r["src_ip"] == src))


def pc_ns(ts) -> int:
    return int(ts.value) if hasattr(ts, "value") else int(ts.timestamp() * 1e9)


def test_archive_writes_through_a_pyarrow_filesystem_uri(bootstrap, topic_factory, mixed, tmp_path):
    topic = topic_factory(partitions=2)
    pktstream.produce_pcap(mixed, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    out = tmp_path / "viafs"
    report = pa_archive.archive(
        topic, f"file://{out}", bootstrap_servers=bootstrap, group_id="fs", roll_packets=700, idle_timeout=3
    )
    assert report.packets == 5000 and all(p.startswith(str(out)) for p in report.paths)
    assert archived(out) == records(mixed)
    # file:// is a local directory: written like one (private files, fsync, rename).
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in report.paths} == {0o600}
