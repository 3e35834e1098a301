"""Kafka throughput of pktstream against the pipelines users would otherwise write, side by side.

One command, one process run, one table::

    .venv/bin/python benches/bench_kafka.py [--packets 200000] [--quick] [--broker kafka|tansu | --bootstrap H:P]
                                            [--pcap FILE] [--partitions 6] [--json out.json]

It starts its own broker (``pktstream.broker``): Apache Kafka by default (``ApacheKafka``, PLAINTEXT
listener; what users run), the in-memory Tansu with ``--broker tansu``, or uses an existing Kafka
with ``--bootstrap``. On Apache Kafka the broker's own ceiling for the same message sizes is
measured too, with Kafka's ``kafka-producer-perf-test`` and ``kafka-consumer-perf-test``
(``org.apache.kafka.tools.ProducerPerformance`` / ``ConsumerPerformance``, Java client). On one capture (synthetic,
``pktstream.testing.synth`` seed 0, cached under ``~/.cache/pktstream/bench/``; or ``--pcap FILE``), each
contender writes to a fresh topic with ``--partitions`` partitions:

Producing (rows = packets read from the file):

a. the tutorial pipeline: scapy ``PcapReader`` -> a 5-tuple dict -> ``json.dumps`` -> kafka-python
   ``KafkaProducer.send``, then ``flush`` (first 20,000 packets; the rate is extrapolated);
b. dpkt -> the same dict -> ``json.dumps`` -> confluent-kafka ``Producer.produce`` (keyed by the
   5-tuple, ``poll(0)`` per message, ``BufferError`` -> ``poll`` and retry), then ``flush``;
c. the ceiling of a Python client on this broker: confluent-kafka producing pre-built messages of
   the same sizes (no parsing, no serialisation);
d. ``pktstream.produce_pcap`` in each format (``json`` one message per packet, ``csv``, ``raw``
   frames, ``arrow`` IPC batches), and ``json`` restricted to the baselines' fields.

Consuming (rows = packets back in a table): confluent-kafka ``Consumer.consume`` + ``json.loads`` +
``pandas.DataFrame`` against ``pktstream.consume`` (an Arrow table), on the same JSON topics; and
``pktstream.consume`` of the Arrow topic.

Benchmarks are not tests: nothing here asserts a timing. Every row says whether every message
arrived; the numbers in the README come from this script, with the machine stated.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pktstream" / "bench"

from pktstream.broker import ApacheKafka, Broker  # noqa: E402
from pktstream.testing import synth  # noqa: E402  (stdlib-only module)

try:
    from pktstream import consume, produce_pcap
except ImportError as e:  # the Kafka API not built yet: the baselines still run
    produce_pcap = consume = None  # type: ignore[assignment]
    PKTSTREAM_MISSING = f"pktstream's Kafka API is not importable ({e}); rebuild: maturin develop -r"
else:
    PKTSTREAM_MISSING = ""

#: What the baselines put in each message: the flow 5-tuple, the time and the frame length.
FIELDS = ["ts", "src_ip", "dst_ip", "ip_proto", "src_port", "dst_port", "wirelen"]


def cached_capture(n: int, seed: int = 0) -> Path:
    """The synthetic n-packet pcap, generated once (shared with bench_decode.py)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synth-{n}-seed{seed}.pcap"
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        synth.write_pcap(tmp, n, seed=seed)
        tmp.replace(path)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)
    return path


class Topics:
    """Fresh topics for each contender on the benchmark's broker."""

    def __init__(self, bootstrap: str, partitions: int) -> None:
        self.bootstrap, self.partitions, self.run = bootstrap, partitions, uuid.uuid4().hex[:6]

    def new(self, label: str) -> str:
        name = f"bench-{self.run}-{label}"
        from pktstream import create_topic

        create_topic(name, partitions=self.partitions, bootstrap_servers=self.bootstrap)
        return name


# ----------------------------------------------------------------------------- producers
def scapy_kafka_python(path: Path, topic: str, bootstrap: str, limit: int) -> tuple[int, int]:
    """The tutorial: scapy PcapReader -> dict -> json.dumps -> kafka-python send (the first ``limit``
    packets); then flush."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    from kafka import KafkaProducer

    logging.getLogger("scapy").setLevel(logging.ERROR)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    packets = sent = 0
    for pkt in PcapReader(str(path)):
        if packets == limit:
            break
        packets += 1
        ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
        if ip is None:
            continue
        l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
        record = {
            "ts": float(pkt.time),
            "src_ip": ip.src,
            "dst_ip": ip.dst,
            "ip_proto": ip.proto if ip.version == 4 else ip.nh,
            "src_port": l4.sport if l4 is not None else None,
            "dst_port": l4.dport if l4 is not None else None,
            "wirelen": pkt.wirelen or len(pkt),
        }
        producer.send(topic, json.dumps(record).encode())
        sent += 1
    producer.flush()
    producer.close()
    return packets, sent


def dpkt_records(path: Path):
    """dpkt's examples: Ethernet -> IP/IPv6 -> TCP/UDP, the 5-tuple dict per IP packet."""
    import dpkt

    with open(path, "rb") as f:
        for ts, buf in dpkt.pcap.Reader(f):
            try:
                eth = dpkt.ethernet.Ethernet(buf)
            except (dpkt.UnpackError, dpkt.NeedData):
                yield None
                continue
            ip = eth.data
            if isinstance(ip, dpkt.ip.IP):
                src, dst, proto = socket.inet_ntoa(ip.src), socket.inet_ntoa(ip.dst), ip.p
            elif isinstance(ip, dpkt.ip6.IP6):
                src = socket.inet_ntop(socket.AF_INET6, ip.src)
                dst = socket.inet_ntop(socket.AF_INET6, ip.dst)
                proto = ip.nxt
            else:
                yield None
                continue
            l4 = ip.data
            ports = (l4.sport, l4.dport) if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)) else (None, None)
            yield {"ts": ts, "src_ip": src, "dst_ip": dst, "ip_proto": proto,
                   "src_port": ports[0], "dst_port": ports[1], "wirelen": len(buf)}


def _produce(producer: Any, topic: str, value: bytes, key: Optional[bytes], on_delivery: Callable) -> None:
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery)
            break
        except BufferError:  # the local queue is full: serve deliveries, retry
            producer.poll(0.05)
    producer.poll(0)


class Deliveries:
    def __init__(self) -> None:
        self.ok = self.failed = 0

    def __call__(self, err: Any, msg: Any) -> None:
        if err is None:
            self.ok += 1
        else:
            self.failed += 1


def dpkt_confluent(path: Path, topic: str, bootstrap: str) -> tuple[int, int, int, int]:
    """dpkt -> dict -> json.dumps -> confluent-kafka produce (keyed by the 5-tuple), then flush."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    done = Deliveries()
    packets = sent = nbytes = 0
    for record in dpkt_records(path):
        packets += 1
        if record is None:
            continue
        value = json.dumps(record).encode()
        key = f"{record['src_ip']}|{record['dst_ip']}|{record['ip_proto']}|{record['src_port']}|" \
              f"{record['dst_port']}".encode()
        _produce(producer, topic, value, key, done)
        sent += 1
        nbytes += len(value) + len(key)
    producer.flush()
    return packets, sent, done.ok, nbytes


def confluent_ceiling(topic: str, bootstrap: str, n: int, size: int) -> tuple[int, int]:
    """Pre-built ``size``-byte values with 4,096 distinct 24-byte keys: no parsing, no encoding."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    done = Deliveries()
    value = b"x" * size
    keys = [f"{i:024d}".encode() for i in range(4096)]
    for i in range(n):
        _produce(producer, topic, value, keys[i & 4095], done)
    producer.flush()
    return n, done.ok


# ----------------------------------------------------------------------------- consumers
def confluent_pandas(topic: str, bootstrap: str, n: int, timeout: float = 60.0) -> int:
    """confluent-kafka Consumer (every partition from the start) -> json.loads -> pandas."""
    import pandas as pd
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    rows: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(rows) < n and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, 0.5):
            if msg.error() is None:
                rows.append(json.loads(msg.value()))
    consumer.close()
    return len(pd.DataFrame(rows))


def pktstream_consume(topic: str, bootstrap: str, n: int, fmt: str) -> int:
    assert consume is not None
    return consume(topic, bootstrap_servers=bootstrap, format=fmt, max_rows=n, timeout=10).num_rows


# ----------------------------------------------------------------------------- report
def _java_tool(broker: ApacheKafka, main: str, *args: str) -> str:
    cmd = [broker.java, "-Xmx1g", "-cp", f"{broker.libs}/*", main, *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout


def java_producer_perf(broker: ApacheKafka, topic: str, n: int, size: int) -> tuple[int, float]:
    """Kafka's own producer benchmark: its last line is 'N records sent, R records/sec (...)'."""
    out = _java_tool(broker, "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                     "--num-records", str(n), "--record-size", str(size), "--throughput", "-1",
                     "--producer-props", f"bootstrap.servers={broker.bootstrap_servers}", "acks=all",
                     "enable.idempotence=true", "linger.ms=20")
    last = [line for line in out.splitlines() if "records sent" in line][-1]
    sent, rate = int(last.split()[0]), float(last.split(",")[1].split()[0])
    return sent, sent / rate


def java_consumer_perf(broker: ApacheKafka, topic: str, n: int) -> tuple[int, float]:
    """Kafka's own consumer benchmark (CSV: ..., data.consumed.in.nMsg, nMsg.sec, ...)."""
    out = _java_tool(broker, "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
                     broker.bootstrap_servers, "--topic", topic, "--messages", str(n), "--timeout", "60000")
    header, row = [line for line in out.splitlines() if line.strip()][-2:]
    fields = dict(zip((h.strip() for h in header.split(",")), (v.strip() for v in row.split(","))))
    msgs, rate = int(fields["data.consumed.in.nMsg"]), float(fields["nMsg.sec"])
    return msgs, msgs / rate if rate else float("inf")


def machine(broker: str) -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for dist in ("pktstream", "confluent-kafka", "kafka-python", "dpkt", "scapy", "pandas", "pyarrow"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} missing")
    try:
        from confluent_kafka import libversion

        versions.append(f"librdkafka {libversion()[0]}")
    except ImportError:
        pass
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}; "
            f"Python {platform.python_version()} on {platform.system()} {platform.release()}\n"
            f"{', '.join(versions)}\nbroker: {broker}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000, help="size of the synthetic capture")
    ap.add_argument("--pcap", type=Path, help="use this capture instead of a synthetic one")
    ap.add_argument("--quick", action="store_true", help="50k packets, scapy on 5k")
    ap.add_argument("--partitions", type=int, default=6, help="partitions of each topic (default 6)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--broker", choices=["kafka", "tansu"], default="kafka",
                       help="start Apache Kafka (default) or the in-memory Tansu")
    where.add_argument("--bootstrap", help="an existing Kafka (host:port); topics bench-* are created there")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    n_synth = 50_000 if args.quick and args.packets == 200_000 else args.packets
    path = args.pcap or cached_capture(n_synth)
    scapy_n = 5_000 if args.quick else 20_000

    import dpkt  # noqa: F401 - imports are not what is timed
    import pandas  # noqa: F401
    import scapy.all  # noqa: F401

    import kafka  # noqa: F401

    if PKTSTREAM_MISSING:
        print(f"NOTE: {PKTSTREAM_MISSING}; only the baselines run", file=sys.stderr)

    broker: Any = None
    if args.bootstrap:
        bootstrap, broker_desc = args.bootstrap, f"external Kafka at {args.bootstrap}"
    elif args.broker == "kafka":
        broker = ApacheKafka(security=False).start()
        bootstrap = broker.bootstrap_servers
        broker_desc = (f"Apache Kafka {broker.version} (one KRaft node, same machine, started in "
                       f"{broker.startup_seconds:.1f} s), {bootstrap}")
    else:
        broker = Broker(storage="memory").start()
        bootstrap = broker.bootstrap_servers
        broker_desc = f"Tansu 0.6.0, in-memory, {bootstrap} ({broker.binary})"
    topics = Topics(bootstrap, args.partitions)
    results: list[dict[str, Any]] = []

    def record(key: str, tool: str, rows: int, seconds: float, complete: bool, note: str = "",
               mb: float = 0.0) -> None:
        stage = key.split(":")[0]
        results.append({"key": key, "stage": stage, "tool": tool, "rows": rows, "seconds": seconds,
                        "rate": rows / seconds if seconds else 0.0, "complete": complete, "note": note,
                        "mb": mb})
        flag = "" if complete else "  (INCOMPLETE)"
        print(f"  {stage} {tool}: {rows:,} rows in {seconds:.2f} s{flag}", file=sys.stderr)

    def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        return time.perf_counter() - t, out

    try:
        n_packets = sum(1 for _ in dpkt_records(path))
        print(f"capture {path}: {n_packets:,} packets, {path.stat().st_size / 1e6:.0f} MB; {broker_desc}",
              file=sys.stderr)

        t = topics.new("scapy")
        dt, (rows, sent) = timed(scapy_kafka_python, path, t, bootstrap, scapy_n)
        record("produce:scapy", "scapy -> json.dumps -> kafka-python", rows, dt, True,
               f"first {rows:,} packets; {sent:,} IP messages")

        dpkt_topic = topics.new("dpkt")
        dt, (rows, sent, ok, nbytes) = timed(dpkt_confluent, path, dpkt_topic, bootstrap)
        record("produce:dpkt", "dpkt -> json.dumps -> confluent-kafka", rows, dt, ok == sent,
               f"{sent:,} IP messages, {ok:,} delivered, ~{nbytes // max(sent, 1)} B each", nbytes / 1e6)
        sizes = {"dpkt json": nbytes // max(sent, 1)}

        reports = {}
        if produce_pcap is not None:
            variants = [("json", None), ("json", FIELDS), ("csv", None), ("raw", None), ("arrow", None)]
            for fmt, columns in variants:
                label = fmt if columns is None else f"{fmt}-fields"
                t = topics.new(f"pktstream-{label}")
                dt, rep = timed(produce_pcap, path, t, bootstrap_servers=bootstrap, format=fmt,
                                columns=columns, progress=False)
                reports[label] = (t, rep)
                what = f"format={fmt!r}" + (f", the {len(FIELDS)} baseline fields" if columns else "")
                record(f"produce:pktstream-{label}", f"pktstream.produce_pcap {what}", rep.rows, dt,
                       rep.failed == 0 and rep.delivered == rep.messages,
                       f"{rep.messages:,} messages, ~{rep.bytes // max(rep.messages, 1)} B each; "
                       f"handed to librdkafka at {rep.rows / max(rep.queued_seconds, 1e-9):,.0f} rows/s",
                       rep.bytes / 1e6)
                if fmt == "json":
                    sizes[f"pktstream {label}"] = rep.bytes // max(rep.messages, 1)

        for label, size in sizes.items():
            t = topics.new(f"ceiling-{size}")
            dt, (sent, ok) = timed(confluent_ceiling, t, bootstrap, n_packets, size)
            record(f"produce:ceiling-{label}", f"ceiling: confluent-kafka, pre-built {size} B messages",
                   sent, dt, ok == sent, f"size of {label}", sent * size / 1e6)
            if isinstance(broker, ApacheKafka):
                t = topics.new(f"java-{size}")
                rows, dt = java_producer_perf(broker, t, n_packets, size)
                record(f"produce:java-{label}", f"ceiling: kafka-producer-perf-test (Java), {size} B records",
                       rows, dt, rows == n_packets, f"size of {label}; acks=all, idempotent, linger.ms=20",
                       rows * size / 1e6)
                rows, dt = java_consumer_perf(broker, t, n_packets)
                record(f"consume:java-{label}", f"ceiling: kafka-consumer-perf-test (Java), {size} B records",
                       rows, dt, rows == n_packets, "records only, no decoding")

        # Consuming: the same topics, read back into a table.
        for label, what in [("json-fields", "7 fields"), ("json", "all columns"), ("arrow", "all columns")]:
            if label not in reports:
                continue
            t, rep = reports[label]
            if label != "arrow":
                dt, rows = timed(confluent_pandas, t, bootstrap, rep.messages)
                record(f"consume:baseline-{label}", f"confluent-kafka -> json.loads -> pandas ({what})",
                       rows, dt, rows == rep.rows)
            fmt = label.split("-")[0]
            dt, rows = timed(pktstream_consume, t, bootstrap, rep.rows, fmt)
            record(f"consume:pktstream-{label}", f"pktstream.consume format={fmt!r} ({what})", rows, dt,
                   rows == rep.rows)
    finally:
        if broker is not None:
            broker.close()

    print(f"\n### pktstream Kafka benchmark\n\n{machine(broker_desc)}\n")
    print(f"Capture: {path.name}, {n_packets:,} packets, {path.stat().st_size / 1e6:.0f} MB; "
          f"{args.partitions} partitions per topic\n")
    print("| stage | tool | rows | seconds | rows/s | MB sent | all delivered | note |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for r in results:
        mb = f"{r['mb']:,.1f}" if r["mb"] else ""
        print(f"| {r['stage']} | {r['tool']} | {r['rows']:,} | {r['seconds']:.2f} | {r['rate']:,.0f} | "
              f"{mb} | {'yes' if r['complete'] else 'NO'} | {r['note']} |")

    rates = {r["key"]: r["rate"] for r in results if r["complete"]}
    pairs = [
        ("produce json", "produce:pktstream-json", "produce:dpkt", "dpkt+json+confluent-kafka"),
        ("produce json", "produce:pktstream-json", "produce:scapy", "scapy+json+kafka-python"),
        ("produce json, 7 fields", "produce:pktstream-json-fields", "produce:dpkt",
         "dpkt+json+confluent-kafka"),
        ("produce arrow", "produce:pktstream-arrow", "produce:dpkt", "dpkt+json+confluent-kafka"),
        ("consume json, 7 fields", "consume:pktstream-json-fields", "consume:baseline-json-fields",
         "confluent-kafka+json.loads+pandas"),
        ("consume json, all columns", "consume:pktstream-json", "consume:baseline-json",
         "confluent-kafka+json.loads+pandas"),
    ]
    ratios = [f"{what}: {rates[ours] / rates[base]:,.1f}x {name}"
              for what, ours, base, name in pairs if ours in rates and base in rates]
    if ratios:
        print("\nRatios (pktstream rows/s / baseline rows/s):\n" + "\n".join(f"- {r}" for r in ratios))
    if PKTSTREAM_MISSING:
        print(f"\n{PKTSTREAM_MISSING}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(broker_desc), "capture": str(path),
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
