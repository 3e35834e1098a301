"""The whole packet tutorial, end to end on one capture: scapy + kafka-python + Spark's Kafka source,
against ``produce_pcap`` + pktstream's fastest Spark paths.

One command, one process, one warm session, one table::

    .venv/bin/python benches/bench_tutorial.py [--packets 20000] [--partitions 4] [--master local[2]]

The tutorial, as its authors wrote it: ``scapy.rdpcap`` reads the capture, a Python loop takes
``count, src_ip, dst_ip, proto, sport, dport`` of each packet (``IP``/``IPv6``, ``TCP``/``UDP``;
empty fields otherwise) and sends one CSV line per packet with kafka-python's ``KafkaProducer``
(defaults, then ``flush()``); then Spark's Kafka source (``format("kafka")``), ``CAST(value AS
STRING)``, ``split``, ``groupBy("proto").count()`` (complete mode, ``trigger(availableNow=True)``,
collected in ``foreachBatch``).

pktstream: ``produce_pcap(format="arrow")`` (5,000 packets per message), then the same
``groupBy(ip_proto).count()`` through (d) the ``pktstream`` source and (c) Spark's Kafka source +
:func:`pktstream.spark.decode`, the two fastest paths of ``benches/bench_spark.py``.

Both run on Apache Kafka (``pktstream.broker.ApacheKafka``) and one warm ``local[N]`` session (every
query runs once on 1,000 packets first). Each stage is timed alone; the total is their sum. A row
says whether every packet arrived (the counts sum to the packets), and the protocol counts of the
two pipelines are compared (scapy's ``proto``/``nh`` against pktstream's ``ip_proto``). Nothing
asserts a timing. The scapy stage reads the whole file into memory, as ``rdpcap`` does: keep
``--packets`` in the tens of thousands (scapy parses ~3k packets/s here).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_spark as bs  # noqa: E402
import pktstream  # noqa: E402
from pktstream import create_topic  # noqa: E402
from pktstream.broker import ApacheKafka  # noqa: E402

WARMUP_PACKETS = 1_000


def scapy_produce(capture: Path, topic: str, bootstrap: str) -> int:
    """The tutorial's producer: rdpcap, one CSV line per packet, kafka-python. Returns packets sent."""
    from scapy.all import IP, TCP, UDP, IPv6, rdpcap

    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap)
    packets = rdpcap(str(capture))
    for i, pkt in enumerate(packets):
        src = dst = proto = sport = dport = ""
        if IP in pkt:
            src, dst, proto = pkt[IP].src, pkt[IP].dst, pkt[IP].proto
        elif IPv6 in pkt:
            src, dst, proto = pkt[IPv6].src, pkt[IPv6].dst, pkt[IPv6].nh
        if TCP in pkt:
            sport, dport = pkt[TCP].sport, pkt[TCP].dport
        elif UDP in pkt:
            sport, dport = pkt[UDP].sport, pkt[UDP].dport
        producer.send(topic, value=f"{i + 1},{src},{dst},{proto},{sport},{dport}".encode())
    producer.flush()
    producer.close()
    return len(packets)


def tutorial_query(spark: Any, bootstrap: str, topic: str, ckpt: str) -> Tuple[float, Dict[Any, int]]:
    from pyspark.sql import functions as F

    lines = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
             .option("subscribe", topic).option("startingOffsets", "earliest").load()
             .selectExpr("CAST(value AS STRING)"))
    parts = F.split(lines.value, ",")
    packets = lines.select(*[parts.getItem(i).alias(n) for i, n in enumerate(bs.TUTORIAL_NAMES)])
    return grouped(packets, "proto", ckpt)


def grouped(df: Any, column: str, ckpt: str) -> Tuple[float, Dict[Any, int]]:
    """``groupBy(column).count()`` to the end of the input (availableNow); (seconds, counts)."""
    counts: Dict[Any, int] = {}

    def collect(batch: Any, batch_id: int) -> None:
        for row in batch.collect():
            counts[row[0]] = row[1]

    t = time.perf_counter()
    q = (df.groupBy(column).count().writeStream.outputMode("complete").foreachBatch(collect)
         .trigger(availableNow=True).option("checkpointLocation", ckpt).start())
    q.awaitTermination()
    if q.exception() is not None:
        raise RuntimeError(str(q.exception()))
    return time.perf_counter() - t, counts


def normalise(counts: Dict[Any, int]) -> Dict[Optional[int], int]:
    return {(None if k in ("", None) else int(k)): v for k, v in counts.items()}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=20_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args(argv)

    from pktstream.spark import decode, local_session

    load_start = bs.load()
    work = Path(tempfile.mkdtemp(prefix="bench-tutorial-"))
    rows: List[Tuple[str, str, int, float]] = []
    checks: List[str] = []
    n = args.packets
    try:
        capture = bs.cached_capture(n)
        warm_capture = bs.cached_capture(WARMUP_PACKETS)
        with ApacheKafka(work / "broker", security=False) as broker:
            bootstrap = broker.bootstrap_servers

            def topic(tag: str) -> str:
                name = f"tutorial-{tag}-{uuid.uuid4().hex[:6]}"
                create_topic(name, partitions=args.partitions, bootstrap_servers=bootstrap)
                return name

            def ckpt() -> str:
                return str(work / f"ckpt-{uuid.uuid4().hex[:8]}")

            spark = local_session("bench-tutorial", master=args.master, kafka_connector=True)
            cores = spark.sparkContext.defaultParallelism

            def pktstream_queries(arrow_topic: str) -> List[Tuple[str, float, Dict[Any, int]]]:
                source = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
                          .option("subscribe", arrow_topic).option("format", "arrow")
                          .option("startingOffsets", "earliest").load())
                kafka = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
                         .option("subscribe", arrow_topic).option("startingOffsets", "earliest").load())
                out = []
                for label, df in (("(d) pktstream source (arrow)", source),
                                  ("(c) Kafka source + decode (arrow)",
                                   decode(kafka, format="arrow", schema=pktstream.schema()))):
                    seconds, counts = grouped(df, "ip_proto", ckpt())
                    out.append((label, seconds, counts))
                return out

            print("warming up on 1,000 packets", file=sys.stderr)
            warm_csv = topic("warm-csv")
            scapy_produce(warm_capture, warm_csv, bootstrap)
            tutorial_query(spark, bootstrap, warm_csv, ckpt())
            warm_arrow = topic("warm-arrow")
            pktstream.produce_pcap(warm_capture, warm_arrow, bootstrap_servers=bootstrap, format="arrow",
                                   rows_per_message=5_000, progress=False)
            pktstream_queries(warm_arrow)

            csv_topic = topic("csv")
            t = time.perf_counter()
            sent = scapy_produce(capture, csv_topic, bootstrap)
            produce_s = time.perf_counter() - t
            rows.append(("tutorial", "scapy rdpcap + kafka-python, CSV", sent, produce_s))
            query_s, tutorial_counts = tutorial_query(spark, bootstrap, csv_topic, ckpt())
            rows.append(("tutorial", "Kafka source + split + groupBy", sum(tutorial_counts.values()), query_s))
            rows.append(("tutorial", "total", sum(tutorial_counts.values()), produce_s + query_s))
            print(f"  tutorial: produce {produce_s:.2f} s, query {query_s:.2f} s", file=sys.stderr)

            arrow_topic = topic("arrow")
            t = time.perf_counter()
            report = pktstream.produce_pcap(capture, arrow_topic, bootstrap_servers=bootstrap, format="arrow",
                                            rows_per_message=5_000, progress=False)
            produce_p = time.perf_counter() - t
            rows.append(("pktstream", "produce_pcap, arrow", report.rows, produce_p))
            for label, seconds, counts in pktstream_queries(arrow_topic):
                got = sum(counts.values())
                rows.append(("pktstream", f"{label} + groupBy", got, seconds))
                rows.append(("pktstream", f"total with {label[:3]}", got, produce_p + seconds))
                mine, theirs = normalise(counts), normalise(tutorial_counts)
                diff = {k: (theirs.get(k, 0), mine.get(k, 0)) for k in sorted(set(mine) | set(theirs), key=repr)
                        if mine.get(k, 0) != theirs.get(k, 0)}
                checks.append(f"{label}: protocol counts equal the tutorial's" if not diff else
                              f"{label}: protocol counts differ (proto: tutorial, pktstream): {diff} - scapy gives "
                              "the first IPv6 extension header (0, 44, 60) or the tunnel (4, 41, 47) where "
                              "pktstream gives the transport protocol inside")
                print(f"  pktstream {label}: produce {produce_p:.2f} s, query {seconds:.2f} s", file=sys.stderr)
            spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_end = bs.load()

    m = bs.machine()
    print(f"\nThe packet tutorial end to end on Apache Kafka, {n:,} packets, {args.partitions} partitions, "
          f"{args.master} ({cores} cores), trigger(availableNow=True), warm session")
    print(f"machine: {m['cpus']} CPUs ({m['usable']} usable), {m['cpu']}; load average {load_start} at start, "
          f"{load_end} at end")
    print(f"versions: Python {m['python']}, {bs.versions(broker.version)}, "
          f"scapy {_version('scapy')}, kafka-python {_version('kafka-python')}")
    tutorial_total = next(s for p, st, _, s in rows if p == "tutorial" and st == "total")
    print(f"\n| {'pipeline':<9} | {'stage':<50} | {'rows':>8} | {'seconds':>7} | {'rows/s':>8} | "
          f"{'vs tutorial':>11} | complete |")
    print(f"|{'-' * 11}|{'-' * 52}|{'-' * 10}|{'-' * 9}|{'-' * 10}|{'-' * 13}|----------|")
    for pipeline, stage, count, seconds in rows:
        ratio = f"{tutorial_total / seconds:.1f}x" if stage.startswith("total") else ""
        print(f"| {pipeline:<9} | {stage:<50} | {count:>8,} | {seconds:>7.2f} | {count / seconds:>8,.0f} | "
              f"{ratio:>11} | {'yes' if count == n else 'NO':<8} |")
    for line in checks:
        print(f"- {line}")
    return 0


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    sys.exit(main())
