"""Spark Structured Streaming throughput: the ``pktstream`` source against ``from_json`` on strings.

One command, one process run, one table::

    .venv/bin/python benches/bench_spark.py [--packets 200000] [--partitions 4] [--repeat 2]
                                            [--master local[2]] [--json out.json]

Apache Kafka is started (``pktstream.broker.ApacheKafka``; the ``pktstream`` source plans with the
partitions' end offsets, which the in-memory Tansu reports wrongly), a synthetic capture
(``pktstream.synth`` seed 0, cached under ``~/.cache/pktstream/bench/``) is produced as JSON, one
message per packet, to a topic of ``--partitions`` partitions, and the same JSON messages are
written to a directory of text files. Each contender is a streaming query with
``trigger(availableNow=True)`` into ``foreachBatch``, timed from ``start()`` to termination (the
session is warm; query planning is included):

a. ``spark.readStream.format("pktstream")``: decoded packet columns + Kafka columns, from the JSON
   topic, and from the same packets produced as ``arrow`` (10,000 rows per message);
b. ``spark.readStream.text(dir)`` + ``from_json(value, <packet schema>)``: what users do with JSON
   strings on the JVM side. Spark's own Kafka source is not available on this machine (its jars
   come from Maven Central), so the strings come from a file source; with Kafka the JVM side would
   add the Kafka fetch on top.

Each runs with two sinks: ``noop`` (``df.write.format("noop")`` in ``foreachBatch``: every row
produced, nothing kept) and ``toArrow`` (the batch collected to the driver as a pyarrow Table, what
:func:`pktstream.spark.foreach_arrow` does). Benchmarks are not tests: nothing asserts a timing;
each row says whether every row arrived. The last row, ``pktstream.consume`` of the JSON topic
without Spark, is the ceiling the broker and the native consumer set for the Kafka rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pktstream" / "bench"

import pktstream  # noqa: E402
from pktstream import create_topic, synth  # noqa: E402
from pktstream.broker import ApacheKafka  # noqa: E402


def cached_capture(n: int, seed: int = 0) -> Path:
    """The synthetic n-packet pcap, generated once (shared with the other benches)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synth-{n}-seed{seed}.pcap"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        synth.write_pcap(tmp, n, seed=seed)
        tmp.replace(path)
    return path


def json_files(bootstrap: str, topic: str, out: Path, files: int) -> int:
    """The topic's JSON messages as text files (one message per line), ``files`` files."""
    values = pktstream.consume(topic, bootstrap_servers=bootstrap, format="binary").column("value").to_pylist()
    out.mkdir(parents=True)
    per = -(-len(values) // files)
    for i in range(files):
        chunk = values[i * per:(i + 1) * per]
        (out / f"part-{i:03d}.json").write_bytes(b"\n".join(chunk) + b"\n")
    return len(values)


def run_query(df: Any, sink: str, ckpt: str) -> tuple[float, int]:
    """Runs ``df`` to the end of its input (availableNow) into ``sink``; returns (seconds, rows)."""
    rows = [0]

    def noop(batch: Any, batch_id: int) -> None:
        batch.write.format("noop").mode("overwrite").save()

    def arrow(batch: Any, batch_id: int) -> None:
        rows[0] += batch.toArrow().num_rows

    fn: Callable[[Any, int], None] = noop if sink == "noop" else arrow
    t = time.perf_counter()
    q = df.writeStream.foreachBatch(fn).trigger(availableNow=True).option("checkpointLocation", ckpt).start()
    q.awaitTermination()
    seconds = time.perf_counter() - t
    if q.exception() is not None:
        raise RuntimeError(str(q.exception()))
    if sink == "noop":
        progress = q.recentProgress
        rows[0] = sum(p["numInputRows"] for p in progress)
    return seconds, rows[0]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for dist in ("pktstream", "pyspark", "pyarrow", "pandas"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} missing")
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}; "
            f"Python {platform.python_version()}; {', '.join(versions)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000, help="size of the synthetic capture")
    ap.add_argument("--partitions", type=int, default=4, help="partitions of the topic (and number of files)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per contender; the best is reported")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)

    from pktstream.spark import local_session, spark_schema
    from pyspark.sql import functions as F

    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    results: list[dict[str, Any]] = []
    try:
        capture = cached_capture(args.packets)
        with ApacheKafka(work / "broker", security=False) as broker:
            bootstrap = broker.bootstrap_servers
            topic = f"bench-spark-{uuid.uuid4().hex[:6]}"
            create_topic(topic, partitions=args.partitions, bootstrap_servers=bootstrap)
            report = pktstream.produce_pcap(capture, topic, bootstrap_servers=bootstrap, progress=False)
            n = report.delivered
            arrow_topic = f"{topic}-arrow"
            create_topic(arrow_topic, partitions=args.partitions, bootstrap_servers=bootstrap)
            pktstream.produce_pcap(capture, arrow_topic, bootstrap_servers=bootstrap, format="arrow",
                                   rows_per_message=10_000, progress=False)
            t = time.perf_counter()
            consumed = pktstream.consume(topic, bootstrap_servers=bootstrap).num_rows
            ceiling = time.perf_counter() - t
            json_files(bootstrap, topic, work / "json", args.partitions)
            print(f"{n:,} packets as JSON in {topic} ({args.partitions} partitions) and in "
                  f"{args.partitions} text files", file=sys.stderr)

            spark = local_session("bench-spark", master=args.master,
                                  conf={"spark.sql.streaming.schemaInference": "false"})
            schema = spark_schema(pktstream.schema())

            def pktstream_source() -> Any:
                return (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
                        .option("subscribe", topic).option("startingOffsets", "earliest").load())

            def pktstream_arrow_source() -> Any:
                return (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
                        .option("subscribe", arrow_topic).option("format", "arrow")
                        .option("startingOffsets", "earliest").load())

            def from_json_source() -> Any:
                text = spark.readStream.text(str(work / "json"))
                parsed = F.from_json("value", schema, {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSSXXX"})
                return text.select(parsed.alias("j")).select("j.*")

            contenders = [
                ("pktstream source", pktstream_source),
                ("pktstream source (arrow)", pktstream_arrow_source),
                ("text file + from_json", from_json_source),
            ]
            spark.range(1000).toArrow()  # warm the JVM and the Python workers
            for sink in ("noop", "toArrow"):
                for label, make in contenders:
                    best = None
                    for _ in range(args.repeat):
                        ckpt = str(work / f"ckpt-{uuid.uuid4().hex[:6]}")
                        seconds, rows = run_query(make(), sink, ckpt)
                        if best is None or seconds < best[0]:
                            best = (seconds, rows)
                        print(f"  {label} -> {sink}: {rows:,} rows in {seconds:.2f} s", file=sys.stderr)
                    assert best is not None
                    results.append({"source": label, "sink": sink, "rows": best[1], "seconds": best[0],
                                    "rows_per_s": best[1] / best[0], "complete": best[1] == n})
            spark.stop()
            results.append({"source": "pktstream.consume, no Spark", "sink": "Table", "rows": consumed,
                            "seconds": ceiling, "rows_per_s": consumed / ceiling, "complete": consumed == n})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nSpark Structured Streaming, {args.packets:,} packets as JSON, {args.master}, "
          f"availableNow into foreachBatch (best of {args.repeat})")
    print(machine())
    print(f"\n| {'source':<28} | {'sink':<8} | {'rows':>9} | {'seconds':>7} | {'rows/s':>9} | "
          f"{'vs from_json':>12} | complete |")
    print(f"|{'-' * 30}|{'-' * 10}|{'-' * 11}|{'-' * 9}|{'-' * 11}|{'-' * 14}|----------|")
    for r in results:
        base = next((b for b in results if b["sink"] == r["sink"] and b["source"].startswith("text")), None)
        ratio = f"{r['rows_per_s'] / base['rows_per_s']:.2f}x" if base else "-"
        print(f"| {r['source']:<28} | {r['sink']:<8} | {r['rows']:>9,} | {r['seconds']:>7.2f} | "
              f"{r['rows_per_s']:>9,.0f} | {ratio:>12} | {'yes' if r['complete'] else 'NO':<8} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
