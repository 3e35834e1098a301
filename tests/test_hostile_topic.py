"""A Kafka topic can hold anything (issue 10, part 4).

Whatever bytes a message holds, from any producer, consuming it must cost memory and time in
proportion to the message and give it a row of its own (an ``arrow`` value: its rows), with its
offset, partition and key, and ``_error`` set when it cannot be decoded: never a crash, an abort,
a hang or a skipped offset. The topic here mixes valid messages with random bytes, Arrow IPC
streams whose lengths and row counts lie, truncated streams, deeply nested JSON, huge numbers,
invalid UTF-8, tombstones, several JSON objects in one value and header keys that are not UTF-8,
and is consumed in every format in a child process whose peak memory is measured.
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Optional

import pktstream
import pyarrow as pa
import pytest
from kafka_fixtures import RawKey as _RawKey

PARTITIONS = 3
MESSAGES = 3000
#: Peak RSS the consumer may add while reading the whole topic, per format.
RSS_BOUND_MB = 300
#: Wall time for one whole-topic consume.
WALL_BOUND_S = 60

SCHEMA = pa.schema({"a": pa.int64()})
FORMATS = ["json", "arrow", "raw", "binary"]


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _patch_i64(data: bytes, old: int, new: int) -> bytes:
    patched = data.replace(struct.pack("<q", old), struct.pack("<q", new))
    assert patched != data
    return patched


def _hostile(rng: random.Random) -> list[tuple[str, Callable[[int], Optional[bytes]]]]:
    """(kind, make(i) -> value) for every kind of message; ``valid_*`` kinds decode."""
    nulls = _ipc(pa.record_batch({"n": pa.nulls(77_777)}))
    two = _ipc(pa.record_batch({"x": pa.array(range(1000), pa.int32()), "y": pa.array([7] * 1000, pa.int64())}))

    def rand(i: int) -> bytes:
        return rng.randbytes(rng.randrange(0, 200))

    def framed(i: int) -> bytes:
        return b"\xff\xff\xff\xff" + rng.randbytes(rng.randrange(4, 120))

    def lying_meta(i: int) -> bytes:
        return two[:4] + struct.pack("<i", 0x7FFF_FFF0) + two[8:]

    def deep(i: int) -> bytes:
        return b'{"a":' + b"[" * 100_000

    return [
        ("valid_json", lambda i: json.dumps({"a": i}).encode()),
        ("valid_arrow", lambda i: _ipc(pa.record_batch({"a": pa.array([i], pa.int64())}))),
        ("random", rand),
        ("framed_random", framed),
        ("ipc_2pow40_null_rows", lambda i: _patch_i64(nulls, 77_777, 1 << 40)),
        ("ipc_lying_metadata_length", lying_meta),
        ("ipc_lying_body_length", lambda i: _patch_i64(two, 12_000, 1 << 50)),
        ("ipc_lying_buffer_offset", lambda i: _patch_i64(two, 4000, 1 << 40)),
        ("ipc_truncated", lambda i: two[: rng.randrange(1, len(two) - 8)]),
        ("json_deep", deep),
        ("json_huge_number", lambda i: b'{"a": 1' + b"9" * 5000 + b"}"),
        ("json_exponent", lambda i: b'{"a": 1e999999}'),
        ("json_invalid_utf8", lambda i: b'{"a": "\xff\xfe\xc3("}'),
        ("json_two_objects", lambda i: b'{"a":1}{"a":2}'),
        ("json_two_lines", lambda i: b'{"a":1}\n{"a":2}'),
        ("json_not_object", lambda i: rng.choice([b"[]", b"42", b"null", b"  ", b'"s"'])),
        ("tombstone", lambda i: None),
        ("empty", lambda i: b""),
    ]


def _headers(rng: random.Random) -> list[tuple[str, bytes]]:
    """Headers, often with keys that are not UTF-8 (``ff fe ...``, a cut two-byte sequence)."""
    choice = rng.randrange(4)
    if choice == 0:
        return []
    if choice == 1:
        return [("link_type", b"1"), ("wirelen", b"\xff")]
    return [(_RawKey(b"\xff\xfe-key"), b"x"), ("link_type", b"101"), (_RawKey(b"wirelen\xc3("), b"9")]


def _produce(bootstrap: str, topic: str) -> list[list[tuple[str, Optional[bytes], bytes, list]]]:
    """Produces the hostile topic; returns per partition the (kind, value, key, headers) of each offset."""
    from kafka import KafkaProducer

    rng = random.Random(104)
    kinds = _hostile(rng)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_request_size=10_000_000)
    # A topic made a moment ago: wait until this client's metadata lists all its partitions.
    deadline = time.monotonic() + 60
    while len(producer.partitions_for(topic) or ()) < PARTITIONS and time.monotonic() < deadline:
        time.sleep(0.2)
    sent: list[list[tuple[str, Optional[bytes], bytes, list]]] = [[] for _ in range(PARTITIONS)]
    futures = []
    for i in range(MESSAGES):
        p = i % PARTITIONS
        # Each partition starts with a valid JSON then a valid Arrow message, then anything.
        kind, make = kinds[len(sent[p])] if len(sent[p]) < 2 else rng.choice(kinds)
        value = make(i)
        key = f"key-{i}".encode()
        headers = _headers(rng)
        futures.append(producer.send(topic, value=value, key=key, partition=p, headers=headers))
        sent[p].append((kind, value, key, headers))
    producer.flush(60)
    producer.close()
    for f in futures:
        f.get(timeout=60)  # raises if a message was not delivered
    return sent


CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    import pyarrow as pa, pyarrow.ipc
    import pktstream

    def status_kb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))

    def rss_kb():
        return status_kb("VmRSS:")

    bootstrap, topic, out, fmt = sys.argv[1:5]
    schema = pa.schema({"a": pa.int64()}) if fmt in ("json", "arrow") else None
    if fmt == "csv":
        try:
            pktstream.consume(topic, bootstrap_servers=bootstrap, format="csv", timeout=5)
            print(json.dumps({"csv": "consumed"}))
        except ValueError as e:
            print(json.dumps({"csv": str(e)}))
        sys.exit(0)
    before = rss_kb()
    started = time.monotonic()
    table = pktstream.consume(topic, bootstrap_servers=bootstrap, format=fmt, schema=schema, timeout=10,
                              headers=fmt == "binary")
    took = time.monotonic() - started
    peak = status_kb("VmHWM:")  # this process's peak (ru_maxrss keeps the forking parent's after exec)
    with pa.OSFile(f"{out}/{fmt}.arrow", "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    print(json.dumps({"seconds": took, "rss_growth_mb": (peak - before) / 1024, "rows": table.num_rows}))
    """
)


def _consume_in_child(bootstrap: str, topic: str, out: Path, fmt: str) -> dict:
    """Consumes the whole topic in a fresh process (so its peak RSS is this consume's)."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, bootstrap, topic, str(out), fmt],
        capture_output=True,
        text=True,
        timeout=WALL_BOUND_S * 3,
    )
    assert child.returncode == 0, f"{fmt}: the consumer died ({child.returncode}):\n{child.stderr[-3000:]}"
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_a_hostile_topic_is_one_row_per_message_in_every_format(
    bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory(partitions=PARTITIONS)
    sent = _produce(bootstrap, topic)
    report = {fmt: _consume_in_child(bootstrap, topic, tmp_path, fmt) for fmt in FORMATS + ["csv"]}
    print(json.dumps(report, indent=1))
    assert "csv" in report["csv"]["csv"]  # csv is not a consumer format: a ValueError saying so

    for fmt in FORMATS:
        r = report[fmt]
        assert r["seconds"] < WALL_BOUND_S, (fmt, r)
        assert r["rss_growth_mb"] < RSS_BOUND_MB, (fmt, r)
        with pa.OSFile(str(tmp_path / f"{fmt}.arrow")) as f:
            table = pa.ipc.open_file(f).read_all()
        _check(fmt, table, sent)


def _check(fmt: str, table: pa.Table, sent: list[list[tuple[str, Optional[bytes], bytes, list]]]) -> None:
    assert table.num_rows == MESSAGES, (fmt, table.num_rows)  # every value here is at most one row
    rows = table.to_pydict()
    by_partition: dict[int, list[int]] = {}
    for r in range(table.num_rows):
        p, o = rows["_partition"][r], rows["_offset"][r]
        by_partition.setdefault(p, []).append(r)
        kind, value, key, headers = sent[p][o]
        assert rows["_key"][r] == key, (fmt, p, o, kind)
        error = rows["_error"][r]
        valid = (fmt == "json" and kind == "valid_json") or (fmt == "arrow" and kind == "valid_arrow")
        if fmt in ("json", "arrow"):
            assert (error is None) == valid, (fmt, kind, error)
            if valid:
                assert rows["a"][r] == int(key.split(b"-")[1]), (fmt, kind)
            else:
                assert rows["a"][r] is None
        elif fmt == "binary":
            assert error is None and rows["value"][r] == value, (fmt, kind)
            # Read with every header: keys that are not UTF-8 decode lossily (U+FFFD), as in Java.
            want = [{"key": k.encode().decode("utf-8", "replace"), "value": v} for k, v in headers]
            assert rows["_headers"][r] == (want or None), (fmt, kind)
        else:  # raw: every value is a frame; empty ones are errors
            assert rows["caplen"][r] == len(value or b""), (fmt, kind)
            if not value:
                assert error is not None
    for p, indices in by_partition.items():
        assert [rows["_offset"][r] for r in indices] == list(range(len(sent[p]))), (fmt, p)
    assert sorted(by_partition) == list(range(PARTITIONS))


def test_decode_values_wants_one_key_and_timestamp_per_value() -> None:
    with pytest.raises(ValueError, match="keys has 1 entries but values has 2"):
        pktstream.decode_values([b"{}", b"{}"], keys=[b"k"])
    with pytest.raises(ValueError, match="timestamps_ms has 3 entries"):
        pktstream.decode_values([b"{}", b"{}"], timestamps_ms=[1, 2, 3])
    b = pktstream.decode_values([b'{"a":1}{"a":2}', None, b'{"a":3}'], schema=SCHEMA, keys=[b"x", None, b"z"])
    assert b.column("a").to_pylist() == [None, None, 3]
    assert b.column("_error").is_null().to_pylist() == [False, False, True]
