"""pktstream's Kafka producer and consumer against a real broker over loopback TCP.

Every format round-trips (produce, consume, compare with what was read from the file); keys keep
flows on stable partitions; the clients users already have (confluent-kafka, kafka-python) read
what pktstream writes and write what it reads; consumer groups resume without gaps or duplicates;
bad inputs raise the typed errors.
"""

from __future__ import annotations

import json
import socket
import struct
import uuid
from pathlib import Path

import pktstream
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from kafka_fixtures import consumer_config
from pktstream.testing import synth

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample.pcap"

# Columns a Kafka round trip keeps exactly (all of them: the timestamp keeps its nanoseconds).
VALUE_COLUMNS = pktstream.schema().names


def pcap_frames(path: Path) -> list[tuple[int, bytes, int]]:
    """(timestamp in microseconds, frame bytes, wire length) of a classic little-endian µs pcap."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "test helper reads little-endian microsecond pcaps only"
    out, off = [], 24
    while off < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, off)
        out.append((sec * 1_000_000 + usec, data[off + 16 : off + 16 + incl], orig))
        off += 16 + incl
    return out


def by_frame(table: pa.Table) -> pa.Table:
    return table.sort_by("frame_number")


def values(table: pa.Table) -> pa.Table:
    return table.select([c for c in table.column_names if not c.startswith("_")])


def confluent_messages(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list:
    from confluent_kafka import Consumer

    c = Consumer(consumer_config(bootstrap))
    c.subscribe([topic])
    msgs = []
    import time

    deadline = time.monotonic() + timeout
    while len(msgs) < expected and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        msgs.append(m)
    c.close()
    return msgs


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return pktstream.read_pcap(SAMPLE)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("synth") / "mixed.pcap"
    synth.write_pcap(str(path), 3000, seed=11)
    return path


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "arrow"])
def test_capture_round_trips_through_a_topic(fmt, bootstrap, topic_factory, synthetic):
    topic = topic_factory(partitions=3)
    expected = pktstream.read_pcap(synthetic)
    report = pktstream.produce_pcap(synthetic, topic, bootstrap_servers=bootstrap, format=fmt, progress=False)
    assert (report.rows, report.delivered, report.failed) == (3000, report.messages, 0)
    assert report.partitions == 3
    if fmt == "json":
        assert report.messages == 3000
    else:
        assert 3 <= report.messages <= 3 * 3  # grouped per partition, <= 10,000 rows per message
    got = pktstream.consume(topic, bootstrap_servers=bootstrap, format=fmt)
    assert got.num_rows == 3000
    assert got.column("_error").null_count == 3000
    assert by_frame(values(got)).cast(expected.schema).equals(expected)
    # The timestamp keeps its nanoseconds and its type.
    assert got.schema.field("ts").type == pa.timestamp("ns", tz="UTC")


def test_raw_format_is_metrons_layout_and_decodes_back(bootstrap, topic_factory, synthetic):
    topic = topic_factory(partitions=2)
    report = pktstream.produce_pcap(synthetic, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    assert report.delivered == 3000 and report.failed == 0
    # Byte for byte with another client: key = timestamp (µs, 8 bytes big-endian), value = frame.
    msgs = confluent_messages(bootstrap, topic, 3000)
    assert len(msgs) == 3000
    sent = sorted((struct.unpack(">q", m.key())[0], m.value(), dict(m.headers())) for m in msgs)
    frames = sorted(pcap_frames(synthetic))
    assert [(ts, frame) for ts, frame, _ in frames] == [(ts, v) for ts, v, _ in sent]
    assert all(h["link_type"] == b"1" for _, _, h in sent)
    assert sorted(int(h["wirelen"]) for _, _, h in sent) == sorted(orig for _, _, orig in frames)
    # And pktstream decodes the frames into the same packet rows (timestamps at µs precision).
    got = pktstream.consume(topic, bootstrap_servers=bootstrap, format="raw")
    expected = pktstream.read_pcap(synthetic)
    drop = ["frame_number", "interface_id"]
    key = [("ts", "ascending"), ("caplen", "ascending"), ("tcp_seq", "ascending"), ("src_port", "ascending")]
    a = values(got).drop_columns(drop).sort_by(key)
    b = expected.drop_columns(drop).sort_by(key)
    assert a.equals(b)


def test_produce_pcap_sends_only_what_the_bpf_filter_keeps(bootstrap, topic_factory):
    want = pktstream.read_pcap(SAMPLE, bpf="udp")
    assert 0 < want.num_rows < pktstream.read_pcap(SAMPLE).num_rows
    topic = topic_factory()
    report = pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, bpf="udp", progress=False)
    assert report.delivered == want.num_rows and report.failed == 0
    got = pktstream.consume(topic, bootstrap_servers=bootstrap, format="json")
    # frame_number stays the position in the file.
    assert by_frame(values(got)).cast(want.schema).equals(want)
    raw = topic_factory()
    report = pktstream.produce_pcap(SAMPLE, raw, bootstrap_servers=bootstrap, format="raw", bpf="udp", progress=False)
    assert report.delivered == want.num_rows
    with pytest.raises(ValueError, match="syntax error"):
        pktstream.produce_pcap(SAMPLE, raw, bootstrap_servers=bootstrap, bpf="udp and", progress=False)


def test_csv_lines_parse_with_the_standard_library(bootstrap, topic_factory, sample):
    import csv

    import pandas as pd

    topic = topic_factory()
    cols = ["frame_number", "ts", "src_ip", "dst_ip", "ip_proto", "src_port", "dst_port"]
    report = pktstream.produce_pcap(
        SAMPLE, topic, bootstrap_servers=bootstrap, format="csv", columns=cols, progress=False
    )
    assert report.delivered == sample.num_rows
    msgs = confluent_messages(bootstrap, topic, sample.num_rows)
    rows = sorted((next(csv.reader([m.value().decode()])) for m in msgs), key=lambda r: int(r[0]))
    expected = sample.select(cols).to_pandas().astype(object).where(lambda d: d.notna(), None).to_dict("records")
    for got, want in zip(rows, expected):
        assert int(got[0]) == want["frame_number"]
        assert pd.Timestamp(got[1]) == pd.Timestamp(want["ts"]) and got[1].endswith("+00:00")
        assert got[2:4] == [want["src_ip"] or "", want["dst_ip"] or ""]
        assert got[4:] == ["" if want[c] is None else str(int(want[c])) for c in cols[4:]]


def test_any_arrow_table_round_trips_with_its_own_schema(bootstrap, topic_factory):
    topic = topic_factory(partitions=2)
    n = 5000
    events = pa.table(
        {
            "eventid": pa.array([f"e{i}" for i in range(n)]),
            "src_ip4": pa.array([f"10.0.{i % 7}.{i % 250}" for i in range(n)]),
            "dst_port": pa.array([i % 65536 for i in range(n)], pa.int32()),
            "duration": pa.array([i / 7 for i in range(n)], pa.float64()),
            "@timestamp": pa.array([1_700_000_000_000_000 + i for i in range(n)], pa.timestamp("us", "UTC")),
        }
    )
    report = pktstream.produce(events, topic, bootstrap_servers=bootstrap, key="src_ip4", progress=False)
    assert report.delivered == n
    got = pktstream.consume(topic, bootstrap_servers=bootstrap, schema=events.schema)
    assert values(got).sort_by("dst_port").sort_by([("@timestamp", "ascending")]).equals(events)
    # Rows with one key share a partition, in order.
    by_key = {}
    for row in got.select(["src_ip4", "_partition", "_offset", "@timestamp"]).to_pylist():
        by_key.setdefault(row["src_ip4"], set()).add(row["_partition"])
    assert all(len(p) == 1 for p in by_key.values())


def test_polars_and_pandas_frames_produce_like_pyarrow(bootstrap, topic_factory):
    import pandas as pd
    import polars as pl

    df = pd.DataFrame({"branch": ["north", "south", "east"], "amount": [1.5, 2.0, 3.25]})
    for data in (df, pl.from_pandas(df), pa.RecordBatch.from_pandas(df, preserve_index=False)):
        topic = topic_factory()
        assert pktstream.produce(data, topic, bootstrap_servers=bootstrap, progress=False).delivered == 3
        got = pktstream.consume(topic, bootstrap_servers=bootstrap, schema=pa.schema({"branch": pa.string(), "amount": pa.float64()}))
        assert values(got).to_pandas().equals(df)


# --- keys and partitions ---------------------------------------------------------------------


def test_flow_keys_put_both_directions_on_one_partition(bootstrap, topic_factory, synthetic):
    expected = pktstream.read_pcap(synthetic)
    placements = {}
    for fmt in ("json", "arrow"):
        topic = topic_factory(partitions=4)
        pktstream.produce_pcap(synthetic, topic, bootstrap_servers=bootstrap, format=fmt, progress=False)
        got = pktstream.consume(topic, bootstrap_servers=bootstrap, format=fmt)
        flows = got.filter(pc.is_valid(got["community_id"])).select(["community_id", "_partition", "frame_number"])
        per_flow = {}
        for r in flows.to_pylist():
            per_flow.setdefault(r["community_id"], set()).add(r["_partition"])
        assert all(len(p) == 1 for p in per_flow.values())
        # Bidirectional flows exist in the capture, so this covers both directions.
        assert len(per_flow) < expected.filter(pc.is_valid(expected["community_id"])).num_rows
        placements[fmt] = {k: next(iter(v)) for k, v in per_flow.items()}
        # Within a partition, a flow's packets keep capture order.
        for part in range(4):
            frames = flows.filter(pc.equal(flows["_partition"], part))["frame_number"].to_pylist()
            assert frames == sorted(frames)
    # json (librdkafka's murmur2 partitioner) and arrow (pktstream's own) agree on every flow.
    assert placements["json"] == placements["arrow"]


def test_keys_land_where_java_compatible_clients_put_them(bootstrap, topic_factory):
    from confluent_kafka import Producer

    topic_ps, topic_ck = topic_factory(partitions=5), topic_factory(partitions=5)
    keys = [f"key-{i}" for i in range(200)]
    pktstream.produce(pa.table({"k": keys}), topic_ps, key="k", bootstrap_servers=bootstrap, progress=False)
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for k in keys:
        p.produce(topic_ck, value=b"{}", key=k.encode())
    assert p.flush(30) == 0
    ours = {r["_key"]: r["_partition"] for r in pktstream.consume(topic_ps, bootstrap_servers=bootstrap, schema=pa.schema({"k": pa.string()})).to_pylist()}
    theirs = {r["_key"]: r["_partition"] for r in pktstream.consume(topic_ck, bootstrap_servers=bootstrap, schema=pa.schema({"k": pa.string()})).to_pylist()}
    assert ours == theirs and len(set(ours.values())) == 5


# --- interoperability ------------------------------------------------------------------------


def test_json_from_pktstream_reads_with_kafka_python_and_confluent(bootstrap, topic_factory, sample):
    from kafka import KafkaConsumer

    topic = topic_factory()
    pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, progress=False)
    kc = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"kp-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=15000,
        session_timeout_ms=6000,
    )
    records = []
    for m in kc:
        records.append(json.loads(m.value))
        if len(records) == sample.num_rows:
            break
    kc.close()
    expected = {r["frame_number"]: r for r in sample.to_pylist()}
    assert len(records) == sample.num_rows
    for r in records:
        want = expected[r["frame_number"]]
        assert r.get("src_ip") == want["src_ip"] and r.get("dst_port") == want["dst_port"]
        assert r["ts"].startswith(want["ts"].strftime("%Y-%m-%dT%H:%M:%S.%f"))
        assert all(want[k] is None for k in want if k not in r)  # nulls are left out
    msgs = confluent_messages(bootstrap, topic, sample.num_rows)
    assert sorted(json.loads(m.value())["frame_number"] for m in msgs) == list(range(1, sample.num_rows + 1))


def test_json_from_other_clients_consumes_into_arrow(bootstrap, topic_factory):
    from confluent_kafka import Producer

    from kafka import KafkaProducer

    topic = topic_factory(partitions=2)
    kp = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(100):
        kp.send(topic, json.dumps({"src_ip4": f"10.0.0.{i}", "in_bytes": i, "@timestamp": "2024-05-01T10:00:00Z"}).encode())
    kp.flush()
    kp.close()
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(100, 200):
        p.produce(topic, json.dumps({"src_ip4": f"10.0.0.{i}", "in_bytes": i, "extra": [1, 2]}).encode())
    p.produce(topic, b"{not json")
    assert p.flush(30) == 0
    schema = pa.schema({"src_ip4": pa.string(), "in_bytes": pa.int64(), "@timestamp": pa.timestamp("ms", "UTC")})
    got = pktstream.consume(topic, bootstrap_servers=bootstrap, schema=schema)
    assert got.num_rows == 201
    good = got.filter(pc.is_null(got["_error"]))
    assert sorted(good["in_bytes"].to_pylist()) == list(range(200))
    bad = got.filter(pc.is_valid(got["_error"]))
    assert bad.num_rows == 1 and bad["in_bytes"].null_count == 1
    assert good.filter(pc.less(good["in_bytes"], 100))["@timestamp"].null_count == 0


# --- consumer groups ---------------------------------------------------------------------------


def test_group_commits_and_resumes_without_gaps_or_duplicates(bootstrap, topic_factory):
    topic = topic_factory(partitions=3)
    n = 3000
    pktstream.produce(pa.table({"i": list(range(n))}), topic, key="i", bootstrap_servers=bootstrap, progress=False)
    group = f"g-{uuid.uuid4().hex[:8]}"
    schema = pa.schema({"i": pa.int64()})
    seen = []
    with pktstream.Consumer(topic, group_id=group, bootstrap_servers=bootstrap, schema=schema) as c:
        while len(seen) < 1000:
            b = c.read_batch(max_rows=250, timeout=10)
            seen += b["i"].to_pylist()
        c.commit()
        # Read but not committed: a restart must deliver these again (at-least-once).
        uncommitted = c.read_batch(max_rows=100, timeout=10)["i"].to_pylist()
        assert uncommitted
    rest = pktstream.consume(topic, group_id=group, bootstrap_servers=bootstrap, schema=schema, timeout=5)
    again = rest["i"].to_pylist()
    assert set(uncommitted) <= set(again)
    assert sorted(seen + again) == list(range(n))
    # consume() committed: the group is now at the end.
    empty = pktstream.consume(topic, group_id=group, bootstrap_servers=bootstrap, schema=schema, timeout=3)
    assert empty.num_rows == 0


def test_consumer_reports_positions_seeks_and_hides_secrets(bootstrap, topic_factory):
    topic = topic_factory()
    pktstream.produce(pa.table({"i": list(range(10))}), topic, bootstrap_servers=bootstrap, progress=False)
    c = pktstream.Consumer(
        topic,
        bootstrap_servers=bootstrap,
        schema=pa.schema({"i": pa.int64()}),
        config={"sasl.password": "hunter2", "client.id": "pktstream-test"},
    )
    try:
        b = c.read_batch(max_rows=4, timeout=10)
        assert b["i"].to_pylist() == [0, 1, 2, 3] and b["_offset"].to_pylist() == [0, 1, 2, 3]
        assert c.positions() == {(topic, 0): 4}
        c.seek(topic, 0, 8)
        assert c.read_batch(timeout=10)["i"].to_pylist() == [8, 9]
        assert c.assignment() == [(topic, 0)]
        assert "hunter2" not in repr(c) and c.config["sasl.password"] == "***"
    finally:
        c.close()
    with pytest.raises(ValueError, match="closed"):
        c.read_batch(1, 0.1)


# --- errors ------------------------------------------------------------------------------------


def test_unknown_topic_is_a_typed_error_naming_it(bootstrap):
    with pytest.raises(pktstream.UnknownTopicError, match="no-such-topic") as e:
        pktstream.produce_pcap(SAMPLE, "no-such-topic", bootstrap_servers=bootstrap, progress=False)
    assert isinstance(e.value, LookupError) and e.value.code == "UNKNOWN_TOPIC_OR_PART"
    with pytest.raises(pktstream.UnknownTopicError):
        pktstream.consume("no-such-topic", bootstrap_servers=bootstrap)


def test_unreachable_broker_times_out_promptly():
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    t0 = time.monotonic()
    with pytest.raises(pktstream.KafkaTimeoutError, match="no Kafka broker answered") as e:
        pktstream.produce_pcap(SAMPLE, "t", bootstrap_servers=f"127.0.0.1:{port}", connect_timeout=2, progress=False)
    assert time.monotonic() - t0 < 10
    assert isinstance(e.value, TimeoutError) and e.value.retriable


def test_invalid_config_is_a_typed_error_without_the_value(bootstrap, topic_factory):
    with pytest.raises(pktstream.KafkaConfigError, match="no.such.property") as e:
        pktstream.produce_pcap(
            SAMPLE, topic_factory(), bootstrap_servers=bootstrap, config={"no.such.property": "s3cret"}, progress=False
        )
    assert "s3cret" not in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(pktstream.KafkaConfigError):
        pktstream.Consumer("t", bootstrap_servers=bootstrap, config={"acks": "banana"})


def test_message_too_large_names_the_cause(bootstrap, topic_factory):
    topic = topic_factory()
    big = pa.table({"blob": ["x" * 5000]})
    with pytest.raises(pktstream.KafkaError) as e:
        pktstream.produce(big, topic, bootstrap_servers=bootstrap, config={"message.max.bytes": 2000}, progress=False)
    assert e.value.code == "MSG_SIZE_TOO_LARGE", e.value


def test_bad_options_are_value_errors(bootstrap, topic_factory):
    topic = topic_factory()
    with pytest.raises(ValueError, match="format must be one of"):
        pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, format="xml")
    with pytest.raises(ValueError, match="unknown column"):
        pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, columns=["nope"], progress=False)
    with pytest.raises(ValueError, match="needs a community_id column"):
        pktstream.produce(pa.table({"a": [1]}), topic, key="flow", bootstrap_servers=bootstrap, progress=False)
    with pytest.raises(ValueError, match="needs a capture file"):
        pktstream.produce(pa.table({"a": [1]}), topic, format="raw", bootstrap_servers=bootstrap, progress=False)
    with pytest.raises(TypeError, match="cannot produce"):
        pktstream.produce(object(), topic, bootstrap_servers=bootstrap)
    with pytest.raises(FileNotFoundError):
        pktstream.produce_pcap(DATA / "missing.pcap", topic, bootstrap_servers=bootstrap)


def test_a_raising_progress_callback_stops_and_reports_what_was_delivered(bootstrap, topic_factory, synthetic):
    topic = topic_factory()

    class Stop(Exception):
        pass

    def progress(r):
        if r.rows >= 1000:
            raise Stop

    with pytest.raises(Stop) as e:
        pktstream.produce_pcap(synthetic, topic, bootstrap_servers=bootstrap, batch_size=500, progress=progress)
    report = e.value.report
    assert 1000 <= report.rows < 3000 and report.interrupted
    assert report.delivered == report.messages and report.failed == 0
    assert pktstream.consume(topic, bootstrap_servers=bootstrap).num_rows == report.delivered


# --- broker crash ------------------------------------------------------------------------------


def test_broker_killed_and_restarted_mid_produce_loses_and_duplicates_nothing(restartable_broker, tmp_path):
    import threading
    import time

    path = tmp_path / "100k.pcap"
    synth.write_pcap(str(path), 100_000, seed=5)
    broker = restartable_broker
    bootstrap = broker.bootstrap_servers
    pktstream.create_topic("crash", partitions=3, bootstrap_servers=bootstrap)
    delivered_before_kill = threading.Event()
    last = {"delivered": 0}

    def progress(r):
        last["delivered"] = r.delivered
        if r.delivered >= 20_000:
            delivered_before_kill.set()

    outcome = {}

    def run():
        try:
            outcome["report"] = pktstream.produce_pcap(
                path,
                "crash",
                bootstrap_servers=bootstrap,
                columns=["frame_number", "ts", "src_ip", "dst_ip", "src_port", "dst_port", "ip_proto"],
                batch_size=2000,
                progress=progress,
            )
        except BaseException as e:  # surfaced below
            outcome["error"] = e

    producer = threading.Thread(target=run)
    producer.start()
    assert delivered_before_kill.wait(60), "the producer never got going"
    broker.kill()  # SIGKILL: no clean shutdown
    at_kill = last["delivered"]
    assert at_kill < 100_000, "the broker must die mid-produce"
    time.sleep(1.0)
    broker.restart()
    producer.join(240)
    assert not producer.is_alive(), "produce_pcap did not finish after the broker came back"
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert report.seconds > 1.0  # the producer waited through the outage
    assert (report.rows, report.delivered, report.failed) == (100_000, 100_000, 0)
    got = pktstream.consume("crash", bootstrap_servers=bootstrap, schema=pa.schema({"frame_number": pa.uint64()}))
    frames = got["frame_number"].to_pylist()
    assert len(frames) == 100_000, f"{len(frames) - len(set(frames))} duplicates"
    assert sorted(frames) == list(range(1, 100_001))


# --- command line ------------------------------------------------------------------------------


def test_cli_produce_then_consume_to_parquet(bootstrap, tmp_path, sample):
    import subprocess
    import sys

    import pyarrow.parquet as pq

    topic = f"cli-{uuid.uuid4().hex[:8]}"
    cli = [sys.executable, "-m", "pktstream.cli"]
    p = subprocess.run(
        [*cli, "produce", str(SAMPLE), "-t", topic, "-b", bootstrap, "--create-topic", "2", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert f"{sample.num_rows} rows -> {sample.num_rows} messages, {sample.num_rows} delivered, 0 failed" in p.stderr
    out = tmp_path / "out.parquet"
    c = subprocess.run(
        [*cli, "consume", "-t", topic, "-g", "cli", "-b", bootstrap, "--max", "150", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert c.returncode == 0, c.stderr
    first = pq.read_table(out)
    assert first.num_rows == 150
    # The group committed what was written: the next run gets exactly the rest, as JSON lines.
    c = subprocess.run(
        [*cli, "consume", "-t", topic, "-g", "cli", "-b", bootstrap, "--idle-timeout", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert c.returncode == 0, c.stderr
    rest = [json.loads(line) for line in c.stdout.splitlines()]
    frames = sorted(first["frame_number"].to_pylist() + [r["frame_number"] for r in rest])
    assert frames == list(range(1, sample.num_rows + 1))
    bad = subprocess.run([*cli, "produce", str(SAMPLE), "-t", "nope", "-b", bootstrap], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_cli_demo_runs_the_whole_path_on_its_own_broker(sample):
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "pktstream.cli", "demo", "--no-progress"], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr
    n = sample.num_rows
    assert f"{n} rows -> {n} messages, {n} delivered, 0 failed" in p.stdout
    assert f"consumed {n} rows back into Arrow" in p.stdout
    tcp = sample.filter(pc.equal(sample["ip_proto"], 6)).num_rows
    assert f"tcp {tcp:,}" in " ".join(p.stdout.split())


# --- decoding values read by other clients -----------------------------------------------------


def test_decode_values_matches_the_consumer_for_every_format(bootstrap, topic_factory, synthetic):
    """Values read by another client (here confluent-kafka, as Spark's Kafka source would) decode
    exactly as pktstream's own consumer decodes them."""
    import time

    from confluent_kafka import Consumer as CKConsumer

    order = [("ts", "ascending"), ("caplen", "ascending"), ("tcp_seq", "ascending"), ("src_port", "ascending")]
    for fmt in ("json", "raw", "arrow"):
        topic = topic_factory()
        pktstream.produce_pcap(synthetic, topic, bootstrap_servers=bootstrap, format=fmt, progress=False)
        ours = values(pktstream.consume(topic, bootstrap_servers=bootstrap, format=fmt))
        c = CKConsumer(consumer_config(bootstrap))
        c.subscribe([topic])
        msgs, idle, deadline = [], 0.0, time.monotonic() + 30
        while time.monotonic() < deadline and (not msgs or idle < 2.0):
            m = c.poll(0.5)
            if m is None:
                idle += 0.5
            else:
                msgs.append(m)
                idle = 0.0
        c.close()
        decoded = pktstream.decode_values(
            pa.array([m.value() for m in msgs], pa.binary()),
            format=fmt,
            keys=pa.array([m.key() for m in msgs], pa.binary()),
        )
        assert decoded.num_rows == 3000 and decoded.column("_error").null_count == 3000
        got = pa.Table.from_batches([decoded]).drop_columns(["_error", "_message"])
        # frame_number is a running count per reader; without the message headers, a raw
        # frame's wire length is unknown (taken as its captured length).
        drop = ["frame_number"] + (["wirelen"] if fmt == "raw" else [])
        a = got.drop_columns(drop).sort_by(order)
        b = ours.drop_columns(drop).sort_by(order)
        assert a.equals(b), fmt


def test_binary_format_hands_out_frames_and_raw_headers(bootstrap, topic_factory):
    topic = topic_factory()
    pktstream.produce_pcap(SAMPLE, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    got = pktstream.consume(topic, bootstrap_servers=bootstrap, format="binary")
    frames = sorted(pcap_frames(SAMPLE))
    rows = sorted(
        (struct.unpack(">q", r["_key"])[0], r["value"], r["wirelen"], r["link_type"]) for r in got.to_pylist()
    )
    assert [(ts, f, orig) for ts, f, orig in frames] == [(ts, v, w) for ts, v, w, _ in rows]
    assert {lt for *_, lt in rows} == {1}


def test_arrow_messages_fit_a_stock_brokers_message_size(bootstrap, topic_factory, tmp_path):
    """Apache Kafka's default limit is ~1 MB a record batch: wide packet rows at the default
    rows_per_message would exceed it, so messages shrink to fit and every row arrives."""
    path = tmp_path / "wide.pcap"
    synth.write_pcap(str(path), 30_000, seed=3)
    topic = topic_factory(partitions=1)
    report = pktstream.produce_pcap(path, topic, bootstrap_servers=bootstrap, format="arrow", progress=False)
    assert report.failed == 0 and report.delivered == report.messages
    assert report.messages > 3, "30,000 wide rows cannot fit in three ~1 MB messages"
    sizes = pktstream.consume(topic, bootstrap_servers=bootstrap, format="binary").column("value")
    assert max(len(v) for v in sizes.to_pylist()) <= 1_000_000
    back = pktstream.consume(topic, bootstrap_servers=bootstrap, format="arrow", columns=["frame_number"])
    assert sorted(back["frame_number"].to_pylist()) == list(range(1, 30_001))
