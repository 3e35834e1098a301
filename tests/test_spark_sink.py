"""The ``pktstream`` Kafka sink (``df.write`` / ``df.writeStream.format("pktstream")``) against the
suite's Apache Kafka and a real local Spark: every row is read back with pktstream's own consumer
and compared row for row, with its message key, in each format (json, csv, arrow).
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pktstream
import pyarrow as pa
import pytest

ROWS = 500


def _frame(spark: Any, n: int = ROWS, start: int = 0) -> Any:
    return spark.range(start, start + n, numPartitions=3).selectExpr(
        "id AS i", "concat('k', CAST(id % 7 AS STRING)) AS key", "CAST(id AS DOUBLE) / 4 AS x",
        "CASE WHEN id % 5 = 0 THEN NULL ELSE concat('tag,', CAST(id AS STRING)) END AS tag",
    )


def _expected(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {"i": i, "key": f"k{i % 7}", "x": i / 4, "tag": None if i % 5 == 0 else f"tag,{i}"}
        for i in range(start, start + n)
    ]


SCHEMA = pa.schema({"i": pa.int64(), "key": pa.string(), "x": pa.float64(), "tag": pa.string()})


def _read_back(bootstrap: str, topic: str, fmt: str) -> tuple[list[dict[str, Any]], list[bytes]]:
    """(rows, message keys per row) of everything in ``topic``."""
    if fmt == "json":
        t = pktstream.consume(topic, bootstrap_servers=bootstrap, schema=SCHEMA)
        rows = t.select(SCHEMA.names).to_pylist()
    elif fmt == "arrow":
        t = pktstream.consume(topic, bootstrap_servers=bootstrap, format="arrow")
        rows = t.select(SCHEMA.names).to_pylist()
    else:
        t = pktstream.consume(topic, bootstrap_servers=bootstrap, format="binary")
        rows = []
        for value in t.column("value").to_pylist():
            [line] = list(csv.reader(io.StringIO(value.decode())))
            i, key, x, tag = line
            rows.append({"i": int(i), "key": key, "x": float(x), "tag": tag or None})
    keys = t.column("_key").to_pylist()
    return rows, keys


def _write(df: Any, bootstrap: str, topic: str, **options: str) -> None:
    w = df.write.format("pktstream").mode("append").option("kafka.bootstrap.servers", bootstrap).option("topic", topic)
    for k, v in options.items():
        w = w.option(k, v)
    w.save()


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow"])
def test_batch_write_every_row_once_with_its_key(spark, bootstrap, topic_factory, fmt):
    topic = topic_factory(3)
    _write(_frame(spark), bootstrap, topic, format=fmt, rowsPerMessage="64")
    rows, keys = _read_back(bootstrap, topic, fmt)
    assert sorted(rows, key=lambda r: r["i"]) == _expected(0, ROWS)
    if fmt == "arrow":
        # An arrow message holds many rows and has no key; its rows are those whose key hashes
        # to its partition (murmur2, as for json and csv).
        assert keys == [None] * len(rows)
    else:
        assert keys == [r["key"].encode() for r in rows]  # the `key` column is each message's key
    got = pktstream.consume(topic, bootstrap_servers=bootstrap, format="arrow" if fmt == "arrow" else "binary",
                            schema=None)
    row_keys = got.column("key").to_pylist() if fmt == "arrow" else [k.decode() for k in got.column("_key").to_pylist()]
    placed: dict[str, set[int]] = {}
    for k, p in zip(row_keys, got.column("_partition").to_pylist()):
        placed.setdefault(k, set()).add(p)
    assert len(placed) == 7 and all(len(ps) == 1 for ps in placed.values())  # one key, one partition
    assert len({p for ps in placed.values() for p in ps}) > 1


def test_key_option_names_the_key_column(spark, bootstrap, topic_factory):
    topic = topic_factory(2)
    _write(_frame(spark, 50).withColumnRenamed("key", "k"), bootstrap, topic, key="i")
    t = pktstream.consume(topic, bootstrap_servers=bootstrap, schema=pa.schema({"i": pa.int64()}))
    assert sorted(t.column("i").to_pylist()) == list(range(50))
    assert t.column("_key").to_pylist() == [str(i).encode() for i in t.column("i").to_pylist()]


def test_no_key_column_means_no_key(spark, bootstrap, topic_factory):
    topic = topic_factory(1)
    _write(_frame(spark, 20).drop("key"), bootstrap, topic, columns="i,x")
    t = pktstream.consume(topic, bootstrap_servers=bootstrap, format="binary")
    assert t.num_rows == 20 and t.column("_key").null_count == 20
    values = sorted(t.column("value").to_pylist(), key=len)
    assert all(set(v.decode()) <= set('{}"ix:.,0123456789') for v in values)  # only the chosen columns


def test_stream_write_each_micro_batch(spark, bootstrap, topic_factory, tmp_path):
    source = topic_factory(2)
    sink = topic_factory(2)
    pktstream.produce(pa.table({"i": pa.array(range(300), pa.int64())}), source, bootstrap_servers=bootstrap,
                      progress=False)
    stream = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", source).option("startingOffsets", "earliest").option("schema", "i BIGINT")
              .option("maxOffsetsPerTrigger", "100").load()
              .selectExpr("i", "CAST(i % 3 AS STRING) AS key", "i * 2 AS twice", "partition", "offset"))
    q = (stream.writeStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
         .option("topic", sink).option("format", "json")
         .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(availableNow=True).start())
    q.awaitTermination(180)
    assert not q.isActive and q.exception() is None
    assert len([p for p in q.recentProgress if p["numInputRows"]]) >= 3  # read limit: several micro-batches
    schema = pa.schema({"i": pa.int64(), "twice": pa.int64(), "partition": pa.int32(), "offset": pa.int64()})
    t = pktstream.consume(sink, bootstrap_servers=bootstrap, schema=schema)
    assert sorted(t.column("i").to_pylist()) == list(range(300))
    assert t.column("twice").to_pylist() == [2 * i for i in t.column("i").to_pylist()]
    assert t.column("_key").to_pylist() == [str(i % 3).encode() for i in t.column("i").to_pylist()]
    # Every source message exactly once (a re-run micro-batch would show up as duplicates).
    assert len(set(zip(t.column("partition").to_pylist(), t.column("offset").to_pylist()))) == 300


def test_stream_complete_mode_rewrites_the_aggregate(spark, bootstrap, topic_factory, tmp_path):
    source, sink = topic_factory(1), topic_factory(1)
    pktstream.produce(pa.table({"i": pa.array(range(90), pa.int64())}), source, bootstrap_servers=bootstrap,
                      progress=False)
    counts = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
              .option("subscribe", source).option("startingOffsets", "earliest").option("schema", "i BIGINT")
              .load().selectExpr("CAST(i % 3 AS STRING) AS key").groupBy("key").count())
    q = (counts.writeStream.outputMode("complete").format("pktstream")
         .option("kafka.bootstrap.servers", bootstrap).option("topic", sink)
         .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(availableNow=True).start())
    q.awaitTermination(180)
    assert q.exception() is None
    t = pktstream.consume(sink, bootstrap_servers=bootstrap, schema=pa.schema({"key": pa.string(), "count": pa.int64()}))
    assert sorted(zip(t.column("key").to_pylist(), t.column("count").to_pylist())) == [("0", 30), ("1", 30), ("2", 30)]


@pytest.mark.parametrize(
    "options, match",
    [
        ({"topic": "t", "format": "raw"}, "format must be one of json, csv, arrow"),
        ({"topic": "t", "key": "nope"}, "key column 'nope'"),
        ({}, "needs option topic"),
        ({"topic": "t", "bogus": "1"}, "unknown option 'bogus'"),
        ({"topic": "t", "kafka.ssl.truststore.location": "/x.jks"}, "ssl.ca.location"),
    ],
)
def test_sink_refuses_bad_options(spark, options, match):
    w = _frame(spark, 3).write.format("pktstream").mode("append").option("kafka.bootstrap.servers", "127.0.0.1:9")
    for k, v in options.items():
        w = w.option(k, v)
    with pytest.raises(Exception, match=match):
        w.save()


def test_overwrite_is_refused(spark):
    w = (_frame(spark, 3).write.format("pktstream").mode("overwrite")
         .option("kafka.bootstrap.servers", "127.0.0.1:9").option("topic", "t"))
    with pytest.raises(Exception, match="cannot be overwritten"):
        w.save()


def test_undeliverable_write_fails_the_job(spark, bootstrap):
    # A topic that does not exist: the task fails instead of dropping rows.
    started = time.monotonic()
    with pytest.raises(Exception, match="(?i)unknown.topic|does not exist"):
        _write(_frame(spark, 5), bootstrap, f"pktstream-test-missing-{time.time_ns()}", timeoutMs="5000")
    assert time.monotonic() - started < 120


def test_sink_over_sasl_ssl_with_java_client_settings(spark, secure_kafka):
    user, password = next(iter(secure_kafka.users.items()))
    conf = secure_kafka.client_config("SASL_SSL")
    servers = conf.pop("bootstrap.servers")
    topic = f"pktstream-test-sink-sasl-{time.time_ns()}"
    pktstream.create_topic(topic, partitions=2, bootstrap_servers=servers, config=conf)
    w = (_frame(spark, 40).write.format("pktstream").mode("append").option("kafka.bootstrap.servers", servers)
         .option("topic", topic).option("kafka.security.protocol", "SASL_SSL")
         .option("kafka.sasl.mechanism", "SCRAM-SHA-512")
         .option("kafka.sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required "
                                           f'username="{user}" password="{password}";')
         .option("kafka.ssl.ca.location", str(secure_kafka.ca_file)))
    w.save()
    t = pktstream.consume(topic, bootstrap_servers=servers, config=conf, schema=SCHEMA)
    assert sorted(t.select(SCHEMA.names).to_pylist(), key=lambda r: r["i"]) == _expected(0, 40)


def test_a_re_run_micro_batch_is_written_again_at_least_once(spark, bootstrap, topic_factory, tmp_path):
    """The documented guarantee, shown: a micro-batch whose commit did not reach the checkpoint
    (a crash after the write) runs again on restart and its rows are written twice; none is lost."""
    source, sink = topic_factory(1), topic_factory(1)
    pktstream.produce(pa.table({"i": pa.array(range(200), pa.int64())}), source, bootstrap_servers=bootstrap,
                      progress=False)
    ckpt = tmp_path / "ckpt"

    def run() -> None:
        q = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
             .option("subscribe", source).option("startingOffsets", "earliest").option("schema", "i BIGINT")
             .option("maxOffsetsPerTrigger", "100").load().select("i")
             .writeStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap).option("topic", sink)
             .option("checkpointLocation", str(ckpt)).trigger(availableNow=True).start())
        q.awaitTermination(180)
        assert q.exception() is None

    schema = pa.schema({"i": pa.int64()})
    run()
    first = pktstream.consume(sink, bootstrap_servers=bootstrap, schema=schema).column("i").to_pylist()
    assert sorted(first) == list(range(200))
    last = max(int(p.name) for p in (ckpt / "commits").iterdir() if p.name.isdigit())
    (ckpt / "commits" / str(last)).unlink()  # as if the driver died between the write and the commit
    for crc in (ckpt / "commits").glob(f".{last}.crc"):
        crc.unlink()
    run()
    again = pktstream.consume(sink, bootstrap_servers=bootstrap, schema=schema).column("i").to_pylist()
    assert sorted(set(again)) == list(range(200))  # nothing lost
    assert len(again) == 300 and sorted(again[200:]) == list(range(100, 200))  # the last batch, twice
