"""The ``pktstream`` source speaks Spark's Kafka options (issue 11, part 3), against the suite's
Apache Kafka and a real local Spark: each option's effect is checked on the rows and offsets read.

Also: Java client settings translated (``kafka.sasl.jaas.config`` over the SASL_SSL listener) or
refused with the librdkafka key to use, options pktstream cannot honour refused, and secrets kept
out of reprs, plan strings, progress reports and log records.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
import uuid
from typing import Any

import pktstream
import pyarrow as pa
import pytest
from kafka_fixtures import RawKey, produce_timed
from pktstream.spark import foreach_arrow
from pktstream.spark._options import KafkaOptions

SCHEMA = "n BIGINT"


def _produce(bootstrap: str, topic: str, start: int, count: int) -> None:
    table = pa.table({"n": pa.array(range(start, start + count), pa.int64()),
                      "k": [f"k{i % 11}" for i in range(start, start + count)]})
    pktstream.produce(table, topic, bootstrap_servers=bootstrap, key="k", progress=False)


def _ends(bootstrap: str, topic: str) -> dict[int, int]:
    c = pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary")
    try:
        return {p: end for _, p, end in c.ends or []}
    finally:
        c.close()


def _read(spark: Any, bootstrap: str, **options: str) -> Any:
    r = spark.read.format("pktstream").option("kafka.bootstrap.servers", bootstrap).option("schema", SCHEMA)
    for k, v in options.items():
        r = r.option(k, v)
    return r.load()


def _rows(df: Any) -> list[tuple[str, int, int, int]]:
    t = df.select("topic", "partition", "offset", "n").toArrow()
    return sorted(zip(*(t.column(c).to_pylist() for c in ("topic", "partition", "offset", "n"))))


# --- which partitions: assign, subscribePattern ------------------------------------------------------


def test_assign_reads_exactly_the_assigned_partitions(spark, bootstrap, topic_factory):
    topic = topic_factory(3)
    _produce(bootstrap, topic, 0, 330)
    ends = _ends(bootstrap, topic)
    assert all(ends[p] > 0 for p in range(3))
    rows = _rows(_read(spark, bootstrap, assign=json.dumps({topic: [0, 2]})))
    assert [(p, o) for _, p, o, _ in rows] == sorted((p, o) for p in (0, 2) for o in range(ends[p]))


def test_subscribe_pattern_matches_whole_topic_names(spark, bootstrap):
    stem = f"pktstream-test-pattern-{uuid.uuid4().hex[:8]}"
    names = [f"{stem}-a", f"{stem}-b", f"{stem}-ab-x"]
    for i, name in enumerate(names):
        pktstream.create_topic(name, partitions=2, bootstrap_servers=bootstrap)
        _produce(bootstrap, name, 100 * i, 10 + i)
    rows = _rows(_read(spark, bootstrap, subscribePattern=f"{stem.replace('.', '[.]')}-(a|b)"))
    assert {t for t, *_ in rows} == {names[0], names[1]}  # not -ab-x: the whole name must match
    assert sorted(n for *_, n in rows) == list(range(0, 10)) + list(range(100, 111))


def test_subscribe_pattern_stream_picks_up_new_topics(spark, bootstrap, tmp_path):
    stem = f"pktstream-test-newtopic-{uuid.uuid4().hex[:8]}"
    pktstream.create_topic(f"{stem}-1", partitions=1, bootstrap_servers=bootstrap)
    _produce(bootstrap, f"{stem}-1", 0, 20)
    seen: list[pa.Table] = []
    q = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap)
         .option("subscribePattern", f"{stem}-[0-9]+").option("startingOffsets", "earliest").option("schema", SCHEMA)
         .load().writeStream.foreachBatch(foreach_arrow(lambda t, i: seen.append(t)))
         .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(processingTime="1 second").start())
    try:
        _wait(lambda: sum(t.num_rows for t in seen) >= 20, 90)
        pktstream.create_topic(f"{stem}-2", partitions=1, bootstrap_servers=bootstrap)
        _produce(bootstrap, f"{stem}-2", 1000, 15)
        _wait(lambda: sum(t.num_rows for t in seen) >= 35, 90)
    finally:
        q.stop()
    got = pa.concat_tables(seen)
    assert sorted(got.column("n").to_pylist()) == list(range(20)) + list(range(1000, 1015))
    assert set(got.column("topic").to_pylist()) == {f"{stem}-1", f"{stem}-2"}


# --- where: startingOffsets / endingOffsets ------------------------------------------------------------


def test_starting_and_ending_offsets_json_bound_a_batch_read(spark, bootstrap, topic_factory):
    topic = topic_factory(2)
    _produce(bootstrap, topic, 0, 200)
    ends = _ends(bootstrap, topic)
    start = {topic: {"0": 5, "1": -2}}
    end = {topic: {"0": 17, "1": -1}}
    rows = _rows(_read(spark, bootstrap, subscribe=topic, startingOffsets=json.dumps(start),
                       endingOffsets=json.dumps(end)))
    assert [(p, o) for _, p, o, _ in rows] == [(0, o) for o in range(5, 17)] + [(1, o) for o in range(ends[1])]


@pytest.mark.parametrize(
    "options, streaming, match",
    [
        ({"endingOffsets": "latest"}, True, "endingOffsets is not valid in streaming"),
        ({"startingOffsets": "latest"}, False, "can't be latest for batch"),
        ({"endingOffsets": "earliest"}, False, "can't be earliest"),
        ({"endingOffsets": '{"t": {"0": -2}}'}, False, "can't be earliest"),
        ({"startingOffsets": '{"t": {"0": -1}}'}, False, "can't be latest"),
        ({"maxOffsetsPerTrigger": "10", "minOffsetsPerTrigger": "20"}, True, "higher than maxOffsetsPerTrigger"),
        ({"minPartitions": "0"}, False, "must be positive"),
        ({"maxTriggerDelay": "soon"}, True, "duration"),
        ({"endingTimestamp": "1700000000000"}, True, "endingTimestamp is not valid in streaming"),
        ({"endingOffsetsByTimestamp": '{"t": {"0": 1}}'}, True, "not valid in streaming"),
        ({"startingOffsetsByTimestampStrategy": "earliest"}, False, "error or latest"),
        ({"startingTimestamp": "-1"}, False, "must not be negative"),
        ({"startingTimestamp": "yesterday"}, False, "milliseconds since the epoch"),
        ({"startingOffsetsByTimestamp": '{"t": {"0": -2}}'}, False, "must not be negative"),
        ({"startingOffsetsByTimestamp": "[1700000000000]"}, False, "must be JSON like"),
    ],
)
def test_offset_options_are_checked_like_spark(options, streaming, match):
    with pytest.raises(ValueError, match=match):
        KafkaOptions.parse({"kafka.bootstrap.servers": "127.0.0.1:9", "subscribe": "t", **options},
                           streaming=streaming)


# --- where by time: startingOffsetsByTimestamp, startingTimestamp, ending twins, strategy ---------------


def _timed_topic(bootstrap: str, topic_factory: Any) -> tuple[str, int]:
    """Partition 0: ten messages 1 s apart from t0; partition 1: five, t0 .. t0 + 4 s."""
    topic, t0 = topic_factory(2), (int(time.time()) - 600) * 1000
    for p, n in ((0, 10), (1, 5)):
        produce_timed(bootstrap, topic, p, [t0 + 1000 * i for i in range(n)],
                      values=[json.dumps({"n": 100 * p + i}).encode() for i in range(n)])
    return topic, t0


def _offsets(df: Any) -> list[tuple[int, int]]:
    t = df.select("partition", "offset").toArrow()
    return sorted(zip(t.column("partition").to_pylist(), t.column("offset").to_pylist()))


def test_offsets_by_timestamp_bound_a_batch_read_as_in_spark(spark, bootstrap, topic_factory):
    topic, t0 = _timed_topic(bootstrap, topic_factory)
    opts = {"subscribe": topic,
            "startingOffsetsByTimestamp": json.dumps({topic: {"0": t0 + 2500, "1": t0 + 1000}}),
            # partition 1 has nothing at or after its end time: it ends at its latest offset
            "endingOffsetsByTimestamp": json.dumps({topic: {"0": t0 + 6000, "1": t0 + 10**9}})}
    ours = _offsets(_read(spark, bootstrap, **opts))
    assert ours == [(0, o) for o in range(3, 6)] + [(1, o) for o in range(1, 5)]
    spark_kafka = spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap)
    for k, v in opts.items():
        spark_kafka = spark_kafka.option(k, v)
    assert ours == _offsets(spark_kafka.load())
    # startingTimestamp wins over startingOffsetsByTimestamp and startingOffsets; endingTimestamp too.
    rows = _rows(_read(spark, bootstrap, **opts, startingTimestamp=str(t0 + 1000), startingOffsets="earliest",
                       endingTimestamp=str(t0 + 3000)))
    assert [(p, o, n) for _, p, o, n in rows] == [(0, 1, 1), (0, 2, 2), (1, 1, 101), (1, 2, 102)]
    with pytest.raises(Exception, match="must give a time for every partition"):
        _read(spark, bootstrap, subscribe=topic,
              startingOffsetsByTimestamp=json.dumps({topic: {"0": t0}})).count()


def test_starting_timestamp_with_no_message_after_fails_or_starts_at_latest(spark, bootstrap, topic_factory,
                                                                           tmp_path):
    topic, t0 = _timed_topic(bootstrap, topic_factory)
    late = str(t0 + 7000)  # partition 1 has nothing that late
    with pytest.raises(Exception, match=r"\[1\] has no message with a timestamp at or after"):
        _read(spark, bootstrap, subscribe=topic, startingTimestamp=late).count()
    rows = _read(spark, bootstrap, subscribe=topic, startingTimestamp=late,
                 startingOffsetsByTimestampStrategy="latest")
    assert _offsets(rows) == [(0, 7), (0, 8), (0, 9)]
    # A stream starts there too (its first offsets; the checkpoint is new).
    got: list[pa.Table] = []
    q = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
         .option("schema", SCHEMA).option("startingTimestamp", late)
         .option("startingOffsetsByTimestampStrategy", "latest").load()
         .writeStream.foreachBatch(foreach_arrow(lambda t, i: got.append(t)))
         .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(availableNow=True).start())
    q.awaitTermination(180)
    assert q.exception() is None
    assert sorted(pa.concat_tables(got).column("n").to_pylist()) == [7, 8, 9]


# --- includeHeaders ----------------------------------------------------------------------------------


def test_include_headers_gives_sparks_headers_column(spark, bootstrap, topic_factory):
    topic, t0 = topic_factory(1), (int(time.time()) - 60) * 1000
    headers = [("link_type", b"1"), (RawKey(b"k\xff\xfe"), b"\x00\xff\x80"), ("link_type", b"")]
    produce_timed(bootstrap, topic, 0, [t0, t0 + 1], headers=headers, values=[b'{"n": 1}', b'{"n": 2}'])
    produce_timed(bootstrap, topic, 0, [t0 + 2], values=[b'{"n": 3}'])  # no headers
    df = _read(spark, bootstrap, subscribe=topic, includeHeaders="true")
    assert df.columns == ["n", "key", "topic", "partition", "offset", "timestamp", "headers", "_error"]
    assert df.schema["headers"].dataType.simpleString() == "array<struct<key:string,value:binary>>"
    ours = df.select("offset", "headers").toArrow()
    theirs = (spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
              .option("includeHeaders", "true").load().select("offset", "headers").toArrow())
    by_offset = dict(zip(ours.column("offset").to_pylist(), ours.column("headers").to_pylist()))
    assert by_offset == dict(zip(theirs.column("offset").to_pylist(), theirs.column("headers").to_pylist()))
    assert by_offset[0] == [{"key": "link_type", "value": b"1"}, {"key": "k\ufffd\ufffd", "value": b"\x00\xff\x80"},
                            {"key": "link_type", "value": b""}]
    assert by_offset[2] is None
    assert "headers" not in _read(spark, bootstrap, subscribe=topic).columns


# --- how many: minPartitions, maxRecordsPerPartition, read limits --------------------------------------


def test_min_partitions_splits_large_ranges(spark, bootstrap, topic_factory):
    from pyspark.sql.functions import spark_partition_id

    topic = topic_factory(1)
    _produce(bootstrap, topic, 0, 1000)
    df = _read(spark, bootstrap, subscribe=topic, minPartitions="5")
    parts = df.select(spark_partition_id().alias("pid"), "offset").toArrow()
    assert len(set(parts.column("pid").to_pylist())) == 5
    assert sorted(parts.column("offset").to_pylist()) == list(range(1000))  # split, nothing lost or doubled
    df = _read(spark, bootstrap, subscribe=topic, maxRecordsPerPartition="300")
    parts = df.select(spark_partition_id().alias("pid"), "offset").toArrow()
    assert len(set(parts.column("pid").to_pylist())) == 4
    assert sorted(parts.column("offset").to_pylist()) == list(range(1000))


def test_max_offsets_per_trigger_caps_each_micro_batch(spark, bootstrap, topic_factory, tmp_path):
    topic = topic_factory(3)
    _produce(bootstrap, topic, 0, 350)
    batches: list[pa.Table] = []
    q = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
         .option("startingOffsets", "earliest").option("schema", SCHEMA).option("maxOffsetsPerTrigger", "100")
         .load().writeStream.foreachBatch(foreach_arrow(lambda t, i: batches.append(t)))
         .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(availableNow=True).start())
    q.awaitTermination(180)
    assert q.exception() is None
    sizes = [t.num_rows for t in batches if t.num_rows]
    assert sizes == [100, 100, 100, 50]
    assert sorted(pa.concat_tables(batches).column("n").to_pylist()) == list(range(350))


def test_min_offsets_per_trigger_waits_until_enough_or_max_trigger_delay(spark, bootstrap, topic_factory, tmp_path):
    topic = topic_factory(1)
    _produce(bootstrap, topic, 0, 100)
    arrived: list[tuple[float, int]] = []  # (when, rows) per non-empty micro-batch
    lock = threading.Lock()

    def save(t: pa.Table, batch_id: int) -> None:
        if t.num_rows:
            with lock:
                arrived.append((time.monotonic(), t.num_rows))

    started = time.monotonic()
    q = (spark.readStream.format("pktstream").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
         .option("startingOffsets", "earliest").option("schema", SCHEMA)
         .option("minOffsetsPerTrigger", "50").option("maxTriggerDelay", "12s")
         .load().writeStream.foreachBatch(foreach_arrow(save))
         .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(processingTime="1 second").start())
    try:
        _wait(lambda: sum(n for _, n in arrived) >= 100, 90)  # the first batch never waits
        assert [n for _, n in arrived] == [100]
        _produce(bootstrap, topic, 100, 10)  # fewer than minOffsetsPerTrigger
        time.sleep(4)
        assert [n for _, n in arrived] == [100]  # held back
        _wait(lambda: len(arrived) >= 2, 60)
        assert arrived[1][1] == 10 and arrived[1][0] - started >= 12  # released by maxTriggerDelay
        produced = time.monotonic()
        _produce(bootstrap, topic, 110, 60)  # enough: the next trigger takes it
        _wait(lambda: len(arrived) >= 3, 60)
        assert arrived[2][1] == 60 and arrived[2][0] - produced < 10
    finally:
        q.stop()


def _wait(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the stream")
        time.sleep(0.2)


# --- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value, match",
    [
        ("groupIdPrefix", "spark-kafka", "without a consumer group"),
        ("fetchOffset.numRetries", "3", "retries offset look-ups itself"),
        ("startingOffset", "earliest", "(?i)unknown option 'startingOffset'"),  # a typo is not ignored
        ("kafka.ssl.truststore.location", "/etc/kafka/truststore.jks", "use ssl.ca.location"),
        ("kafka.ssl.keystore.location", "/etc/kafka/keystore.jks", "ssl.certificate.location and ssl.key.location"),
        ("kafka.auto.offset.reset", "earliest", "startingOffsets"),
        ("kafka.value.deserializer", "x", "the `format` option"),
        ("kafka.sasl.jaas.config", 'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;',
         "sasl.oauthbearer"),
    ],
)
def test_unsupported_options_are_refused_by_name(spark, option, value, match):
    r = (spark.read.format("pktstream").option("kafka.bootstrap.servers", "127.0.0.1:9").option("subscribe", "t")
         .option(option, value))
    with pytest.raises(Exception, match=match):
        r.load()


def test_include_headers_false_and_spark_poll_timeout_are_accepted():
    o = KafkaOptions.parse({"kafka.bootstrap.servers": "h:1", "subscribe": "t", "includeHeaders": "false",
                            "kafkaConsumer.pollTimeoutMs": "5000", "failOnDataLoss": "false"})
    assert o.poll_timeout == 5.0 and o.fail_on_data_loss is False


def test_java_client_keys_translated():
    o = KafkaOptions.parse({
        "kafka.bootstrap.servers": "h:1", "subscribe": "t",
        "kafka.security.protocol": "SASL_SSL", "kafka.sasl.mechanism": "SCRAM-SHA-256",
        "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                  'username="bob" password="pa\\"ss;word";',
        "kafka.ssl.endpoint.identification.algorithm": "",
        "kafka.ssl.truststore.certificates": "-----BEGIN CERTIFICATE-----...",
    })
    assert dict(o.config) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "bob",
        "sasl.password": 'pa"ss;word', "ssl.endpoint.identification.algorithm": "none",
        "ssl.ca.pem": "-----BEGIN CERTIFICATE-----...",
    }
    with pytest.raises(ValueError, match="needs kafka.sasl.mechanism=SCRAM"):
        KafkaOptions.parse({"kafka.bootstrap.servers": "h:1", "subscribe": "t", "kafka.sasl.jaas.config":
                            'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" '
                            'password="p";'})


# --- secrets -------------------------------------------------------------------------------------------


SECRET = "pktstream-sekrit-4711"


def test_secrets_stay_out_of_repr_errors_and_logs(caplog):
    caplog.set_level(logging.DEBUG)
    options = {
        "kafka.bootstrap.servers": "h:1", "subscribe": "t", "maxOffsetsPerTrigger": "5",
        "kafka.sasl.password": SECRET, "kafka.ssl.key.password": SECRET,
        "kafka.sasl.oauthbearer.client.secret": SECRET,
        "kafka.sasl.jaas.config": f'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" '
                                  f'password="{SECRET}";',
    }
    o = KafkaOptions.parse(options, streaming=False)  # logs the ignored maxOffsetsPerTrigger
    assert o.config["sasl.password"] == SECRET  # kept for librdkafka...
    assert SECRET not in repr(o) and SECRET not in str(o)  # ...but never shown
    assert "sasl.password" in repr(o)
    with pytest.raises(ValueError) as e:  # a malformed JAAS line: the message must not echo it
        KafkaOptions.parse({**options, "kafka.sasl.jaas.config": f"password={SECRET}"})
    assert SECRET not in str(e.value)
    assert caplog.records and all(SECRET not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_jaas_config_over_sasl_ssl(spark, secure_kafka, tmp_path, mechanism):
    user, password = next(iter(secure_kafka.users.items()))
    servers = secure_kafka.bootstrap("SASL_SSL")
    conf = secure_kafka.client_config("SASL_SSL")
    topic = f"pktstream-test-jaas-{uuid.uuid4().hex[:8]}"
    pktstream.create_topic(topic, partitions=2, bootstrap_servers=servers,
                           config={k: v for k, v in conf.items() if k != "bootstrap.servers"})
    pktstream.produce(pa.table({"n": pa.array(range(40), pa.int64())}), topic, bootstrap_servers=servers,
                      config={k: v for k, v in conf.items() if k != "bootstrap.servers"}, progress=False)
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    java = {  # as copied from a Spark job: no librdkafka sasl.username / sasl.password
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": mechanism,
        "kafka.sasl.jaas.config": f'{module} required username="{user}" password="{password}";',
        "kafka.ssl.ca.location": str(secure_kafka.ca_file),
    }
    r = spark.read.format("pktstream").option("kafka.bootstrap.servers", servers).option("subscribe", topic)
    for k, v in java.items():
        r = r.option(k, v)
    df = r.option("schema", SCHEMA).load()
    assert sorted(x.n for x in df.select("n").collect()) == list(range(40))
    plan = io.StringIO()
    with contextlib.redirect_stdout(plan):
        df.explain(True)
    assert password not in plan.getvalue() and password not in df._jdf.queryExecution().toString()

    s = spark.readStream.format("pktstream").option("kafka.bootstrap.servers", servers).option("subscribe", topic)
    for k, v in java.items():
        s = s.option(k, v)
    got: list[pa.Table] = []
    q = (s.option("schema", SCHEMA).option("startingOffsets", "earliest").load()
         .writeStream.foreachBatch(foreach_arrow(lambda t, i: got.append(t)))
         .option("checkpointLocation", str(tmp_path / "ckpt")).trigger(availableNow=True).start())
    q.awaitTermination(120)
    assert q.exception() is None and sum(t.num_rows for t in got) == 40
    assert password not in json.dumps(q.recentProgress, default=str)
    assert password not in q._jsq.toString()


@pytest.mark.parametrize("name", ["pktstream.spark._options", "pktstream.spark._java_config", "pktstream.spark._sink"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
