"""Offsets for times and every header, on the native consumer against the suite's Apache Kafka.

Messages are produced with kafka-python, which sets each record's timestamp and headers
explicitly (pktstream's producer sets neither): times a second apart in the recent past (old
ones would meet the broker's retention), and header keys that are not UTF-8 on the wire.
"""

from __future__ import annotations

import time

import pktstream
import pyarrow as pa
import pytest
from kafka_fixtures import RawKey, produce_timed
from pktstream.exceptions import KafkaError


def base_ms() -> int:
    """Ten minutes ago, to the second."""
    return (int(time.time()) - 600) * 1000


def test_offsets_for_times_earliest_at_or_after(bootstrap, topic_factory):
    topic, t0 = topic_factory(2), base_ms()
    produce_timed(bootstrap, topic, 0, [t0 + 1000 * i for i in range(10)])
    produce_timed(bootstrap, topic, 1, [t0 + 5000, t0 + 5000, t0 + 7000])
    with pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary") as c:
        got = c.offsets_for_times({
            (topic, 0): t0 + 2500,  # between offsets 2 and 3
        })
        assert got == {(topic, 0): 3}
        got = c.offsets_for_times({(topic, 0): t0 + 3000, (topic, 1): t0 + 5000})
        assert got == {(topic, 0): 3, (topic, 1): 0}  # exact times; the first of equal ones
        got = c.offsets_for_times({(topic, 0): 0, (topic, 1): t0 + 6000})
        assert got == {(topic, 0): 0, (topic, 1): 2}
        # Nothing at or after: None (not the end offset, not an error).
        assert c.offsets_for_times({(topic, 0): t0 + 9001, (topic, 1): t0 + 10**9}) == {(topic, 0): None,
                                                                                       (topic, 1): None}
        # Seeking to the answer reads from that time.
        c.seek(topic, 0, 7)
        rows: list = []
        deadline = time.monotonic() + 20
        while len(rows) < 6 and time.monotonic() < deadline:
            b = c.read_batch(100, 1.0)
            rows += zip(b.column("_partition").to_pylist(), b.column("_offset").to_pylist(),
                        b.column("_timestamp").cast("int64").to_pylist())
        assert sorted(r for r in rows if r[0] == 0) == [(0, o, t0 + 1000 * o) for o in (7, 8, 9)]
        with pytest.raises(ValueError, match="negative"):
            c.offsets_for_times({(topic, 0): -1})
        with pytest.raises(KafkaError):
            c.offsets_for_times({(topic, 7): t0}, timeout=5)


def test_headers_column_every_header_in_order(bootstrap, topic_factory):
    topic = topic_factory(1)
    headers = [("a", b"1"), (RawKey(b"\xff\xfek"), b"\x00\xff"), ("a", b""), ("\u00e9t\u00e9", b"summer")]
    produce_timed(bootstrap, topic, 0, [base_ms()], headers=headers)
    produce_timed(bootstrap, topic, 0, [base_ms()], headers=[])
    with pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary", headers=True) as c:
        batch = c.read_batch(10, 10.0)
        while batch.num_rows < 2:
            more = c.read_batch(10, 10.0)
            assert more.num_rows, "the second message never came"
            batch = pa.Table.from_batches([batch, more]).combine_chunks().to_batches()[0]
    assert batch.schema.names[-1] == "_headers"
    assert batch.schema.field("_headers").type == pa.list_(
        pa.struct([pa.field("key", pa.string()), pa.field("value", pa.binary())]))
    got = batch.column("_headers").to_pylist()
    assert got[0] == [
        {"key": "a", "value": b"1"},
        {"key": "\ufffd\ufffdk", "value": b"\x00\xff"},  # lossy key, exact value
        {"key": "a", "value": b""},
        {"key": "\u00e9t\u00e9", "value": b"summer"},
    ]
    assert got[1] is None  # no headers: null, as in Spark's Kafka source
    # Off by default: the batch is as before.
    with pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary") as c:
        assert "_headers" not in c.read_batch(10, 10.0).schema.names
