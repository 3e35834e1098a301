"""Raw packet archive throughput: a raw topic into rolled pcap files, pktstream against the
hand-written alternative, on the same topic in one run.

    .venv/bin/python benches/bench_archive.py [--packets 200000] [--roll 1000] [--broker kafka|tansu]

A local broker (Apache Kafka by default; ``--broker tansu`` for the in-memory Tansu) gets the capture
as ``format="raw"`` (Metron's layout) once; then each contender reads the whole topic in its own
consumer group and writes rolling pcap files per partition:

a. ``pktstream.archive.archive``, the Rust archiver (fsync + rename per file, offsets committed
   per closed file);
b. the same function as it was in Python (commit befffe1, read from git: numpy record headers,
   one write per run of packets; same fsync and commit discipline);
c. confluent-kafka ``Consumer.consume`` + ``dpkt.pcap.Writer`` per partition, rolling every
   ``--roll`` packets, committing after each file (what users write by hand; no fsync);
d. the ceilings: ``pktstream.consume(format="binary")`` and a bare confluent-kafka ``consume``
   loop, reading every message and writing nothing; and the fsync cost of as many files of the
   same size (write, fsync, rename, directory fsync), measured apart. The archive's target is
   "consume ceiling + fsync".

Then ``query`` (all packets, and ``port 443``) over the Rust archive's files, Rust against the
Python version. Every row says whether every packet was archived. Benchmarks are not tests:
nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))

import pktstream  # noqa: E402
from bench_kafka import cached_capture  # noqa: E402
from pktstream import archive as pk_archive  # noqa: E402
from pktstream.broker import ApacheKafka, Broker  # noqa: E402


def count_packets(directory: str) -> int:
    return sum(1 for n in os.listdir(directory) if n.endswith(".pcap") for _ in pk_archive.read_records(
        os.path.join(directory, n)))


#: The commit whose archive.py is the Python version measured here.
PYTHON_VERSION = "befffe1"


def python_archive_module() -> Optional[types.ModuleType]:
    """``pktstream/archive.py`` as of :data:`PYTHON_VERSION`, loaded as ``pktstream._archive_py``
    (None without git)."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{PYTHON_VERSION}:python/pktstream/archive.py"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    mod = types.ModuleType("pktstream._archive_py")
    mod.__package__ = "pktstream"
    sys.modules[mod.__name__] = mod
    exec(compile(src, "archive.py@" + PYTHON_VERSION, "exec"), mod.__dict__)
    return mod


def timed_archive(fn: Any, bootstrap: str, topic: str, n: int, roll: int, out: str) -> float:
    """Seconds from the first batch to the end, scaled to every packet (the group join, ~3 s on
    Tansu for both contenders, is left out)."""
    first: list = []

    def progress(r):  # type: ignore[no-untyped-def]
        if not first:
            first.append((time.perf_counter(), r.packets))

    fn(topic, out, bootstrap_servers=bootstrap, group_id=f"pk-{uuid.uuid4().hex[:6]}",
       roll_packets=roll, max_packets=n, progress=progress)
    t0, done = first[0]
    return (time.perf_counter() - t0) * n / max(1, n - done)


def run_pktstream(bootstrap: str, topic: str, n: int, roll: int, out: str) -> float:
    return timed_archive(pk_archive.archive, bootstrap, topic, n, roll, out)


def run_python(bootstrap: str, topic: str, n: int, roll: int, out: str) -> float:
    mod = python_archive_module()
    if mod is None:
        raise RuntimeError("git is needed to load the Python version")
    return timed_archive(mod.archive, bootstrap, topic, n, roll, out)


def run_confluent_dpkt(bootstrap: str, topic: str, n: int, roll: int, out: str) -> float:
    import dpkt
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ck-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000})
    c.subscribe([topic])
    writers: dict = {}
    done = 0
    t = None
    while done < n:
        for m in c.consume(10_000, 1.0):
            if t is None:
                t = time.perf_counter()  # from the first message: the group join is left out
            if m.error():
                continue
            p = m.partition()
            w = writers.get(p)
            if w is None or w[2] >= roll:
                if w is not None:
                    w[1].close()
                    c.commit(offsets=[TopicPartition(topic, p, w[3] + 1)], asynchronous=False)
                fh = open(os.path.join(out, f"{topic}-{p}-{m.offset():020d}.pcap"), "wb")  # noqa: SIM115
                w = writers[p] = [dpkt.pcap.Writer(fh, snaplen=262144), fh, 0, m.offset()]
            ts_us = struct.unpack(">q", m.key())[0]
            w[0].writepkt(m.value(), ts=ts_us / 1e6)
            w[2] += 1
            w[3] = m.offset()
            done += 1
    for p, w in writers.items():
        w[1].close()
        c.commit(offsets=[TopicPartition(topic, p, w[3] + 1)], asynchronous=False)
    elapsed = time.perf_counter() - t
    c.close()
    return elapsed


def run_consume_only(bootstrap: str, topic: str, n: int, roll: int, out: str) -> float:
    """The ceiling: the same messages read into Arrow and dropped (no files, no group)."""
    t = time.perf_counter()
    table = pktstream.consume(topic, bootstrap_servers=bootstrap, format="binary")
    elapsed = time.perf_counter() - t
    with open(os.path.join(out, "count"), "w") as fh:
        fh.write(str(table.num_rows))
    return elapsed


def run_confluent_consume_only(bootstrap: str, topic: str, n: int, roll: int, out: str) -> float:
    """The broker's ceiling for a C client: every message polled, nothing written."""
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"cc-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000})
    c.subscribe([topic])
    done, t = 0, None
    while done < n:
        got = c.consume(10_000, 1.0)
        if got and t is None:
            t = time.perf_counter()
        done += sum(1 for m in got if not m.error())
    elapsed = time.perf_counter() - (t or time.perf_counter())
    c.close()
    with open(os.path.join(out, "count"), "w") as fh:
        fh.write(str(done))
    return elapsed


def fsync_seconds(files: int, size: int, directory: str) -> float:
    """What publishing ``files`` files of ``size`` bytes costs: write, fsync, rename, dir fsync."""
    data = os.urandom(min(size, 1 << 20)) * max(1, size // (1 << 20)) if size > (1 << 20) else os.urandom(size)
    dir_fd = os.open(directory, os.O_RDONLY)
    t = time.perf_counter()
    for k in range(files):
        part = os.path.join(directory, f"f{k}.part")
        with open(part, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, os.path.join(directory, f"f{k}.pcap"))
        os.fsync(dir_fd)
    os.close(dir_fd)
    return time.perf_counter() - t


def time_query(fn: Any, directory: str, out: str, **filters: Any) -> tuple:
    t = time.perf_counter()
    n = fn(directory, out, **filters)
    return n, time.perf_counter() - t


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM), in kB. Not ``ru_maxrss``: Linux carries that
    over from the parent across fork and exec, and the parent here holds a whole consumed topic."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def query_child(impl: str, directory: str, out: str, filters: str) -> int:
    """Runs one query in this (fresh) process and prints [packets, seconds, peak RSS before,
    peak RSS after] in kB: the peak's growth is what the query held."""
    mod = python_archive_module() if impl == "Python" else None
    fn = mod.query if mod is not None else pk_archive.query
    import pyarrow.compute  # noqa: F401 - loaded before the baseline (the Python version uses it)

    base = peak_rss_kb()
    t = time.perf_counter()
    n = fn(directory, out, **json.loads(filters))
    secs = time.perf_counter() - t
    print(json.dumps([n, secs, base, peak_rss_kb()]))
    return 0


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--query-child":
        return query_child(*sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--roll", type=int, default=1000)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--broker", choices=["kafka", "tansu"], default="kafka",
                    help="Apache Kafka (default) or the in-memory Tansu")
    args = ap.parse_args()
    capture = cached_capture(args.packets)
    with (ApacheKafka(security=False) if args.broker == "kafka" else Broker(storage="memory")) as broker:
        bs = broker.bootstrap_servers
        topic = f"raw-{uuid.uuid4().hex[:6]}"
        pktstream.create_topic(topic, partitions=args.partitions, bootstrap_servers=bs)
        r = pktstream.produce_pcap(capture, topic, bootstrap_servers=bs, format="raw", progress=False)
        print(f"capture {capture.name}: {r.rows:,} packets produced as raw to {args.partitions} partitions "
              f"({'Apache Kafka' if args.broker == 'kafka' else 'in-memory Tansu'})", file=sys.stderr)
        rows = []
        contenders = [
            ("pktstream.archive, Rust (fsync per file)", run_pktstream),
            (f"pktstream.archive, Python as of {PYTHON_VERSION} (fsync per file)", run_python),
            ("confluent-kafka + dpkt.pcap.Writer (no fsync)", run_confluent_dpkt),
            ("ceiling: pktstream.consume, no files", run_consume_only),
            ("ceiling: confluent-kafka consume, no files", run_confluent_consume_only),
        ]
        kept = tempfile.TemporaryDirectory()
        for name, fn in contenders:
            with tempfile.TemporaryDirectory() as scratch:
                out = kept.name if fn is run_pktstream else scratch
                try:
                    seconds = fn(bs, topic, r.rows, args.roll, out)
                except RuntimeError as e:
                    print(f"  {name}: skipped ({e})", file=sys.stderr)
                    continue
                ceiling = fn in (run_consume_only, run_confluent_consume_only)
                got = int(open(os.path.join(out, "count")).read()) if ceiling else count_packets(out)
                files = len([x for x in os.listdir(out) if x.endswith(".pcap")])
                rows.append((name, got, files, seconds))
                print(f"  {name}: {got:,} packets in {files} files, {seconds:.2f} s", file=sys.stderr)
        names = [x for x in os.listdir(kept.name) if x.endswith(".pcap")]
        size = sum(os.path.getsize(os.path.join(kept.name, x)) for x in names)
        with tempfile.TemporaryDirectory(dir=os.path.dirname(kept.name)) as scratch:
            sync = fsync_seconds(len(names), size // max(1, len(names)), scratch)
    print("\n| tool | packets archived | files | seconds | packets/s | all archived |\n|---|---:|---:|---:|---:|---|")
    for name, got, files, seconds in rows:
        print(f"| {name} | {got:,} | {files:,} | {seconds:.2f} | {got / seconds:,.0f} | "
              f"{'yes' if got == r.rows else 'NO'} |")
    by = {name: got / seconds for name, got, _, seconds in rows}
    rust = rows[0][1] / rows[0][3]
    consume = next(s for n, _, _, s in rows if n.startswith("ceiling: pktstream"))
    print(f"\nfsync + rename + directory fsync of {len(names)} files of {size / max(1, len(names)) / 1e3:,.0f} kB: "
          f"{sync:.2f} s; consume ceiling + fsync = {consume + sync:.2f} s, the Rust archive {rows[0][3]:.2f} s")
    for name, rate in by.items():
        if rate != rust:
            print(f"pktstream.archive (Rust) is {rust / rate:.2f}x {name}")
    print("\n| query over the Rust archive's files | packets | seconds | peak RSS growth |\n|---|---:|---:|---:|")
    for label, filters in [("all packets", {}), ("port 443, tcp", {"port": 443, "proto": 6})]:
        for impl in ("Rust", "Python"):
            with tempfile.TemporaryDirectory() as scratch:
                child = subprocess.run([sys.executable, __file__, "--query-child", impl, kept.name,
                                        os.path.join(scratch, "q.pcap"), json.dumps(filters)],
                                       capture_output=True, text=True)
            if child.returncode != 0:
                print(f"| {impl}, {label} | failed: {child.stderr.strip()[-200:]} | | |")
                continue
            n, secs, base_kb, peak_kb = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"| {impl}, {label} | {n:,} | {secs:.2f} | {(peak_kb - base_kb) / 1024:,.0f} MB |")
    kept.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
