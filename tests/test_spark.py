"""PySpark integration against the real broker and a real local Spark (one session per run).

Covers the ``pktstream`` streaming source (exact rows and offsets, availableNow, read limits,
kill-and-restart with a checkpoint), batch reads, :func:`pktstream.spark.decode` over a DataFrame
shaped like Spark's Kafka source, the ``pcap`` source against :func:`pktstream.read_pcap` (and
with ``flows=true`` against :func:`pktstream.flows`), and
:func:`pktstream.spark.foreach_arrow`.
"""

from __future__ import annotations

import glob
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pktstream
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pktstream.spark import arrow_schema, conform, decode, foreach_arrow, spark_schema

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = DATA / "sample.pcap"


def _stream(spark: Any, bootstrap: str, topic: str, **options: Any) -> Any:
    reader = (
        spark.readStream.format("pktstream")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
    )
    for k, v in options.items():
        reader = reader.option(k, str(v))
    return reader.load()


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary")
    try:
        return {p: end for _, p, end in consumer.ends or []}
    finally:
        consumer.close()


def _offsets(table: pa.Table) -> list[tuple[int, int]]:
    return sorted(zip(table.column("partition").to_pylist(), table.column("offset").to_pylist()))


def _all_offsets(ends: dict[int, int]) -> list[tuple[int, int]]:
    return sorted((p, o) for p, end in ends.items() for o in range(end))


def _collect(batches: list[tuple[int, pa.Table]]) -> pa.Table:
    return pa.concat_tables([t for _, t in batches]) if batches else pa.table({})


def _counter_table(start: int, n: int) -> pa.Table:
    return pa.table({"i": pa.array(range(start, start + n), pa.int64()), "tag": [f"m{k}" for k in range(start, start + n)]})


# --- the streaming source --------------------------------------------------------------------------


def test_stream_available_now_reads_exactly_what_was_produced(spark, bootstrap, topic_factory, tmp_path):
    topic = topic_factory(3)
    report = pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, progress=False)
    ends = _ends(bootstrap, topic)
    assert sum(ends.values()) == report.delivered == report.rows

    batches: list[tuple[int, pa.Table]] = []
    q = (
        _stream(spark, bootstrap, topic)
        .writeStream.foreachBatch(foreach_arrow(lambda t, i: batches.append((i, t))))
        .trigger(availableNow=True)
        .option("checkpointLocation", str(tmp_path / "ckpt"))
        .start()
    )
    q.awaitTermination(120)
    assert not q.isActive and q.exception() is None

    got = _collect(batches)
    assert all(isinstance(t, pa.Table) for _, t in batches)
    assert got.num_rows == report.rows
    assert _offsets(got) == _all_offsets(ends)  # every offset once, nothing else
    assert set(got.column("topic").to_pylist()) == {topic}
    assert got.column("_error").null_count == got.num_rows

    # Decoded values equal pktstream's own consumer, message by message.
    expected = pktstream.consume(topic, bootstrap_servers=bootstrap)
    target = arrow_schema(spark_schema(pktstream.schema()))
    exp = conform(expected.combine_chunks().to_batches()[0], target)
    exp_by = {
        (p, o): row
        for p, o, row in zip(
            expected.column("_partition").to_pylist(), expected.column("_offset").to_pylist(), exp.to_pylist()
        )
    }
    got_values = conform(got.combine_chunks().to_batches()[0], target).to_pylist()
    for (p, o), row in zip(zip(got.column("partition").to_pylist(), got.column("offset").to_pylist()), got_values):
        assert row == exp_by[(p, o)]
    # Schema as declared: unsigned widened, microsecond UTC timestamps.
    fields = {f.name: f.dataType.simpleString() for f in _stream(spark, bootstrap, topic).schema.fields}
    assert fields["ip_proto"] == "smallint" and fields["dst_port"] == "int" and fields["ts"] == "timestamp"
    assert fields["offset"] == "bigint" and fields["partition"] == "int" and fields["key"] == "binary"


def test_stream_restart_resumes_without_loss_or_duplicates(spark, bootstrap, topic_factory, tmp_path):
    topic = topic_factory(3)
    pktstream.produce(_counter_table(0, 3000), topic, bootstrap_servers=bootstrap, key="tag", progress=False)
    sink = tmp_path / "sink"
    sink.mkdir()
    ckpt = str(tmp_path / "ckpt")

    def save(table: pa.Table, batch_id: int) -> None:
        # Idempotent per batch id: a re-run batch overwrites its own file.
        pq.write_table(table, sink / f"batch-{batch_id:05d}.parquet")
        time.sleep(0.3)

    def query(trigger: dict) -> Any:
        df = _stream(spark, bootstrap, topic, schema="i BIGINT, tag STRING", maxOffsetsPerTrigger=400)
        return (
            df.writeStream.foreachBatch(foreach_arrow(save))
            .trigger(**trigger)
            .option("checkpointLocation", ckpt)
            .start()
        )

    q = query({"processingTime": "0 seconds"})
    deadline = time.monotonic() + 90
    while len(list(sink.glob("*.parquet"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    q.stop()  # killed mid-way, possibly inside a batch
    first_run = len(list(sink.glob("*.parquet")))
    assert 3 <= first_run < 3000 // 400

    # More data arrives while the query is down; the restarted query reads the rest and the new.
    pktstream.produce(_counter_table(3000, 1000), topic, bootstrap_servers=bootstrap, key="tag", progress=False)
    q = query({"availableNow": True})
    q.awaitTermination(120)
    assert q.exception() is None

    tables = {int(f.stem.split("-")[1]): pq.read_table(f) for f in sink.glob("*.parquet")}
    got = pa.concat_tables(tables.values())
    assert max(t.num_rows for t in tables.values()) <= 400  # maxOffsetsPerTrigger honoured
    assert sorted(tables) == list(range(len(tables)))  # batch ids without gaps
    assert _offsets(got) == _all_offsets(_ends(bootstrap, topic))  # no loss, no duplicate
    assert sorted(got.column("i").to_pylist()) == list(range(4000))


def test_stream_latest_and_json_starting_offsets(spark, bootstrap, topic_factory, tmp_path):
    topic = topic_factory(2)
    pktstream.produce(_counter_table(0, 200), topic, bootstrap_servers=bootstrap, key="tag", progress=False)
    ends = _ends(bootstrap, topic)
    starting = '{"%s": {"0": %d, "1": -1}}' % (topic, ends[0] - 5)
    batches: list[tuple[int, pa.Table]] = []
    q = (
        _stream(spark, bootstrap, topic, schema="i BIGINT, tag STRING", startingOffsets=starting)
        .writeStream.foreachBatch(foreach_arrow(lambda t, i: batches.append((i, t))))
        .trigger(availableNow=True)
        .option("checkpointLocation", str(tmp_path / "ckpt"))
        .start()
    )
    q.awaitTermination(120)
    got = _collect(batches)
    assert _offsets(got) == [(0, o) for o in range(ends[0] - 5, ends[0])]


def test_batch_read_and_arrow_format(spark, bootstrap, topic_factory):
    topic = topic_factory(2)
    table = _counter_table(0, 1000)
    pktstream.produce(table, topic, bootstrap_servers=bootstrap, format="arrow", rows_per_message=100, progress=False)
    df = (
        spark.read.format("pktstream")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("format", "arrow")
        .load()
    )
    assert df.columns[:2] == ["i", "tag"]
    got = df.toArrow()
    assert sorted(got.column("i").to_pylist()) == list(range(1000))
    assert sum(_ends(bootstrap, topic).values()) == 10  # ten messages of 100 rows
    assert len(set(_offsets(got))) == 10


def test_arrow_columns_option_reads_only_those_columns(spark, bootstrap, topic_factory):
    topic = topic_factory(2)
    pktstream.produce(_counter_table(0, 1000), topic, bootstrap_servers=bootstrap, format="arrow",
                      rows_per_message=100, progress=False)
    df = (
        spark.read.format("pktstream")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("format", "arrow")
        .option("columns", "tag")
        .load()
    )
    assert df.columns == ["tag", "key", "topic", "partition", "offset", "timestamp", "_error"]
    got = df.toArrow()
    assert sorted(got.column("tag").to_pylist()) == sorted(_counter_table(0, 1000).column("tag").to_pylist())
    assert got.column("_error").null_count == 1000
    with pytest.raises(Exception, match="not in the arrow messages"):
        (spark.read.format("pktstream").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
         .option("format", "arrow").option("columns", "nope").load())


# --- decode() over Spark-Kafka-shaped DataFrames ---------------------------------------------------


def _kafka_shaped(spark: Any, bootstrap: str, topic: str) -> Any:
    """A DataFrame with the columns and types of Spark's Kafka source, from pktstream's binary format."""
    raw = pktstream.consume(topic, bootstrap_servers=bootstrap, format="binary")
    table = pa.table(
        {
            "key": raw.column("_key"),
            "value": raw.column("value"),
            "topic": raw.column("_topic").cast(pa.string()),
            "partition": raw.column("_partition"),
            "offset": raw.column("_offset"),
            "timestamp": raw.column("_timestamp").cast(pa.timestamp("us", "UTC")),
            "timestampType": pa.array([0] * raw.num_rows, pa.int32()),
        }
    )
    schema = "key BINARY, value BINARY, topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP, timestampType INT"
    return spark.createDataFrame(table.to_pandas(), schema=schema)


def test_decode_json_like_spark_kafka_source(spark, bootstrap, topic_factory):
    topic = topic_factory(2)
    pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, progress=False)
    df = _kafka_shaped(spark, bootstrap, topic)
    decoded = decode(df, format="json")
    assert decoded.columns[-7:] == ["key", "topic", "partition", "offset", "timestamp", "timestampType", "_error"]
    got = decoded.toArrow()
    expected = pktstream.consume(topic, bootstrap_servers=bootstrap)
    assert got.num_rows == expected.num_rows == df.count()
    target = arrow_schema(spark_schema(pktstream.schema()))
    key = ["partition", "offset"]
    got_sorted = got.sort_by([(k, "ascending") for k in key])
    exp_sorted = expected.sort_by([("_partition", "ascending"), ("_offset", "ascending")])
    assert conform(got_sorted.combine_chunks().to_batches()[0], target).equals(
        conform(exp_sorted.combine_chunks().to_batches()[0], target)
    )


def test_decode_raw_and_arrow(spark, bootstrap, topic_factory):
    raw_topic = topic_factory(1)
    pktstream.produce_pcap(SAMPLE, raw_topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    packets = decode(_kafka_shaped(spark, bootstrap, raw_topic), format="raw", columns=["ts", "src_ip", "ip_proto"])
    got = packets.orderBy("offset").toArrow()
    expected = pktstream.read_pcap(SAMPLE, columns=["ts", "src_ip", "ip_proto"])
    assert got.column("src_ip").to_pylist() == expected.column("src_ip").to_pylist()
    assert got.column("ip_proto").to_pylist() == expected.column("ip_proto").cast(pa.int16()).to_pylist()
    assert got.column("ts").cast(pa.int64()).to_pylist() == pc.divide(
        expected.column("ts").cast(pa.int64()), 1000
    ).to_pylist()

    arrow_topic = topic_factory(1)
    pktstream.produce(_counter_table(0, 500), arrow_topic, bootstrap_servers=bootstrap, format="arrow",
                      rows_per_message=50, progress=False)
    decoded = decode(_kafka_shaped(spark, bootstrap, arrow_topic), format="arrow", schema="i BIGINT, tag STRING")
    got = decoded.toArrow()
    assert sorted(got.column("i").to_pylist()) == list(range(500))
    assert sorted(set(got.column("offset").to_pylist())) == list(range(10))
    # `columns` keeps only those columns of the schema (read by name from each message).
    tags = decode(_kafka_shaped(spark, bootstrap, arrow_topic), format="arrow", schema="i BIGINT, tag STRING",
                  columns=["tag"]).toArrow()
    assert tags.column_names[0] == "tag" and "i" not in tags.column_names
    assert sorted(tags.column("tag").to_pylist()) == sorted(_counter_table(0, 500).column("tag").to_pylist())


def test_decode_errors_are_rows_not_losses(spark):
    df = spark.createDataFrame([(b'{"i": 1}',), (b"not json",)], "value BINARY")
    got = decode(df, format="json", schema="i BIGINT").toArrow()
    assert got.column("i").to_pylist() == [1, None]
    assert got.column("_error").is_null().to_pylist() == [True, False]


# --- the pcap source -------------------------------------------------------------------------------


def test_pcap_batch_equals_read_pcap(spark):
    files = sorted(glob.glob(str(DATA / "*.pcap")))
    assert len(files) >= 3
    df = spark.read.format("pcap").option("includePath", "true").load(str(DATA / "*.pcap"))
    assert df.rdd.getNumPartitions() == len(files)  # one Spark partition per file
    got = df.toArrow()
    target = arrow_schema(spark_schema(pktstream.schema()))
    for f in files:
        mine = got.filter(pc.equal(got.column("path"), f)).drop_columns(["path"]).sort_by("frame_number")
        expected = pktstream.read_pcap(f)
        assert mine.num_rows == expected.num_rows > 0, f
        left = conform(mine.combine_chunks().to_batches()[0], target)
        right = conform(expected.combine_chunks().to_batches()[0], target)
        assert left.equals(right), f


def test_pcap_columns_option(spark):
    df = spark.read.format("pcap").option("columns", "ts,src_ip,dst_port").load(str(SAMPLE))
    assert df.columns == ["ts", "src_ip", "dst_port"]
    assert df.count() == pktstream.read_pcap(SAMPLE).num_rows


def test_pcap_stream_over_directory(spark, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    files = sorted(glob.glob(str(DATA / "*.pcap")))
    shutil.copy(files[0], incoming / "a.pcap")
    old = time.time() - 10
    os.utime(incoming / "a.pcap", (old, old))
    batches: list[tuple[int, pa.Table]] = []

    def run() -> None:
        q = (
            spark.readStream.format("pcap").load(str(incoming))
            .writeStream.foreachBatch(foreach_arrow(lambda t, i: batches.append((i, t))))
            .trigger(availableNow=True)
            .option("checkpointLocation", str(tmp_path / "ckpt"))
            .start()
        )
        q.awaitTermination(120)
        assert q.exception() is None

    run()
    assert _collect(batches).num_rows == pktstream.read_pcap(files[0]).num_rows
    shutil.copy(files[1], incoming / "b.pcap")
    os.utime(incoming / "b.pcap", (old, old))
    batches.clear()
    run()  # only the new file
    assert _collect(batches).num_rows == pktstream.read_pcap(files[1]).num_rows


# --- the pcap source with flows=true ----------------------------------------------------------------

LOOPBACK = DATA / "gopacket_test_loopback.pcap"  # 2 flows, 5 with idle_timeout=0.001
NTP = DATA / "pcap_parser_ntp.pcap"


def _pcap_flows(spark: Any, path: Any, **options: str) -> Any:
    reader = spark.read.format("pcap").option("flows", "true")
    for k, v in options.items():
        reader = reader.option(k, v)
    return reader.load(str(path))


def _as_spark_gives(table: pa.Table, target: pa.Schema) -> pa.Table:
    """``table`` sorted by ``flow_id`` and cast as the source casts what it hands to Spark."""
    table = table.sort_by("flow_id").combine_chunks()
    return pa.Table.from_batches([conform(b, target) for b in table.to_batches()], schema=target)


def test_pcap_flows_batch_equals_flows(spark):
    df = _pcap_flows(spark, SAMPLE)
    assert df.rdd.getNumPartitions() == 1
    assert df.schema == spark_schema(pktstream.flow_schema())
    got = df.toArrow().sort_by("flow_id")
    expected = pktstream.flows(SAMPLE).to_pandas().sort_values("flow_id").reset_index(drop=True)
    assert got.num_rows == len(expected) == 196
    cols = [
        "flow_id",
        "packets",
        "bytes",
        "src_ip",
        "dst_ip",
        "src_port",
        "dst_port",
        "ip_proto",
        "src2dst_packets",
        "src2dst_bytes",
        "dst2src_packets",
        "dst2src_bytes",
        "expiration",
    ]
    import pandas as pd

    pd.testing.assert_frame_equal(got.select(cols).to_pandas(), expected[cols], check_dtype=False)
    # Every column, as conform() casts it (timestamps truncated to us, duration as int64 ns).
    target = arrow_schema(df.schema)
    assert got.equals(_as_spark_gives(pktstream.flows(SAMPLE), target))
    assert got.column("duration").to_pylist() == expected["duration"].astype("int64").tolist()


def test_pcap_flows_directory_meters_each_file(spark, tmp_path):
    # The same capture twice: a meter spanning files would merge their flows (same endpoints, same times).
    shutil.copy(SAMPLE, tmp_path / "a.pcap")
    shutil.copy(SAMPLE, tmp_path / "b.pcap")
    shutil.copy(NTP, tmp_path / "c.pcap")
    df = _pcap_flows(spark, tmp_path, includePath="true")
    assert df.rdd.getNumPartitions() == 3
    got = df.toArrow()
    counts = [pktstream.flows(f).num_rows for f in (SAMPLE, SAMPLE, NTP)]
    assert got.num_rows == sum(counts) == 2 * 196 + 6
    target = arrow_schema(spark_schema(pktstream.flow_schema()))
    for name, src in (("a.pcap", SAMPLE), ("b.pcap", SAMPLE), ("c.pcap", NTP)):
        mine = got.filter(pc.equal(got.column("path"), str(tmp_path / name))).drop_columns(["path"])
        assert _as_spark_gives(mine, target).equals(_as_spark_gives(pktstream.flows(src), target)), name


@pytest.mark.parametrize(
    "path, options, kwargs",
    [
        (LOOPBACK, {"idleTimeout": "0.001"}, {"idle_timeout": 0.001}),
        (SAMPLE, {"statistics": "true"}, {"statistics": True}),
        (
            SAMPLE,
            {"serverName": "true", "columns": "flow_id,requested_server_name,packets"},
            {"server_name": True, "columns": ["flow_id", "requested_server_name", "packets"]},
        ),
        (
            SAMPLE,
            {"accounting": "payload", "tcpClose": "true", "activeTimeout": "0.5", "maxFlows": "3"},
            {"accounting": "payload", "tcp_close": True, "active_timeout": 0.5, "max_flows": 3},
        ),
    ],
    ids=["idleTimeout", "statistics", "serverName+columns", "accounting+tcpClose+activeTimeout+maxFlows"],
)
def test_pcap_flows_options_pass_through(spark, path, options, kwargs):
    df = _pcap_flows(spark, path, **options)
    expected = pktstream.flows(path, **kwargs)
    assert df.columns == expected.column_names
    got = df.toArrow()
    assert got.num_rows == expected.num_rows
    assert got.sort_by("flow_id").equals(_as_spark_gives(expected, arrow_schema(df.schema)))
    if "idle_timeout" in kwargs:
        assert got.num_rows == 5 != pktstream.flows(path).num_rows == 2
    if kwargs.get("statistics"):
        extra = set(df.columns) - set(pktstream.flow_schema().names)
        assert {"bidirectional_mean_ps", "src2dst_max_piat_ms", "dst2src_stddev_ps"} <= extra
    if "max_flows" in kwargs:
        assert "evicted" in got.column("expiration").to_pylist()


@pytest.mark.parametrize(
    "options, named",
    [
        ({"flows": "true", "addresses": "binary"}, "option addresses"),
        ({"idleTimeout": "30"}, "option idleTimeout"),
        ({"flows": "false", "statistics": "true"}, "option statistics"),
        ({"maxFlows": "10"}, "option maxFlows"),
        ({"flows": "true", "accounting": "l2"}, "option accounting"),
        ({"flows": "true", "maxFlows": "0"}, "option maxFlows"),
        ({"flows": "true", "activeTimeout": "-1"}, "option activeTimeout"),
        ({"flows": "true", "tcpClose": "yes"}, "option tcpClose"),
        ({"flows": "maybe"}, "option flows"),
        ({"flows": "true", "columns": "flow_id,bidirectional_mean_ps"}, "option columns"),
    ],
)
def test_pcap_flows_bad_options_are_named(spark, options, named):
    reader = spark.read.format("pcap")
    for k, v in options.items():
        reader = reader.option(k, v)
    with pytest.raises(Exception, match=named):
        reader.load(str(SAMPLE)).collect()
    with pytest.raises(Exception, match=named):  # the streaming form checks the same way
        stream = spark.readStream.format("pcap")
        for k, v in options.items():
            stream = stream.option(k, v)
        stream.load(str(SAMPLE))


def test_pcap_flows_stream_over_directory(spark, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    old = time.time() - 10
    batches: list[tuple[int, pa.Table]] = []
    target = arrow_schema(spark_schema(pktstream.flow_schema()))

    def arrive(src: Path, name: str) -> None:
        shutil.copy(src, incoming / name)
        os.utime(incoming / name, (old, old))

    def run() -> pa.Table:
        batches.clear()
        q = (
            spark.readStream.format("pcap")
            .option("flows", "true")
            .option("idleTimeout", "0.001")
            .load(str(incoming))
            .writeStream.foreachBatch(foreach_arrow(lambda t, i: batches.append((i, t))))
            .trigger(availableNow=True)
            .option("checkpointLocation", str(tmp_path / "ckpt"))
            .start()
        )
        q.awaitTermination(120)
        assert q.exception() is None
        return _collect(batches)

    arrive(LOOPBACK, "a.pcap")
    got = run()
    expected = pktstream.flows(LOOPBACK, idle_timeout=0.001)
    assert got.num_rows == expected.num_rows == 5
    assert _as_spark_gives(got, target).equals(_as_spark_gives(expected, target))
    arrive(NTP, "b.pcap")
    got = run()  # only the new file, metered on its own
    expected = pktstream.flows(NTP, idle_timeout=0.001)
    assert got.num_rows == expected.num_rows > 0
    assert _as_spark_gives(got, target).equals(_as_spark_gives(expected, target))


@pytest.mark.parametrize("bad", ["subscribe", "kafka.bootstrap.servers"])
def test_missing_options_fail_clearly(spark, bad):
    reader = spark.readStream.format("pktstream")
    for k in ("subscribe", "kafka.bootstrap.servers"):
        if k != bad:
            reader = reader.option(k, "x")
    with pytest.raises(Exception, match=bad):
        reader.load()


@pytest.mark.parametrize(
    "name", ["pktstream.spark._schema", "pktstream.spark._decode", "pktstream.spark._pcap", "pktstream.spark._frames"]
)
def test_docstring_examples(name, monkeypatch, spark):
    """The Spark modules' examples on the suite's local session (tests/test_docs.py runs them too;
    this file is also what the installed wheel's check runs)."""
    import doctest
    import importlib

    monkeypatch.chdir(DATA.parents[1])
    module = importlib.import_module(name)
    globs = {**vars(module), "spark": spark}
    result = doctest.testmod(module, globs=globs, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_reader_schema_call_is_refused_with_a_pointer_to_the_option(spark, bootstrap, topic_factory):
    import pyarrow as pa

    topic = topic_factory()
    pktstream.produce(pa.table({"a": [1, 2]}), topic, bootstrap_servers=bootstrap, progress=False)
    df = (
        spark.read.format("pktstream")
        .schema("a BIGINT")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .load()
    )
    with pytest.raises(Exception, match=r"option\('schema'"):
        df.collect()
    ok = (
        spark.read.format("pktstream")
        .option("schema", "a BIGINT")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .load()
    )
    assert sorted(r["a"] for r in ok.select("a").collect()) == [1, 2]
