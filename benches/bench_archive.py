"""Raw packet archive throughput: a raw topic into rolled pcap files, pktstream against the
hand-written alternative, on the same topic in one run.

    .venv/bin/python benches/bench_archive.py [--packets 200000] [--roll 1000] [--broker kafka|tansu]

A local broker (Apache Kafka by default; ``--broker tansu`` for the in-memory Tansu) gets the capture
as ``format="raw"`` (Metron's layout) once; then each contender reads the whole topic in its own
consumer group and writes rolling pcap files per partition:

a. ``pktstream.archive.archive`` (fsync + rename per file, offsets committed per closed file);
b. confluent-kafka ``Consumer.consume`` + ``dpkt.pcap.Writer`` per partition, rolling every
   ``--roll`` packets, committing after each file (what users write by hand; no fsync).

Every row says whether every packet was archived. Benchmarks are not tests: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benches"))

import pktstream  # noqa: E402
from bench_kafka import cached_capture  # noqa: E402
from pktstream import archive as pk_archive  # noqa: E402
from pktstream.broker import ApacheKafka, Broker  # noqa: E402


def count_packets(directory: str) -> int:
    return sum(1 for n in os.listdir(directory) if n.endswith(".pcap") for _ in pk_archive.read_records(
        os.path.join(directory, n)))


def run_pktstream(bootstrap: str, topic: str, n: int, roll: int, out: str) -> float:
    """Seconds from the first batch to the end, scaled to every packet (the group join, ~3 s on
    Tansu for both contenders, is left out)."""
    first: list = []

    def progress(r):  # type: ignore[no-untyped-def]
        if not first:
            first.append((time.perf_counter(), r.packets))

    pk_archive.archive(topic, out, bootstrap_servers=bootstrap, group_id=f"pk-{uuid.uuid4().hex[:6]}",
                       roll_packets=roll, max_packets=n, progress=progress)
    t0, done = first[0]
    return (time.perf_counter() - t0) * n / max(1, n - done)


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


def main() -> int:
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
        for name, fn in [("pktstream.archive (fsync per file)", run_pktstream),
                         ("confluent-kafka + dpkt.pcap.Writer (no fsync)", run_confluent_dpkt),
                         ("ceiling: pktstream.consume, no files", run_consume_only)]:
            with tempfile.TemporaryDirectory() as out:
                seconds = fn(bs, topic, r.rows, args.roll, out)
                got = count_packets(out) if fn is not run_consume_only else int(open(os.path.join(out, "count")).read())
                files = len([x for x in os.listdir(out) if x.endswith(".pcap")])
                rows.append((name, got, files, seconds))
                print(f"  {name}: {got:,} packets in {files} files, {seconds:.2f} s", file=sys.stderr)
    print("\n| tool | packets archived | files | seconds | packets/s | all archived |\n|---|---:|---:|---:|---:|---|")
    for name, got, files, seconds in rows:
        print(f"| {name} | {got:,} | {files:,} | {seconds:.2f} | {got / seconds:,.0f} | "
              f"{'yes' if got == r.rows else 'NO'} |")
    base = rows[1][1] / rows[1][3]
    print(f"\npktstream.archive is {rows[0][1] / rows[0][3] / base:.1f}x confluent-kafka + dpkt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
