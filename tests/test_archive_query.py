"""The Rust archive query (a streaming k-way merge) and the archive on pyarrow filesystems:
BPF against tcpdump, bounded memory over many files, hostile messages, non-local storage."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, List, Tuple

import pktstream
import pytest
from pktstream import _native
from pktstream import archive as pa_archive
from pktstream.testing import synth

Record = Tuple[int, bytes, int, int]


def write_records(path: Any, records: List[Record], *, opener: Any = open) -> None:
    """A microsecond pcap of ``(ts_ns, frame, wirelen, link_type)`` records."""
    with opener(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, records[0][3] if records else 1))
        for t, frame, orig, _ in records:
            sec, frac = divmod(t, 1_000_000_000)
            fh.write(struct.pack("<IIII", sec, frac // 1000, len(frame), orig) + frame)


def roll(records: List[Record], partitions: int, per_file: int) -> List[Tuple[str, List[Record]]]:
    """What the archiver makes of a capture: round-robin partitions, ``per_file`` packets a file."""
    files = []
    for p in range(partitions):
        mine = records[p::partitions]
        for k in range(0, len(mine), per_file):
            chunk = mine[k:k + per_file]
            files.append((pa_archive.file_name("raw", p, k, chunk[0][0]), chunk))
    return files


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("q") / "mixed.pcap"
    synth.write_pcap(str(path), 5000, seed=21)
    return path


@pytest.fixture(scope="module")
def rolled(mixed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rolled")
    for name, recs in roll(list(pa_archive.read_records(mixed)), 3, 250):
        write_records(out / name, recs)
    return out


def us(records: Any) -> List[Tuple[int, bytes]]:
    return [(t // 1000 * 1000, frame) for t, frame, *_ in records]


@pytest.mark.parametrize("expr", ["tcp port 443", "udp", "icmp or icmp6", "udp port 53", "ip6",
                                  "tcp[tcpflags] & tcp-syn != 0", "vlan", "greater 500", "less 100"])
def test_query_bpf_matches_tcpdump(mixed, rolled, tmp_path, expr):
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump is not installed: run scripts/setup.sh")
    oracle = tmp_path / "tcpdump.pcap"
    subprocess.run(["tcpdump", "-r", str(mixed), "-w", str(oracle), expr], check=True, capture_output=True)
    want = us(pa_archive.read_records(oracle))
    out = tmp_path / "q.pcap"
    n = pa_archive.query(rolled, out, bpf=expr)
    got = us(pa_archive.read_records(out))
    assert n == len(got) == len(want)
    assert Counter(got) == Counter(want)
    assert [t for t, _ in got] == sorted(t for t, _ in got)


def test_query_combines_bpf_time_and_5tuple(mixed, rolled, tmp_path):
    table = pktstream.read_pcap(mixed, columns=["ts", "src_ip", "ip_proto"])
    rows = table.to_pylist()
    records = list(pa_archive.read_records(mixed))
    start, end = records[500][0], records[4500][0]
    src = rows[1234]["src_ip"]
    out = tmp_path / "q.pcap"
    n = pa_archive.query(rolled, out, start=start, end=end, src_ip=src, bpf="tcp or udp")
    oracle = tmp_path / "tcpdump.pcap"
    subprocess.run(["tcpdump", "-r", str(mixed), "-w", str(oracle), "tcp or udp"], check=True, capture_output=True)
    passed = Counter(us(pa_archive.read_records(oracle)))  # BPF sees the outer header of a tunnel
    want = [(t // 1000 * 1000, f) for (t, f, *_), r in zip(records, rows)
            if start <= t < end and r["src_ip"] == src and passed[(t // 1000 * 1000, f)]]
    assert n == len(want) > 0
    assert sorted(us(pa_archive.read_records(out))) == sorted(want)
    with pytest.raises(ValueError):
        pa_archive.query(rolled, out, bpf="tcp port")  # libpcap's error, as a ValueError
    with pytest.raises(ValueError):
        pa_archive.query(rolled, out, src_ip="not-an-address")


def test_query_memory_is_one_packet_per_open_file(tmp_path):
    """2,000 files of 4 partitions: the merge opens files as it reaches their time, so a handful
    are open at once and nothing else is held, however many packets match."""
    path = tmp_path / "big.pcap"
    synth.write_pcap(str(path), 40_000, seed=5)
    records = list(pa_archive.read_records(path))
    files = roll(records, 4, 20)
    assert len(files) == 2000
    for name, recs in files:
        write_records(tmp_path / name, recs)
    listed = [(str(tmp_path / name), pa_archive.parse_name(name)[3]) for name, _ in files]
    r = _native.archive_query(listed, str(tmp_path / "all.pcap"))
    assert r["packets"] == 40_000 and r["files_opened"] == 2000
    assert r["max_open"] <= 8, r  # about one file per partition, not 2,000
    got = us(pa_archive.read_records(tmp_path / "all.pcap"))
    assert [t for t, _ in got] == sorted(t for t, _ in got)
    assert Counter(got) == Counter(us(records))


class SharedFs:
    """``_filesystem`` for ``mem://`` URIs: one pyarrow in-memory filesystem across calls."""

    def __init__(self) -> None:
        from pyarrow import fs as pafs

        self.fs = pafs._MockFileSystem()

    def __call__(self, uri: str) -> Any:
        if not uri.startswith("mem://"):
            return None
        root = uri[len("mem://"):].rstrip("/")
        return self.fs, root


def test_query_reads_a_pyarrow_filesystem(mixed, tmp_path, monkeypatch):
    shared = SharedFs()
    monkeypatch.setattr(pa_archive, "_filesystem", shared)
    shared.fs.create_dir("arch")
    for name, recs in roll(list(pa_archive.read_records(mixed)), 2, 400):
        write_records(f"arch/{name}", recs, opener=lambda p, _m: shared.fs.open_output_stream(p))
    out, local = tmp_path / "remote.pcap", tmp_path / "local.pcap"
    n = pa_archive.query("mem://arch", out, proto=6, bpf="tcp port 443")
    want = [(t, f) for t, f in us(pa_archive.read_records(mixed))]
    assert n > 0
    assert pa_archive.query(tmp_path, local) == 0  # no rolled files there
    got = us(pa_archive.read_records(out))
    tcpdump = tmp_path / "o.pcap"
    subprocess.run(["tcpdump", "-r", str(mixed), "-w", str(tcpdump), "tcp port 443"], check=True, capture_output=True)
    assert Counter(got) == Counter(us(pa_archive.read_records(tcpdump)))
    assert len(want) == 5000


def test_archive_writes_a_pyarrow_filesystem(bootstrap, topic_factory, mixed, tmp_path, monkeypatch):
    shared = SharedFs()
    monkeypatch.setattr(pa_archive, "_filesystem", shared)
    topic = topic_factory(partitions=2)
    pktstream.produce_pcap(mixed, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    # A dead archiver's part file (pid far beyond pid_max) is removed; a live one's is kept.
    shared.fs.create_dir("arch")
    stale = f"arch/{pa_archive.file_name(topic, 0, 0, 0)}.4294967295.part"
    import os

    mine = f"arch/{pa_archive.file_name(topic, 0, 1, 0)}.{os.getppid()}.part"
    for p in (stale, mine):
        with shared.fs.open_output_stream(p) as fh:
            fh.write(b"x")
    report = pa_archive.archive(topic, "mem://arch", bootstrap_servers=bootstrap, group_id="memfs",
                                roll_packets=700, idle_timeout=3)
    assert report.packets == 5000 and report.files == len(report.paths) >= 8
    from pyarrow import fs as pafs

    names = sorted(i.base_name for i in shared.fs.get_file_info(pafs.FileSelector("arch")))
    assert stale.split("/")[1] not in names and mine.split("/")[1] in names
    out = tmp_path / "all.pcap"
    assert pa_archive.query("mem://arch", out) == 5000
    assert Counter(us(pa_archive.read_records(out))) == Counter(us(pa_archive.read_records(mixed)))


def test_hostile_messages_are_archived_and_counted(bootstrap, topic_factory, tmp_path):
    import confluent_kafka  # a test dependency (pyproject's test extra): a second, independent producer
    topic = topic_factory()
    p = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    frame = bytes(range(60))
    good = 1_700_000_000_000_000  # microseconds
    messages = [
        (struct.pack(">q", good), frame, []),
        (struct.pack(">q", -5), frame, []),                         # before 1970
        (struct.pack(">q", 2**62), frame, []),                      # beyond pcap (and i64 ns)
        (b"abc", frame, [("link_type", b"nope"), ("wirelen", b"\xff")]),  # no 8-byte key, junk headers
        (struct.pack(">q", good + 1), None, []),                    # a tombstone
        (struct.pack(">q", good + 2), frame, [("link_type", b"101")]),  # another link type: new file
    ]
    for key, value, headers in messages:
        p.produce(topic, key=key, value=value, headers=headers)
    p.flush(10)
    out = tmp_path / "h"
    report = pa_archive.archive(topic, out, bootstrap_servers=bootstrap, group_id="hostile", idle_timeout=3)
    assert report.packets == len(messages) and report.bad_timestamps == 3
    got = [r for name in sorted(out.iterdir()) for r in pa_archive.read_records(name)]
    assert len(got) == len(messages)
    assert {r[3] for r in got} == {1, 101}
    assert all(0 <= r[0] < 2**32 * 10**9 for r in got)


def test_cli_query_takes_bpf(rolled, tmp_path):
    import sys

    out = tmp_path / "cli.pcap"
    subprocess.run([sys.executable, "-m", "pktstream.cli", "query", str(rolled), "-o", str(out), "--bpf", "udp"],
                   check=True, capture_output=True)
    api = tmp_path / "api.pcap"
    n = pa_archive.query(rolled, api, bpf="udp")
    assert n > 0 and us(pa_archive.read_records(out)) == us(pa_archive.read_records(api))


def test_ctrl_c_closes_and_commits(bootstrap, topic_factory, mixed, tmp_path):
    """SIGINT stops the Rust loop within its ~200 ms check: open files are published and
    committed, the report is printed, and a second run archives exactly the rest."""
    import os
    import signal
    import sys
    import time

    topic = topic_factory(partitions=2)
    pktstream.produce_pcap(mixed, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    out = tmp_path / "arch"
    cmd = [sys.executable, "-m", "pktstream.cli", "archive", "-t", topic, "-o", str(out), "-b", bootstrap,
           "-g", "sigint", "--roll-packets", "300"]
    # SIGINT ignored at start, as in a process started in the background (how CI starts the suite):
    # the archiver must still end cleanly on it.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and any(n.endswith(".pcap") for n in os.listdir(out))):
        time.sleep(0.05)
    time.sleep(1.0)  # everything read; the archiver is waiting for more
    proc.send_signal(signal.SIGINT)
    try:  # leaving the group waits on the broker, which a loaded CI machine can make slow
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the archiver did not end within 90 s of SIGINT; its stderr:\n{err}")
    assert proc.returncode != 0 and "interrupted; archived 5,000 packets" in err, err
    assert not [n for n in os.listdir(out) if n.endswith(".part")]
    again = pa_archive.archive(topic, out, bootstrap_servers=bootstrap, group_id="sigint", idle_timeout=3)
    assert again.packets == 0
    got = Counter(r for n in os.listdir(out) for r in us(pa_archive.read_records(out / n)))
    assert got == Counter(us(pa_archive.read_records(mixed)))
