"""Interoperability with the Java client, Kafka's reference implementation.

What pktstream writes, the Java consumer reads unchanged (values, keys, headers), on the partition
Java's default partitioner picks for the key; what the Java producer writes, compressed with each
codec and with headers, pktstream reads back. The Java side is ``tests/java/KafkaInterop.java``,
compiled here against the cached ``kafka-clients`` jar; each JVM run does a whole batch of work
(a JVM start costs seconds), and bytes cross as base64.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pktstream
import pyarrow as pa
import pytest
from pktstream.broker import find_kafka
from pktstream.testing import synth

JAVA_SOURCE = Path(__file__).resolve().parent / "java" / "KafkaInterop.java"
#: The jars the Java client needs (no logging backend: slf4j then stays quiet on stdout).
JARS = ("kafka-clients-*.jar", "slf4j-api-*.jar", "lz4-java-*.jar", "snappy-java-*.jar", "zstd-jni-*.jar")
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: Optional[bytes]
    value: Optional[bytes]
    headers: tuple[tuple[str, Optional[bytes]], ...]
    java_partition: int  # the Java default partitioner's choice for the key; -1 without a key


def _b64(b: Optional[bytes]) -> str:
    return "-" if b is None else base64.b64encode(b).decode()


def _unb64(s: str) -> Optional[bytes]:
    return None if s == "-" else base64.b64decode(s)


class JavaClient:
    """Runs ``KafkaInterop`` (compiled once) against one bootstrap server."""

    def __init__(self, classes: Path, classpath: str, java: str, bootstrap: str) -> None:
        self.classpath = f"{classes}{os.pathsep}{classpath}"
        self.java = java
        self.bootstrap = bootstrap

    def _run(self, *args: str, stdin: str = "") -> list[list[str]]:
        cmd = [self.java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", self.classpath, "KafkaInterop", *args]
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(args[:2])} failed:\n{done.stderr[-3000:]}"
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def consume(self, *topics: str) -> list[Record]:
        """Every message of ``topics``, read by the Java consumer."""
        out = []
        for topic, part, offset, key, value, headers, want in self._run("consume", self.bootstrap, *topics):
            hs = tuple((h.split("=", 1)[0], _unb64(h.split("=", 1)[1])) for h in headers.split(",") if h)
            out.append(Record(topic, int(part), int(offset), _unb64(key), _unb64(value), hs, int(want)))
        return out

    def produce(self, messages: list[tuple[str, str, Optional[bytes], bytes, dict[str, bytes]]]) -> list[tuple]:
        """``(topic, codec, key, value, headers)`` sent by the Java producer; their (topic, partition, offset)."""
        lines = [
            "\t".join([t, codec, _b64(k), _b64(v), ",".join(f"{n}={_b64(b)}" for n, b in hs.items())])
            for t, codec, k, v, hs in messages
        ]
        return [(t, int(p), int(o)) for t, p, o in self._run("produce", self.bootstrap, stdin="\n".join(lines) + "\n")]


@pytest.fixture(scope="module")
def java_client(kafka_broker, bootstrap: str, tmp_path_factory) -> JavaClient:
    libs = Path(getattr(kafka_broker, "libs", None) or find_kafka())
    java = getattr(kafka_broker, "java", None) or shutil.which("java")
    javac = shutil.which("javac") or (str(Path(java).with_name("javac")) if java else None)
    if not java or not javac or not os.access(javac, os.X_OK):
        pytest.fail("the Java interoperability tests need a JDK (java and javac, 17+)", pytrace=False)
    jars = []
    for pattern in JARS:
        found = sorted(libs.glob(pattern))
        assert found, f"no {pattern} in {libs}"
        jars.append(str(found[-1]))
    classpath = os.pathsep.join(jars)
    classes = tmp_path_factory.mktemp("java")
    done = subprocess.run([javac, "-nowarn", "-d", str(classes), "-cp", classpath, str(JAVA_SOURCE)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return JavaClient(classes, classpath, java, bootstrap)


def _by_position(records) -> dict[tuple[int, int], Record]:
    return {(r.partition, r.offset): r for r in records}


# --- pktstream writes, Java reads -------------------------------------------------------------

#: name -> (format, key, partitions)
WRITTEN = {
    "json-flow": ("json", "flow", 4),
    "json-unkeyed": ("json", None, 2),
    "csv-src_ip": ("csv", "src_ip", 3),
    "raw-flow": ("raw", "flow", 3),
    "raw-timestamp": ("raw", "timestamp", 5),
}
PACKETS = 600


@pytest.fixture(scope="module")
def written(java_client, bootstrap, tmp_path_factory):
    """Each WRITTEN topic produced by pktstream, then read by Java (one JVM) and by pktstream as binary."""
    capture = tmp_path_factory.mktemp("interop") / "600.pcap"
    synth.write_pcap(str(capture), PACKETS, seed=7)
    topics = {}
    for name, (fmt, key, partitions) in WRITTEN.items():
        topic = f"pktstream-test-java-{name}-{os.urandom(4).hex()}"
        pktstream.create_topic(topic, partitions=partitions, bootstrap_servers=bootstrap)
        report = pktstream.produce_pcap(capture, topic, bootstrap_servers=bootstrap, format=fmt, key=key)
        assert report.failed == 0 and report.delivered == report.messages > 0, report
        topics[name] = topic
    java = java_client.consume(*topics.values())
    out = {}
    for name, topic in topics.items():
        ours = pktstream.consume(topic, bootstrap_servers=bootstrap, format="binary")
        out[name] = ([r for r in java if r.topic == topic], ours)
    return out


@pytest.mark.parametrize("name", list(WRITTEN))
def test_java_reads_what_pktstream_writes_unchanged(written, name):
    fmt, key, partitions = WRITTEN[name]
    java, ours = written[name]
    assert len(java) == ours.num_rows == PACKETS  # json, csv and raw: one message per packet
    theirs = _by_position(java)
    rows = ours.to_pylist()
    for row in rows:
        r = theirs[(row["_partition"], row["_offset"])]
        assert r.value == row["value"], (name, r.offset)
        assert r.key == row["_key"], (name, r.offset)
        if fmt == "raw":
            headers = dict(r.headers)
            assert set(headers) == {"link_type", "wirelen"}
            assert headers["link_type"] == str(row["link_type"]).encode()
            assert headers["wirelen"] == str(row["wirelen"]).encode()
            assert len(r.key) == 8  # the capture timestamp, big-endian
        else:
            assert r.headers == ()
    keyed = [r for r in java if r.key is not None]
    if key is None:
        assert not keyed  # (and librdkafka's sticky partitioner may put them all on one partition)
    else:
        assert len(keyed) > len(java) // 2, "most synthetic packets are IP: they have a flow and a src_ip"
        assert len({r.partition for r in java}) > 1, "the keys should spread over the partitions"


def test_json_and_csv_values_are_what_the_encoders_promise(written):
    java, _ = written["json-flow"]
    values = [json.loads(r.value) for r in java]
    assert sorted(v["frame_number"] for v in values) == list(range(1, PACKETS + 1))
    assert all(v["src_ip"] for v in values if "src_ip" in v)
    java, _ = written["csv-src_ip"]
    for r in java:
        text = r.value.decode()
        assert "\n" not in text.rstrip("\n") and text.count(",") > 5, text
        if r.key is not None:
            assert r.key.decode() in text.split(","), "the src_ip key is one of the row's fields"


@pytest.mark.parametrize("name", ["json-flow", "csv-src_ip", "raw-timestamp"])
def test_keyed_messages_land_on_the_partition_javas_partitioner_picks(written, name):
    java = [r for r in written[name][0] if r.key is not None]
    assert len(java) > PACKETS // 2
    wrong = [(r.key, r.partition, r.java_partition) for r in java if r.partition != r.java_partition]
    assert not wrong, f"{len(wrong)} of {len(java)} messages elsewhere than Java would put them: {wrong[:3]}"


def test_raw_flow_keys_pin_flows_not_timestamps(written):
    """``raw`` keyed by flow pins each flow to a partition although the message key is the
    timestamp: Java's partitioner would have spread a flow's frames, so the partitions differ."""
    java = [r for r in written["raw-flow"][0] if r.key is not None]
    assert any(r.partition != r.java_partition for r in java)


# --- Java writes, pktstream reads -------------------------------------------------------------

VALUE_SCHEMA = pa.schema({"i": pa.int64(), "codec": pa.string(), "text": pa.string()})


def _java_message(i: int, codec: str) -> tuple[Optional[bytes], bytes, dict[str, bytes]]:
    key = None if i % 3 == 0 else f"key-{i % 17}".encode()
    value = json.dumps({"i": i, "codec": codec, "text": f"packet {i} " + "abc" * (i % 40)}).encode()
    headers = {"seq": str(i).encode(), "bin": bytes([i % 256, 0, 255])} if i % 2 else {}
    return key, value, headers


@pytest.fixture(scope="module")
def java_written(java_client, bootstrap):
    """One topic per codec, 400 messages each, produced by the Java client in one JVM run."""
    topics = {}
    messages = []
    for codec in CODECS:
        topic = f"pktstream-test-java-{codec}-{os.urandom(4).hex()}"
        pktstream.create_topic(topic, partitions=3, bootstrap_servers=bootstrap)
        topics[codec] = topic
        messages += [(topic, codec, *_java_message(i, codec)) for i in range(400)]
    placed = java_client.produce(messages)
    expected = {codec: {} for codec in CODECS}
    for (topic, codec, key, value, _), (t, p, o) in zip(messages, placed):
        assert t == topic
        expected[codec][(p, o)] = (key, value)
    return topics, expected


@pytest.mark.parametrize("codec", CODECS)
def test_pktstream_reads_what_java_writes(java_written, bootstrap, codec):
    topics, expected = java_written
    want = expected[codec]
    raw = pktstream.consume(topics[codec], bootstrap_servers=bootstrap, format="binary")
    assert raw.num_rows == len(want) == 400
    got = {(r["_partition"], r["_offset"]): (r["_key"], r["value"]) for r in raw.to_pylist()}
    assert got == want
    assert raw["_error"].null_count == raw.num_rows

    table = pktstream.consume(topics[codec], bootstrap_servers=bootstrap, format="json", schema=VALUE_SCHEMA)
    assert table.num_rows == 400
    assert table["_error"].null_count == table.num_rows, table["_error"].drop_null()[:3]
    for row in table.to_pylist():
        key, value = want[(row["_partition"], row["_offset"])]
        assert row["_key"] == key
        assert {k: row[k] for k in ("i", "codec", "text")} == json.loads(value)
    # Unkeyed messages went anywhere; keyed ones where Java's partitioner put them, as pktstream would.
    from_key = {}
    for (p, _), (key, _) in want.items():
        if key is not None:
            from_key.setdefault(key, set()).add(p)
    assert all(len(ps) == 1 for ps in from_key.values())
