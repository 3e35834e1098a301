"""Spark Structured Streaming on Kafka: Spark's own Kafka source against pktstream's paths.

One command, one process, one warm session, one table::

    .venv/bin/python benches/bench_spark.py [--packets 2000000] [--partitions 4] [--repeat 1]
                                            [--master local[2]] [--json out.json]

Apache Kafka is started (``pktstream.broker.ApacheKafka``), a synthetic capture (``pktstream.testing.synth``
seed 0, cached under ``~/.cache/pktstream/bench/``) is produced three times, to topics of
``--partitions`` partitions: as ``csv`` with the packet tutorial's six columns, as ``json`` (every
packet column) and as ``arrow`` (``--rows-per-message``, default 5,000 packets per message: Apache
Kafka's default ``message.max.bytes`` of 1 MiB refuses some 10,000-packet messages). Then, on one ``local[N]`` session
with Spark's Kafka connector (``local_session(kafka_connector=True)``), every path is a streaming
query from the earliest offsets with ``trigger(availableNow=True)``, timed from ``start()`` to
termination (query planning included):

a. the tutorial: ``format("kafka")`` on the csv topic, ``CAST(value AS STRING)``, ``split`` into
   ``count, src_ip, dst_ip, proto, sport, dport`` (strings, as tutorials leave them);
b. the baseline: ``format("kafka")`` on the json topic + ``from_json(value, <packet schema>)``;
c. ``format("kafka")`` on the arrow topic + :func:`pktstream.spark.decode` (``mapInArrow``);
d. ``format("pktstream")`` on the arrow topic;
e. ``format("pktstream")`` on the json topic.

Each into three sinks: ``noop`` (``writeStream.format("noop")``: every row produced, nothing
kept), ``groupBy`` (``groupBy(ip_proto).count()``, complete mode, collected to the driver in
``foreachBatch``) and ``groupBy-cols``: the same query where each path reads only the column it
groups by, the way its user says so (``from_json`` with a one-field schema, which Spark's optimizer
also does by itself for (b); ``decode(..., columns=)`` for (c); the ``columns`` option for (d) and
(e): a Python data source cannot be told by Spark which columns a query uses). Rows are counted with ``observe`` (noop) and by summing the counts (groupBy),
never with Kafka's message counts (one ``arrow`` message holds thousands of rows); a row says whether
every packet arrived. ``availableNow`` is used for both sources because both support it the same
way: everything up to the end offsets at query start, here in one micro-batch (no
``maxOffsetsPerTrigger``), one Spark task per Kafka partition.

Warm session: before timing, every path runs once on a 5,000-packet copy of the topics (class
loading, Python workers, connector start-up), then each timed query ``--repeat`` times (best
kept). Rows/s per core divides by the session's ``defaultParallelism`` (N of ``local[N]``). The
``no Spark`` rows are ``pktstream.consume`` of the json and arrow topics in this process: the
ceiling the broker and the native consumer set.

Benchmarks are not tests: nothing asserts a timing; completeness is checked and printed.
``--profile`` adds, for (b), (d) and (e), Spark's per-batch ``durationMs`` breakdown and, for (d)
and (e), the time the source's ``read_range`` spends in the native read vs decoding/casting,
measured outside Spark on the same ranges.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pktstream" / "bench"

import pktstream  # noqa: E402
from pktstream import create_topic  # noqa: E402
from pktstream.broker import ApacheKafka  # noqa: E402
from pktstream.testing import synth  # noqa: E402

#: The packet tutorial's CSV columns (pktstream names) and the names the tutorial gives them.
TUTORIAL = ["frame_number", "src_ip", "dst_ip", "ip_proto", "src_port", "dst_port"]
TUTORIAL_NAMES = ["count", "src_ip", "dst_ip", "proto", "sport", "dport"]
WARMUP_PACKETS = 5_000
#: pktstream's JSON timestamps (RFC 3339, nanoseconds) for from_json.
TS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSSXXX"

PATHS = {
    "a": "Kafka source + split (CSV, tutorial)",
    "b": "Kafka source + from_json (JSON)",
    "c": "Kafka source + decode (arrow)",
    "d": "pktstream source (arrow)",
    "e": "pktstream source (JSON)",
}


def cached_capture(n: int, seed: int = 0) -> Path:
    """The synthetic n-packet pcap, generated once (shared with the other benches)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synth-{n}-seed{seed}.pcap"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        synth.write_pcap(tmp, n, seed=seed)
        tmp.replace(path)
    return path


def produce_topics(capture: Path, bootstrap: str, partitions: int, tag: str,
                   rows_per_message: int = 5_000) -> Dict[str, str]:
    """The capture as csv (tutorial columns), json and arrow topics; returns format -> topic."""
    topics = {}
    for fmt in ("csv", "json", "arrow"):
        topic = f"bench-{tag}-{fmt}-{uuid.uuid4().hex[:6]}"
        create_topic(topic, partitions=partitions, bootstrap_servers=bootstrap)
        t = time.perf_counter()
        extra: Dict[str, Any] = {"columns": TUTORIAL} if fmt == "csv" else {}
        if fmt == "arrow":
            extra["rows_per_message"] = rows_per_message
        report = pktstream.produce_pcap(capture, topic, bootstrap_servers=bootstrap, format=fmt,
                                        progress=False, **extra)
        print(f"  produced {report.delivered:,} {fmt} messages to {topic} in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
        topics[fmt] = topic
    return topics


def build(spark: Any, key: str, bootstrap: str, topics: Dict[str, str], sink: str = "noop") -> Tuple[Any, str]:
    """The streaming DataFrame of path ``key`` and the column to group by. For the ``groupBy-cols``
    sink each path reads only the column the query uses, the way its user would say so."""
    from pktstream.spark import decode, spark_schema
    from pyspark.sql import functions as F

    only = ["ip_proto"] if sink == "groupBy-cols" else None

    def kafka(topic: str) -> Any:
        return (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
                .option("subscribe", topic).option("startingOffsets", "earliest").load())

    def source(topic: str, fmt: str) -> Any:
        reader = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
                  .option("subscribe", topic).option("format", fmt).option("startingOffsets", "earliest"))
        if only:
            reader = reader.option("columns", ",".join(only))
        return reader.load()

    if key == "a":
        lines = kafka(topics["csv"]).selectExpr("CAST(value AS STRING)")
        parts = F.split(lines.value, ",")
        named = [(i, n) for i, n in enumerate(TUTORIAL_NAMES) if not only or n == "proto"]
        return lines.select(*[parts.getItem(i).alias(n) for i, n in named]), "proto"
    if key == "b":
        # Spark prunes from_json to the fields the query uses by itself; `only` states it outright.
        schema = spark_schema(pktstream.schema(only))
        parsed = F.from_json(F.col("value").cast("string"), schema, {"timestampFormat": TS_FORMAT})
        return kafka(topics["json"]).select(parsed.alias("j")).select("j.*"), "ip_proto"
    if key == "c":
        return decode(kafka(topics["arrow"]), format="arrow", schema=pktstream.schema(), columns=only), "ip_proto"
    if key == "d":
        return source(topics["arrow"], "arrow"), "ip_proto"
    if key == "e":
        return source(topics["json"], "json"), "ip_proto"
    raise ValueError(key)


def run_query(df: Any, group: str, sink: str, ckpt: str) -> Tuple[float, int, List[dict]]:
    """Runs ``df`` to the end of its input (availableNow) into ``sink``; (seconds, rows, progress)."""
    from pyspark.sql import functions as F

    counts: Dict[Any, int] = {}
    if sink == "noop":
        writer = df.observe("rows", F.count(F.lit(1)).alias("n")).writeStream.format("noop")
    else:
        def collect(batch: Any, batch_id: int) -> None:
            for row in batch.collect():
                counts[row[0]] = row[1]

        writer = df.groupBy(group).count().writeStream.outputMode("complete").foreachBatch(collect)
    t = time.perf_counter()
    q = writer.trigger(availableNow=True).option("checkpointLocation", ckpt).start()
    q.awaitTermination()
    seconds = time.perf_counter() - t
    if q.exception() is not None:
        raise RuntimeError(str(q.exception()))
    progress = [p for p in q.recentProgress if p.get("numInputRows", 0) or p.get("observedMetrics")]
    if sink == "noop":
        rows = sum(int(p["observedMetrics"]["rows"]["n"]) for p in progress
                   if "rows" in (p.get("observedMetrics") or {}))
    else:
        rows = sum(counts.values())
    return seconds, rows, progress


def connector_version() -> str:
    from pktstream.spark import connector_jars

    for jar in connector_jars():
        m = re.search(r"spark-sql-kafka-0-10_[\d.]+-([\w.-]+)\.jar$", jar)
        if m:
            return m.group(1)
    return "?"


def machine() -> Dict[str, Any]:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "usable": len(os.sched_getaffinity(0)),
            "python": platform.python_version()}


def versions(kafka: str) -> str:
    out = []
    for dist in ("pktstream", "pyspark", "pyarrow"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} missing")
    try:
        connector = connector_version()
    except FileNotFoundError:
        connector = "missing"
    out += [f"spark-sql-kafka-0-10 {connector}", f"Apache Kafka {kafka}"]
    return ", ".join(out)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ceiling(topic: str, bootstrap: str, fmt: str) -> Tuple[float, int]:
    t = time.perf_counter()
    kwargs: Dict[str, Any] = {"schema": pktstream.schema()} if fmt == "arrow" else {}
    rows = pktstream.consume(topic, bootstrap_servers=bootstrap, format=fmt, **kwargs).num_rows
    return time.perf_counter() - t, rows


def durations(progress: List[dict]) -> str:
    """Spark's durationMs of the batches, summed per phase (the biggest first)."""
    total: Dict[str, int] = {}
    for p in progress:
        for k, v in p.get("durationMs", {}).items():
            total[k] = total.get(k, 0) + int(v)
    return ", ".join(f"{k} {v / 1000:.2f}s" for k, v in sorted(total.items(), key=lambda kv: -kv[1]))


def profile_reads(bootstrap: str, topics: Dict[str, str]) -> List[str]:
    """``read_range`` of the pktstream source outside Spark, per Kafka partition: the native read
    (``read_batch``) vs the rest (selection, renaming, casts to Spark's types)."""
    from pktstream.spark import _source, arrow_schema
    from pktstream.spark._options import KafkaOptions

    lines = []
    for fmt in ("arrow", "json"):
        raw = {"kafka.bootstrap.servers": bootstrap, "subscribe": topics[fmt], "format": fmt}
        opts = KafkaOptions.parse(raw, streaming=False)
        target = arrow_schema(_source.KafkaDataSource(raw).schema())
        latest = opts.watermarks()
        ranges = _source.plan(opts, opts.earliest(latest), latest)
        spent: Dict[str, float] = {}
        real_native = KafkaOptions.native

        def timed_native(self: Any, _real: Any = real_native, _acc: Dict[str, float] = spent, **extra: str) -> Any:
            t = time.perf_counter()
            consumer = _real(self, **extra)
            _acc["new"] = _acc.get("new", 0.0) + time.perf_counter() - t
            return _Timed(consumer, _acc)

        KafkaOptions.native = timed_native  # type: ignore[method-assign]
        try:
            t = time.perf_counter()
            rows = 0
            for r in ranges:
                for b in _source.read_range(opts, r, target):
                    rows += b.num_rows
            total = time.perf_counter() - t
        finally:
            KafkaOptions.native = real_native  # type: ignore[method-assign]
        read = spent.pop("read_batch", 0.0)
        setup = sum(spent.values())
        lines.append(f"read_range, {fmt} topic, {len(ranges)} ranges one after the other, outside Spark: {rows:,} rows "
                     f"in {total:.2f} s ({rows / total:,.0f} rows/s): native read_batch {read:.2f} s, consumer "
                     f"start-up/close and offset checks {setup:.2f} s, Python selection/renaming/casts "
                     f"{total - read - setup:.2f} s")
    return lines


class _Timed:
    """A native consumer whose calls' times are added to ``acc`` by method name."""

    def __init__(self, inner: Any, acc: Dict[str, float]) -> None:
        self._inner, self._acc = inner, acc

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._acc[name] = self._acc.get(name, 0.0) + time.perf_counter() - t

        return timed


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=2_000_000, help="size of the synthetic capture")
    ap.add_argument("--partitions", type=int, default=4, help="partitions of each topic")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per path and sink; the best is kept")
    ap.add_argument("--rows-per-message", type=int, default=5_000, help="packets per arrow message")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--paths", default="abcde", help="which paths to run (letters)")
    ap.add_argument("--sinks", default="noop,groupBy,groupBy-cols")
    ap.add_argument("--profile", action="store_true", help="also print where the time goes for b, d, e")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    sinks = [s for s in args.sinks.split(",") if s]
    paths = [k for k in args.paths if k in PATHS]

    from pktstream.spark import local_session

    load_start = load()
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    results: List[Dict[str, Any]] = []
    notes: List[str] = []
    try:
        capture = cached_capture(args.packets)
        warm_capture = cached_capture(WARMUP_PACKETS)
        with ApacheKafka(work / "broker", security=False) as broker:
            bootstrap = broker.bootstrap_servers
            kafka_version = broker.version
            print(f"Apache Kafka {kafka_version} at {bootstrap}; producing {args.packets:,} packets", file=sys.stderr)
            topics = produce_topics(capture, bootstrap, args.partitions, "big", args.rows_per_message)
            warm = produce_topics(warm_capture, bootstrap, args.partitions, "warm", args.rows_per_message)
            n = args.packets
            no_spark = []
            for fmt in ("json", "arrow"):
                seconds, rows = ceiling(topics[fmt], bootstrap, fmt)
                no_spark.append((fmt, seconds, rows))

            spark = local_session("bench-spark", master=args.master, kafka_connector=True,
                                  conf={"spark.sql.streaming.schemaInference": "false"})
            cores = spark.sparkContext.defaultParallelism
            print("warming up every path on 5,000 packets", file=sys.stderr)
            for key in paths:
                for sink in sinks:
                    df, group = build(spark, key, bootstrap, warm, sink)
                    run_query(df, group, sink, str(work / f"ckpt-{uuid.uuid4().hex[:8]}"))
            for sink in sinks:
                for key in paths:
                    best: Optional[Tuple[float, int, List[dict]]] = None
                    for _ in range(args.repeat):
                        df, group = build(spark, key, bootstrap, topics, sink)
                        got = run_query(df, group, sink, str(work / f"ckpt-{uuid.uuid4().hex[:8]}"))
                        print(f"  ({key}) {PATHS[key]} -> {sink}: {got[1]:,} rows in {got[0]:.2f} s "
                              f"[load {load()}]", file=sys.stderr)
                        if best is None or got[0] < best[0]:
                            best = got
                    assert best is not None
                    seconds, rows, progress = best
                    results.append({"path": key, "source": f"({key}) {PATHS[key]}", "sink": sink, "rows": rows,
                                    "seconds": seconds, "rows_per_s": rows / seconds,
                                    "per_core": rows / seconds / cores, "complete": rows == n})
                    if args.profile and key in "bde":
                        inside = sum(int(p.get("durationMs", {}).get("triggerExecution", 0)) for p in progress) / 1000
                        notes.append(f"({key}) -> {sink}: {seconds:.2f} s, of which {seconds - inside:.2f} s outside "
                                     f"the micro-batches (query start-up and stop); {len(progress)} batch(es), "
                                     f"Spark durationMs: {durations(progress)}")
            spark.stop()
            for fmt, seconds, rows in no_spark:
                results.append({"path": "-", "source": f"pktstream.consume, no Spark ({fmt})", "sink": "Table",
                                "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
                                "per_core": None, "complete": rows == n})
            if args.profile:
                notes += profile_reads(bootstrap, topics)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_end = load()

    m = machine()
    print(f"\nSpark Structured Streaming on Apache Kafka, {args.packets:,} packets, {args.partitions} partitions, "
          f"{args.master} ({cores} cores), trigger(availableNow=True), warm session, best of {args.repeat}")
    print(f"machine: {m['cpus']} CPUs ({m['usable']} usable), {m['cpu']}; load average {load_start} at start, "
          f"{load_end} at end")
    print(f"versions: Python {m['python']}, {versions(kafka_version)}")
    print(f"\n| {'path':<40} | {'sink':<7} | {'rows':>9} | {'seconds':>7} | {'rows/s':>9} | {'rows/s/core':>11} | "
          f"{'vs (b)':>6} | complete |")
    print(f"|{'-' * 42}|{'-' * 9}|{'-' * 11}|{'-' * 9}|{'-' * 11}|{'-' * 13}|{'-' * 8}|----------|")
    for r in results:
        base = next((b for b in results if b["sink"] == r["sink"] and b["path"] == "b"), None)
        ratio = f"{r['rows_per_s'] / base['rows_per_s']:.2f}x" if base and r["path"] != "-" else "-"
        per_core = f"{r['per_core']:,.0f}" if r["per_core"] is not None else "-"
        print(f"| {r['source']:<40} | {r['sink']:<7} | {r['rows']:>9,} | {r['seconds']:>7.2f} | "
              f"{r['rows_per_s']:>9,.0f} | {per_core:>11} | {ratio:>6} | {'yes' if r['complete'] else 'NO':<8} |")
    if notes:
        print("\nwhere the time goes:")
        for line in notes:
            print(f"- {line}")
    if args.json:
        args.json.write_text(json.dumps({"machine": m, "load": [load_start, load_end], "results": results,
                                         "notes": notes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
