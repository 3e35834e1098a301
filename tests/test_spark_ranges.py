"""Spark source ranges end by position (issue 10, part 6): transaction markers, aborted records and
offsets removed by retention never make a task wait for an offset that will not come.

Needs Apache Kafka (transactions, retention): the session broker of ``tests/kafka_fixtures.py``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import pyarrow as pa
import pytest
from pktstream.exceptions import KafkaError
from pktstream.spark._source import KafkaDataSource

SCHEMA = "n BIGINT"


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def _create(bootstrap: str, config: dict[str, str] | None = None) -> str:
    from confluent_kafka.admin import NewTopic

    name = f"pktstream-test-ranges-{uuid.uuid4().hex[:10]}"
    admin = _admin(bootstrap)  # kept alive until the futures are done
    for f in admin.create_topics([NewTopic(name, 1, 1, config=config or {})]).values():
        f.result(30)
    return name


def _watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "pktstream-test-watermarks"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def _options(bootstrap: str, topic: str, **extra: str) -> dict[str, str]:
    return {
        "kafka.bootstrap.servers": bootstrap,
        "subscribe": topic,
        "schema": SCHEMA,
        "pollTimeoutMs": "30000",
        **extra,
    }


def _read_in_process(options: dict[str, str]) -> pa.Table:
    """The batch reader's plan and tasks, run here (not in Spark's workers): for logs and
    exceptions. The session must be active: Spark parses the DDL ``schema``."""
    ds = KafkaDataSource(options)
    schema = ds.schema()
    reader = ds.reader(schema)
    batches = [b for part in reader.partitions() for b in reader.read(part)]
    return pa.Table.from_batches(batches) if batches else pa.table({"n": pa.array([], pa.int64())})


def _spark_read(spark: Any, options: dict[str, str]) -> pa.Table:
    reader = spark.read.format("pktstream")
    for k, v in options.items():
        reader = reader.option(k, v)
    return reader.load().toArrow()


@pytest.fixture
def transactional_topic(bootstrap: str) -> str:
    """Ten committed records, then five aborted ones: the topic ends on an abort marker."""
    from confluent_kafka import Producer

    topic = _create(bootstrap)
    failed: list[Any] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(err)

    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"pktstream-test-{uuid.uuid4().hex[:8]}"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, json.dumps({"n": i}).encode(), partition=0, on_delivery=report)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(100, 105):
        p.produce(topic, json.dumps({"n": i}).encode(), partition=0, on_delivery=report)
    assert p.flush(30) == 0  # on the broker before the abort (abort purges what is still queued)
    assert not failed, failed
    p.abort_transaction(30)
    # 10 records + commit marker + 5 aborted records + abort marker. The coordinator writes the
    # markers after EndTxn has answered, and a read_committed consumer's "high" is the last stable
    # offset: it stays at 11 until the abort marker is written (CI once read (0, 11) here).
    deadline = time.monotonic() + 30
    while (marks := _watermarks(bootstrap, topic)) != (0, 17):
        assert time.monotonic() < deadline, f"watermarks {marks}, not (0, 17), after 30 s"
        time.sleep(0.2)
    return topic


def test_a_range_ending_on_transaction_markers_ends(spark: Any, bootstrap: str, transactional_topic: str) -> None:
    started = time.monotonic()
    got = _read_in_process(_options(bootstrap, transactional_topic))
    took = time.monotonic() - started
    assert sorted(got.column("n").to_pylist()) == list(range(10))
    assert took < 20, f"the range waited {took:.1f} s for offsets that never come"


def test_a_range_ending_on_a_commit_marker_mid_topic(spark: Any, bootstrap: str, transactional_topic: str) -> None:
    # [0, 11): ten records and the commit marker; what follows is aborted.
    got = _read_in_process(_options(bootstrap, transactional_topic, endingOffsets=json.dumps({transactional_topic: {"0": 11}})))
    assert sorted(got.column("n").to_pylist()) == list(range(10))


def test_spark_reads_exactly_the_committed_records(spark: Any, bootstrap: str, transactional_topic: str) -> None:
    started = time.monotonic()
    got = _spark_read(spark, _options(bootstrap, transactional_topic))
    took = time.monotonic() - started
    assert sorted(got.column("n").to_pylist()) == list(range(10))
    assert took < 60, took


@pytest.fixture
def trimmed_topic(bootstrap: str) -> tuple[str, int]:
    """A topic whose first segment (20 old records) retention deleted; 20 newer records remain.
    Returns (topic, low watermark)."""
    from confluent_kafka import Producer

    topic = _create(bootstrap, {"retention.ms": "600000", "segment.ms": "100", "message.timestamp.type": "CreateTime"})
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    old = int(time.time() * 1000) - 3_600_000  # an hour ago: past retention.ms
    for i in range(20):
        p.produce(topic, json.dumps({"n": i}).encode(), partition=0, timestamp=old)
    assert p.flush(30) == 0
    time.sleep(0.5)  # segment.ms: the next records roll a new segment, closing the old one
    for i in range(20, 40):
        p.produce(topic, json.dumps({"n": i}).encode(), partition=0)
    assert p.flush(30) == 0
    deadline = time.monotonic() + 120
    while (low := _watermarks(bootstrap, topic)[0]) == 0:
        assert time.monotonic() < deadline, "retention did not delete the old segment in 120 s"
        time.sleep(0.5)
    return topic, low


def _from_zero(topic: str) -> str:
    return json.dumps({topic: {"0": 0}})


def test_data_loss_fails_by_default(spark: Any, bootstrap: str, trimmed_topic: tuple[str, int]) -> None:
    topic, low = trimmed_topic
    with pytest.raises(KafkaError, match=r"failOnDataLoss=false") as e:
        _read_in_process(_options(bootstrap, topic, startingOffsets=_from_zero(topic)))
    assert e.value.code == "OFFSET_OUT_OF_RANGE"
    assert f"earliest available offset is {low}" in str(e.value)


def test_data_loss_warns_and_goes_on_when_asked(
    spark: Any, bootstrap: str, trimmed_topic: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    topic, low = trimmed_topic
    with caplog.at_level(logging.WARNING, logger="pktstream.spark"):
        got = _read_in_process(_options(bootstrap, topic, startingOffsets=_from_zero(topic), failOnDataLoss="false"))
    assert sorted(got.column("n").to_pylist()) == list(range(low, 40))
    assert any("removed" in r.getMessage() and "failOnDataLoss=false" in r.getMessage() for r in caplog.records)


def test_earliest_is_the_earliest_still_available(spark: Any, bootstrap: str, trimmed_topic: tuple[str, int]) -> None:
    topic, low = trimmed_topic
    got = _read_in_process(_options(bootstrap, topic))  # batch reads default to earliest
    assert sorted(got.column("n").to_pylist()) == list(range(low, 40))


def test_spark_data_loss(spark: Any, bootstrap: str, trimmed_topic: tuple[str, int]) -> None:
    topic, low = trimmed_topic
    with pytest.raises(Exception, match="failOnDataLoss"):
        _spark_read(spark, _options(bootstrap, topic, startingOffsets=_from_zero(topic)))
    got = _spark_read(spark, _options(bootstrap, topic, startingOffsets=_from_zero(topic), failOnDataLoss="false"))
    assert sorted(got.column("n").to_pylist()) == list(range(low, 40))


def test_fail_on_data_loss_must_be_a_boolean(bootstrap: str) -> None:
    with pytest.raises(ValueError, match="failOnDataLoss"):
        KafkaDataSource(_options(bootstrap, "t", failOnDataLoss="maybe")).reader(None)  # type: ignore[arg-type]


# --- read_ahead: the range reader runs on a thread ahead of Spark ----------------------------------


def test_read_ahead_keeps_order_and_errors_and_stops_when_closed():
    import threading

    from pktstream.spark._source import read_ahead

    def numbers(n: int, fail_at: int = -1) -> Any:
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"broken at {i}")
            yield pa.record_batch({"i": [i]})

    assert [b.column("i")[0].as_py() for b in read_ahead(numbers(50))] == list(range(50))

    got = []
    with pytest.raises(ValueError, match="broken at 7"):
        for b in read_ahead(numbers(50, fail_at=7)):
            got.append(b.column("i")[0].as_py())
    assert got == list(range(7))  # everything before the error, then the error

    closed = threading.Event()

    def endless() -> Any:
        try:
            i = 0
            while True:
                yield pa.record_batch({"i": [i]})
                i += 1
        finally:
            closed.set()

    it = read_ahead(endless(), depth=2)
    assert next(it).column("i")[0].as_py() == 0
    it.close()  # Spark stops early: the thread stops and closes the source (its consumer)
    assert closed.wait(5)
