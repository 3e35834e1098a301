"""The tutorials' jobs on Spark's own Kafka connector (``spark-sql-kafka-0-10``), over topics
pktstream produced, against the suite's Apache Kafka; each result checked against an oracle.

Why: users meet pktstream next to the connector every Spark tutorial uses. These tests run those
jobs as their authors wrote them (value cast to string and ``split``, ``from_json``, JDBC and
``foreachBatch`` sinks), and :func:`pktstream.spark.decode` on the connector's real DataFrames in
every format ``produce_pcap`` writes. Oracles: tshark, :func:`pktstream.read_pcap`, scipy, and
totals computed in Python. The last test scales out to two executors (``local-cluster``).

Needs ``scripts/install_spark_kafka.sh`` (the session fixture passes the jars) and, for the
PostgreSQL job, the server from ``scripts/install_postgres.sh``.
"""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import oracle
import pktstream
import pyarrow as pa
import pytest
import spark_transactions_job as txjob
from pktstream.spark import decode, foreach_arrow

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SAMPLE = DATA / "sample.pcap"
LOOPBACK = DATA / "gopacket_test_loopback.pcap"  # link type 0 (BSD loopback), not Ethernet
#: The packet tutorial's columns, as pktstream names them.
TUTORIAL = ["frame_number", "src_ip", "dst_ip", "ip_proto", "src_port", "dst_port"]
#: Columns compared with read_pcap in the decode tests.
COMPARED = ["frame_number", "ts", "caplen", "wirelen", "link_type", "src_ip", "dst_ip", "ip_proto",
            "src_port", "dst_port", "tcp_flags", "payload_len", "community_id"]


def _kafka(spark: Any, bootstrap: str, topic: str, *, stream: bool = False, **options: Any) -> Any:
    """Spark's own Kafka source on ``topic``, from the earliest offsets."""
    reader = spark.readStream if stream else spark.read
    reader = (reader.format("kafka").option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", topic).option("startingOffsets", "earliest"))
    for k, v in options.items():
        reader = reader.option(k, str(v))
    return reader.load()


def _rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    """Rows as sortable tuples; timestamps as integer microseconds (Spark's precision)."""
    arrays = []
    for name in columns:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("us", "UTC"), safe=False).cast(pa.int64())
        elif pa.types.is_integer(col.type):
            col = col.cast(pa.int64())
        arrays.append(col.to_pylist())
    return sorted(zip(*arrays), key=repr)


def _wait(done: Callable[[], bool], query: Any = None, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if query is not None and not query.isActive:
            raise AssertionError(f"the streaming query stopped: {query.exception()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


# --- the connector reads pktstream's topics; decode() in every format ---------------------------


@pytest.mark.parametrize("fmt", ["json", "csv", "raw", "arrow"])
def test_decode_spark_kafka_source_in_every_format(spark, bootstrap, topic_factory, fmt):
    topic = topic_factory(2)
    columns = None if fmt == "json" else COMPARED
    report = pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, format=fmt, columns=columns,
                                    rows_per_message=37, progress=False)
    df = _kafka(spark, bootstrap, topic, includeHeaders="true")
    assert df.columns == ["key", "value", "topic", "partition", "offset", "timestamp", "timestampType", "headers"]
    assert df.count() == report.messages
    schema = pktstream.schema(COMPARED) if fmt == "arrow" else None
    packets = decode(df, format=fmt, columns=columns if fmt != "arrow" else None, schema=schema).toArrow()

    expected = pktstream.read_pcap(SAMPLE)
    assert packets.num_rows == expected.num_rows == 200
    assert packets.column("_error").null_count == packets.num_rows
    # raw frames carry no frame number: the decoder numbers the frames of each batch.
    compared = [c for c in COMPARED if not (fmt == "raw" and c == "frame_number")]
    assert _rows(packets, compared) == _rows(expected, compared)
    assert set(packets.column("topic").to_pylist()) == {topic}


def test_raw_frames_with_headers_keep_their_link_type(spark, bootstrap, topic_factory, tmp_path):
    """Metron-style frames of two link types in one topic, streamed through Spark's Kafka source
    with ``includeHeaders=true``: decode() reads ``link_type`` and ``wirelen`` from the headers."""
    topic = topic_factory(2)
    for path in (SAMPLE, LOOPBACK):
        pktstream.produce_pcap(path, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    batches: list[pa.Table] = []
    q = (decode(_kafka(spark, bootstrap, topic, stream=True, includeHeaders="true"), format="raw")
         .writeStream.foreachBatch(foreach_arrow(lambda t, i: batches.append(t)))
         .trigger(availableNow=True).option("checkpointLocation", str(tmp_path / "ckpt")).start())
    q.awaitTermination(120)
    assert q.exception() is None
    got = pa.concat_tables(batches)
    expected = pa.concat_tables([pktstream.read_pcap(SAMPLE), pktstream.read_pcap(LOOPBACK)])
    compared = [c for c in COMPARED if c != "frame_number"] + ["ip_version", "ttl", "ethertype"]
    assert collections.Counter(got.column("link_type").to_pylist()) == {1: 200, 0: 24}
    assert _rows(got, compared) == _rows(expected, compared)
    # Without the headers every frame is taken for Ethernet: the loopback ones decode wrong.
    blind = decode(_kafka(spark, bootstrap, topic), format="raw").toArrow()
    assert _rows(blind, compared) != _rows(expected, compared)


# --- tutorial: packets as CSV, split, groupBy(proto).count() every 5 seconds --------------------


def test_packets_tutorial_counts_protocols_like_tshark(spark, bootstrap, topic_factory, tmp_path):
    from pyspark.sql import functions as F

    topic = topic_factory(2)
    half = pktstream.read_pcap(SAMPLE)
    first, second = tmp_path / "first.pcap", tmp_path / "second.pcap"
    # The capture in two files, the second produced while the query runs.
    _split_pcap(SAMPLE, first, second, 120)
    pktstream.produce_pcap(first, topic, bootstrap_servers=bootstrap, format="csv", columns=TUTORIAL,
                           progress=False)

    lines = _kafka(spark, bootstrap, topic, stream=True).selectExpr("CAST(value AS STRING)")
    parts = F.split(lines.value, ",")
    packets = lines.select(*[parts.getItem(i).alias(name) for i, name in
                             enumerate(["count", "src_ip", "dst_ip", "proto", "sport", "dport"])])
    latest: dict[str, int] = {}

    def update(df: Any, batch_id: int) -> None:
        for row in df.collect():
            latest[row["proto"]] = row["count"]

    q = (packets.groupBy("proto").count().writeStream.outputMode("update")
         .trigger(processingTime="5 seconds").foreachBatch(update)
         .option("checkpointLocation", str(tmp_path / "ckpt")).start())
    try:
        _wait(lambda: sum(latest.values()) >= 120, q, what="the first file's packets")
        pktstream.produce_pcap(second, topic, bootstrap_servers=bootstrap, format="csv", columns=TUTORIAL,
                               progress=False)
        _wait(lambda: sum(latest.values()) >= half.num_rows, q, what="the whole capture")
        time.sleep(1)
    finally:
        q.stop()

    frames = oracle.packet_records(oracle.run_tshark(SAMPLE).frames)
    tshark = collections.Counter(oracle.expect(f, i + 1).values.get("ip_proto") for i, f in enumerate(frames))
    got = {(None if p in ("", None) else int(p)): n for p, n in latest.items()}
    assert got == dict(tshark)
    assert sum(got.values()) == 200


def _split_pcap(src: Path, first: Path, second: Path, n: int) -> None:
    """Classic pcap ``src`` cut after ``n`` records into two files with the same header."""
    import struct

    data = src.read_bytes()
    header, pos, count = data[:24], 24, 0
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    while count < n:
        incl = struct.unpack(order + "I", data[pos + 8:pos + 12])[0]
        pos += 16 + incl
        count += 1
    first.write_bytes(data[:pos])
    second.write_bytes(header + data[pos:])


# --- tutorial: transactions to PostgreSQL (JDBC sink and ADBC), killed and restarted ------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    sys.path.insert(0, str(HERE.parent / "notebooks"))
    import _support

    if _support.postgres_bin() is None:
        pytest.fail("the PostgreSQL job needs the server: bash scripts/install_postgres.sh", pytrace=False)
    uri, stop = _support.start_postgres()
    try:
        yield uri
    finally:
        stop()


def _transactions(n: int, seed: int = 11) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-05-06T09:00:00", "us")
    return pa.table({
        "txn_id": pa.array(np.arange(n), pa.int64()),
        "branch": pa.array(rng.choice(["north", "south", "east", "west"], n)),
        "currency": pa.array(rng.choice(["EUR", "USD", "GBP"], n)),
        "amount": pa.array(np.round(rng.uniform(1, 500, n), 2)),
        "ts": pa.array(start + np.arange(n) * 1000, pa.timestamp("us", "UTC")),
    })


def _expected_totals(table: pa.Table) -> dict[tuple[str, str], tuple[int, float]]:
    out: dict[tuple[str, str], list] = {}
    for r in table.to_pylist():
        acc = out.setdefault((r["branch"], r["currency"]), [0, 0.0])
        acc[0] += 1
        acc[1] += r["amount"]
    return {k: (n, total) for k, (n, total) in out.items()}


def _sql(uri: str, query: str) -> list[tuple]:
    import adbc_driver_postgresql.dbapi as dbapi

    with dbapi.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall() if cur.description else []
        conn.commit()
    return rows


def _latest(uri: str, table: str) -> dict[tuple[str, str], tuple[int, float]]:
    return {(b, c): (n, t) for b, c, n, t in _sql(uri, txjob.LATEST.format(table=table))}


def _same_totals(got: dict, expected: dict) -> bool:
    return got.keys() == expected.keys() and all(
        got[k][0] == expected[k][0] and math.isclose(got[k][1], expected[k][1], abs_tol=1e-6) for k in expected)


def test_transactions_to_postgres_jdbc_and_adbc_and_killed_process(spark, bootstrap, topic_factory, postgres,
                                                                   tmp_path):
    topic = topic_factory(2)
    data = _transactions(2400)
    expected = _expected_totals(data)
    first, second = data.slice(0, 1200), data.slice(1200)
    pktstream.produce(first, topic, bootstrap_servers=bootstrap, format="json", key="branch", progress=False)
    for table in ("totals_jdbc", "totals_adbc"):
        _sql(postgres, txjob.TABLE_DDL.format(table=table))

    # 1. Spark's JDBC sink, in this session; the second half arrives while it runs.
    q = txjob.start(spark, bootstrap, topic, str(tmp_path / "ckpt-jdbc"), postgres, "totals_jdbc", "jdbc")
    try:
        _wait(lambda: sum(n for n, _ in _latest(postgres, "totals_jdbc").values()) >= 1200, q, what="first half")
        pktstream.produce(second, topic, bootstrap_servers=bootstrap, format="json", key="branch", progress=False)
        _wait(lambda: _same_totals(_latest(postgres, "totals_jdbc"), expected), q, timeout=90, what="JDBC totals")
    finally:
        q.stop()

    # 2. ADBC in foreachBatch, in a process SIGKILLed mid-stream and restarted on its checkpoint.
    ckpt = str(tmp_path / "ckpt-adbc")
    args = [sys.executable, str(HERE / "spark_transactions_job.py"), bootstrap, topic, ckpt, postgres,
            "totals_adbc", "adbc"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "python"), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "job.log"

    def batches() -> int:
        return _sql(postgres, "SELECT count(DISTINCT batch_id) FROM totals_adbc")[0][0]

    with open(log, "ab") as out:
        job = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            # maxOffsetsPerTrigger=300: 2400 transactions take 8 batches; kill after the third.
            _wait(lambda: batches() >= 3 or job.poll() is not None, timeout=150, what="3 batches before the kill")
            assert job.poll() is None, log.read_text()[-3000:]
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
            killed_at = batches()
            assert killed_at < 8, "the query finished before the kill: nothing to recover"
            job = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            _wait(lambda: _same_totals(_latest(postgres, "totals_adbc"), expected) or job.poll() is not None,
                  timeout=150, what="ADBC totals after the restart")
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGTERM)
                job.wait(30)
    adbc = _latest(postgres, "totals_adbc")
    assert _same_totals(adbc, expected), log.read_text()[-3000:]
    assert _same_totals(_latest(postgres, "totals_jdbc"), expected)
    assert {k: v[0] for k, v in adbc.items()} == {k: v[0] for k, v in _latest(postgres, "totals_jdbc").items()}
    # One row per batch and group: a batch replayed after the kill replaced its rows.
    assert _sql(postgres, "SELECT batch_id, branch, currency FROM totals_adbc "
                          "GROUP BY 1, 2, 3 HAVING count(*) > 1") == []
    assert sum(n for n, _ in adbc.values()) == data.num_rows


# --- tutorial: netflow distances in foreachBatch --------------------------------------------------


def test_netflow_distances_in_foreach_batch_match_scipy(spark, bootstrap, topic_factory, tmp_path):
    from pktstream import distance
    from pktstream.pipelines import DEFAULT_FEATURES
    from pktstream.testing import netflow
    from scipy.spatial.distance import pdist

    topic = topic_factory(2)
    events = netflow.events(900, seed=5, rate=200.0, sources=6)
    pktstream.produce(events, topic, bootstrap_servers=bootstrap, format="json", key="src_ip4", progress=False)
    features = list(DEFAULT_FEATURES)
    seen: list[tuple[pa.Table, pa.Table]] = []

    def distances(table: pa.Table, batch_id: int) -> None:
        seen.append((table, distance.pairs(table, key="src_ip4", id="eventid", features=features)))

    stream = decode(_kafka(spark, bootstrap, topic, stream=True, maxOffsetsPerTrigger=300), format="json",
                    schema=netflow.SCHEMA)
    q = (stream.writeStream.foreachBatch(foreach_arrow(distances)).trigger(availableNow=True)
         .option("checkpointLocation", str(tmp_path / "ckpt")).start())
    q.awaitTermination(120)
    assert q.exception() is None
    assert len(seen) >= 3
    assert sorted(e for t, _ in seen for e in t.column("eventid").to_pylist()) == sorted(
        events.column("eventid").to_pylist())
    checked = 0
    for table, pairs in seen:
        got = {(r["key"], r["id_1"], r["id_2"]): r["distance"] for r in pairs.to_pylist()}
        expected = {}
        for key in set(table.column("src_ip4").to_pylist()):
            group = table.filter(pa.compute.equal(table.column("src_ip4"), key))
            ids = group.column("eventid").to_pylist()
            x = np.column_stack([group.column(f).to_numpy().astype(float) for f in features])
            d = pdist(x)
            k = 0
            for i in range(len(ids)):
                for j in range(i + 1, len(ids)):
                    a, b = sorted((ids[i], ids[j]))
                    expected[(key, a, b)] = d[k]
                    k += 1
        assert got.keys() == expected.keys()
        assert np.allclose([got[k] for k in expected], [expected[k] for k in expected], rtol=1e-9, atol=1e-9)
        checked += len(expected)
    assert checked > 10_000


# --- scale out: two executors ---------------------------------------------------------------------


def test_two_executors_read_every_row_once(bootstrap, topic_factory):
    """``local-cluster[2,1,1024]`` (a master, two workers, one executor each) in its own process
    reads a 4-partition topic through the pktstream source and through decode() over Spark's Kafka
    source. Both executors ran tasks; every message is one row, none lost or duplicated."""
    topic = topic_factory(4)
    for _ in range(3):
        pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, format="json", progress=False)
    consumer = pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary")
    try:
        ends = {p: end for _, p, end in consumer.ends or []}
    finally:
        consumer.close()
    assert len(ends) == 4 and all(ends.values()) and sum(ends.values()) == 600
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "python"), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    run = subprocess.run([sys.executable, str(HERE / "spark_cluster_job.py"), bootstrap, topic], env=env,
                         capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\nlocal-cluster[2,1,1024]: session up in {out['startup_s']} s, both reads done in "
          f"{out['total_s']} s, process {took:.1f} s", file=sys.stderr)
    frames = sorted(list(range(1, 201)) * 3)
    for path in ("pktstream", "decode"):
        rows = out[path]["rows"]
        assert out[path]["executors"] == ["0", "1"], path
        assert sorted((p, o) for p, o, _ in rows) == sorted((p, o) for p, end in ends.items() for o in range(end))
        assert sorted(f for _, _, f in rows) == frames


# --- the pieces, without Spark ---------------------------------------------------------------------


def test_connector_jars_finds_the_cache_falls_back_within_the_minor_and_says_how_to_install(tmp_path,
                                                                                           monkeypatch):
    from pktstream.spark import connector_jars

    monkeypatch.setenv("PKTSTREAM_CACHE", str(tmp_path))
    monkeypatch.delenv("PKTSTREAM_SPARK_JARS", raising=False)
    with pytest.raises(FileNotFoundError, match="install_spark_kafka.sh"):
        connector_jars("4.2.0")
    jars = tmp_path / "spark-kafka-4.2.0" / "jars"
    jars.mkdir(parents=True)
    (jars / "spark-sql-kafka-0-10_2.13-4.2.0.jar").write_bytes(b"")
    with pytest.raises(FileNotFoundError):  # no .complete marker: a half-finished install
        connector_jars("4.2.0")
    (jars.parent / ".complete").touch()
    assert connector_jars("4.2.0") == [str(jars / "spark-sql-kafka-0-10_2.13-4.2.0.jar")]
    with pytest.warns(UserWarning, match="4.2.0 with Spark 4.2.1"):
        assert connector_jars("4.2.1") == [str(jars / "spark-sql-kafka-0-10_2.13-4.2.0.jar")]
    with pytest.raises(FileNotFoundError):  # another minor version never stands in
        connector_jars("4.1.1")
    monkeypatch.setenv("PKTSTREAM_SPARK_JARS", "/x/a.jar, /x/b.jar")
    assert connector_jars("4.1.1") == ["/x/a.jar", "/x/b.jar"]


def test_decode_csv_keeps_one_row_per_line_and_reports_bad_lines():
    from pktstream.spark._decode import decode_csv

    schema = pktstream.schema(["frame_number", "ts", "src_ip", "ip_proto"])
    lines = pa.array([b"1,2024-05-06T09:00:00.000000001+00:00,10.0.0.1,6", b"2,not a time,10.0.0.2,17",
                      b'3,,"a,b",', None])
    got = decode_csv(lines, schema)
    assert got.column("frame_number").to_pylist() == [1, None, 3, None]
    assert got.column("src_ip").to_pylist() == ["10.0.0.1", None, "a,b", None]
    assert got.column("ip_proto").to_pylist() == [6, None, None, None]
    assert got.column("ts").cast(pa.int64()).to_pylist()[0] == 1714986000000000001
    errors = got.column("_error").to_pylist()
    assert errors[0] is None and errors[2] is None and "csv" in errors[1]
    assert got.column("_message").to_pylist() == [0, 1, 2, 3]


@pytest.mark.parametrize("columns", [None, ["src_ip", "ip_proto", "link_type"], ["dst_port"]])
def test_apply_headers_decodes_other_link_types_like_read_pcap(columns):
    """Frames of a loopback capture (link type 0) with the headers pktstream's producer writes,
    as Spark's ``headers`` column holds them: decoded again with their link type."""
    from pktstream.archive import read_records
    from pktstream.spark._frames import apply_headers

    records = list(read_records(LOOPBACK))
    frames = pa.array([r[1] for r in records], pa.binary())
    header = pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))
    headers = pa.array([[{"key": "link_type", "value": str(r[3]).encode()},
                         {"key": "wirelen", "value": str(r[2]).encode()}] for r in records], header)
    keys = pa.array([(r[0] // 1000).to_bytes(8, "big") for r in records], pa.binary())
    blind = pktstream.decode_values(frames, format="raw", columns=columns, keys=keys)
    got = apply_headers(blind, frames, headers, columns)
    expected = pktstream.read_pcap(LOOPBACK, columns=columns)
    compared = [c for c in expected.column_names if c != "frame_number"]
    assert compared and _rows(pa.Table.from_batches([got]), compared) == _rows(expected, compared)
    assert _rows(pa.Table.from_batches([blind]), compared) != _rows(expected, compared)
