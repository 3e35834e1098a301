"""Flows into Kafka and the seeds' distance pipeline: ``pktstream flows``, :func:`pktstream.produce_flows`
and capture -> flows -> Kafka -> windowed distances -> results topic, against the real broker (loopback).

The pipeline's output is compared exactly with :func:`pktstream.distance.pairs` computed directly
on the flow events (:func:`pktstream.suricata_events` of :func:`pktstream.flows`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pktstream
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pktstream import distance, pipelines
from pktstream._flows import SURICATA_SCHEMA
from pktstream.testing import netflow, synth

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample.pcap"
FEATURES = list(pipelines.DEFAULT_FEATURES)
OUT_SCHEMA = pa.schema([
    ("eventid_1", pa.string()), ("eventid_2", pa.string()), ("distance", pa.float64()),
    ("timestamp", pa.timestamp("us", tz="UTC")), ("key", pa.string()),
    ("window_start", pa.timestamp("us", tz="UTC")),
])
GROUP_COLS = ["key", "window_start", "eventid_1", "eventid_2"]


def cli(*args: str) -> subprocess.CompletedProcess:
    """``pktstream ...`` as a user runs it, with this checkout's package first on the path."""
    here = str(Path(pktstream.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]),
           "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "pktstream.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def synth_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic capture with a few thousand flows (IPv4 and IPv6) over ~2.7 s."""
    path = tmp_path_factory.mktemp("flows") / "synth.pcap"
    synth.write_pcap(str(path), 5000, seed=3)
    return path


def sort_events(t: pa.Table) -> pa.Table:
    return t.select(SURICATA_SCHEMA.names).sort_by("eventid")


# -- the layout ----------------------------------------------------------------------------------------

def test_suricata_layout_maps_directions_and_is_deterministic(synth_pcap) -> None:
    table = pktstream.flows(synth_pcap)
    events = pktstream.suricata_events(table)
    assert events.schema == SURICATA_SCHEMA
    for f in netflow.SCHEMA:                     # what the pipeline decodes: the generator's types
        assert events.schema.field(f.name).type == f.type, f.name
    v4 = table.filter(pc.equal(table["ip_version"], 4))
    assert events.num_rows == v4.num_rows < table.num_rows
    assert events["src_ip4"].equals(v4["src_ip"]) and events["dst_ip4"].equals(v4["dst_ip"])
    assert events["out_bytes"].to_pylist() == v4["src2dst_bytes"].to_pylist()
    assert events["out_packets"].to_pylist() == v4["src2dst_packets"].to_pylist()
    assert events["in_bytes"].to_pylist() == v4["dst2src_bytes"].to_pylist()
    assert events["in_packets"].to_pylist() == v4["dst2src_packets"].to_pylist()
    assert events["nproto"].to_pylist() == v4["ip_proto"].to_pylist()
    assert events["src_port"].to_pylist() == [p or 0 for p in v4["src_port"].to_pylist()]
    np.testing.assert_allclose(events["duration"].to_numpy(),
                               v4["duration"].cast(pa.int64()).to_numpy() / 1e9)
    assert events["@timestamp"].cast(pa.int64()).to_pylist() == [
        t // 1000 for t in v4["last_seen"].cast(pa.int64()).to_pylist()]
    assert len(set(events["eventid"].to_pylist())) == events.num_rows
    assert events.equals(pktstream.suricata_events(pktstream.flows(synth_pcap)))     # same ids again
    with_null = pktstream.suricata_events(table, ipv6="null")
    assert with_null.num_rows == table.num_rows
    assert with_null["src_ip4"].null_count == table.num_rows - v4.num_rows


# -- (a) the CLI ---------------------------------------------------------------------------------------

def test_cli_parquet_equals_flows(tmp_path) -> None:
    out = tmp_path / "x.parquet"
    done = cli("flows", str(SAMPLE), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert pq.read_table(out).equals(pktstream.flows(SAMPLE))
    assert "wrote 196 flows" in done.stderr
    assert "200 packets -> 196 flows (by expiration: 196 end); 0 evicted, 3 not-IP packets" in done.stderr
    assert "packets/s" in done.stderr


def test_cli_options_and_suricata_parquet(tmp_path, synth_pcap) -> None:
    out = tmp_path / "s.parquet"
    done = cli("flows", str(synth_pcap), "-o", str(out), "--layout", "suricata", "--idle-timeout", "0.5",
               "--active-timeout", "1", "--tcp-close")
    assert done.returncode == 0, done.stderr
    table = pktstream.flows(synth_pcap, idle_timeout=0.5, active_timeout=1, tcp_close=True)
    assert sort_events(pq.read_table(out)).equals(sort_events(pktstream.suricata_events(table)))
    reasons = {r["values"]: r["counts"] for r in table["expiration"].value_counts().to_pylist()}
    assert {"idle", "end"} <= set(reasons)
    for reason, n in reasons.items():
        assert f"{n:,} {reason}" in done.stderr


def test_cli_top_flows_table() -> None:
    done = cli("flows", str(SAMPLE), "--top", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Top flows by bytes (top 3):" and len(lines) == 5
    biggest = pktstream.flows(SAMPLE).sort_by([("bytes", "descending")])["bytes"][0].as_py()
    assert lines[2].split()[0] == f"{biggest:,}"
    assert "196 flows" in done.stderr


def test_cli_rejects_output_and_topic(tmp_path) -> None:
    done = cli("flows", str(SAMPLE), "-o", str(tmp_path / "a.parquet"), "--topic", "t")
    assert done.returncode != 0


# -- (b) produce_flows ---------------------------------------------------------------------------------

def consume_events(bootstrap: str, topic: str) -> pa.Table:
    t = pktstream.consume(topic, bootstrap_servers=bootstrap, schema=SURICATA_SCHEMA, timeout=10.0)
    assert t.num_rows == 0 or pc.all(pc.is_null(t["_error"])).as_py()
    return t


def test_produce_flows_suricata_every_flow_once(bootstrap, topic_factory, synth_pcap) -> None:
    topic = topic_factory(partitions=3)
    report = pktstream.produce_flows(synth_pcap, topic, bootstrap_servers=bootstrap, layout="suricata",
                                     progress=False, batch_size=500)
    ref = pktstream.suricata_events(pktstream.flows(synth_pcap))
    table = pktstream.flows(synth_pcap)
    assert report.flows == table.num_rows
    assert report.skipped_ipv6 == table.num_rows - ref.num_rows > 0
    assert report.rows == report.messages == report.delivered == ref.num_rows
    assert report.expirations == {"end": table.num_rows}
    assert report.flow_stats["packets"] == 5000
    got = consume_events(bootstrap, topic)
    assert got.num_rows == ref.num_rows
    assert len(set(got["eventid"].to_pylist())) == ref.num_rows          # every flow once
    assert sort_events(got).equals(sort_events(ref))                     # with the right fields
    # Keyed by source address: a source's events share a partition.
    per_source = got.group_by("src_ip4").aggregate([("_partition", "count_distinct")])
    assert pc.max(per_source["_partition_count_distinct"]).as_py() == 1
    assert all(k == s.encode() for k, s in zip(got["_key"].to_pylist(), got["src_ip4"].to_pylist()))


def test_produce_flows_native_layout(bootstrap, topic_factory) -> None:
    topic = topic_factory()
    report = pktstream.produce_flows(SAMPLE, topic, bootstrap_servers=bootstrap, layout="native",
                                     progress=False)
    assert report.delivered == report.flows == 196 and report.skipped_ipv6 == 0
    # The flow columns as they are; ``duration`` (duration[ns]) travels as integer nanoseconds.
    schema = pa.schema([f.with_type(pa.int64()) if f.name == "duration" else f for f in pktstream.flow_schema()])
    got = pktstream.consume(topic, bootstrap_servers=bootstrap, schema=schema, timeout=10.0)
    assert got.num_rows == 196 and pc.all(pc.is_null(got["_error"])).as_py()
    ref = pktstream.flows(SAMPLE)
    got = got.select(schema.names).sort_by("flow_id")
    for name in schema.names:
        want = ref[name].cast(pa.int64()) if name == "duration" else ref[name]
        assert got[name].to_pylist() == want.to_pylist(), name


def test_cli_topic(bootstrap, topic_factory, synth_pcap) -> None:
    topic = topic_factory(partitions=2)
    done = cli("flows", str(synth_pcap), "--topic", topic, "-b", bootstrap, "--no-progress")
    assert done.returncode == 0, done.stderr
    ref = pktstream.suricata_events(pktstream.flows(synth_pcap))
    assert f"sent {ref.num_rows:,} of {ref.num_rows:,} flow events to {topic} (suricata layout)" in done.stderr
    assert "5,000 packets -> 4,916 flows" in done.stderr
    assert sort_events(consume_events(bootstrap, topic)).equals(sort_events(ref))


# -- (c) the seeds' pipeline -----------------------------------------------------------------------------

def reference(events: pa.Table, **kw) -> pa.Table:
    ref = distance.pairs(events, key="src_ip4", features=FEATURES, id="eventid", time="@timestamp",
                         window="5s", **kw)
    return pa.table({
        "key": ref["key"], "window_start": pc.cast(ref["window_start"], OUT_SCHEMA.field("window_start").type),
        "timestamp": pc.cast(ref["window_end"], OUT_SCHEMA.field("timestamp").type),
        "eventid_1": ref["id_1"], "eventid_2": ref["id_2"], "distance": ref["distance"],
    })


def assert_same_pairs(got: pa.Table, ref: pa.Table) -> None:
    cols = [*GROUP_COLS, "timestamp", "distance"]
    got = got.select(cols).sort_by([(c, "ascending") for c in GROUP_COLS])
    ref = ref.select(cols).sort_by([(c, "ascending") for c in GROUP_COLS])
    assert got.num_rows == ref.num_rows
    for c in [*GROUP_COLS, "timestamp"]:
        assert got[c].equals(ref[c]), c
    np.testing.assert_allclose(got["distance"].to_numpy(), ref["distance"].to_numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("idle_timeout", [120.0, 0.3])
def test_capture_to_flows_to_kafka_to_distances(bootstrap, topic_factory, synth_pcap, idle_timeout) -> None:
    """synth_pcap -> flows -> Kafka (JSON events) -> windowed distances -> results topic. With a short
    idle timeout most flows end early and are emitted while the synth_pcap is read: still in event
    time order, so nothing is late."""
    flows_topic, pairs_topic = topic_factory(partitions=3), topic_factory(partitions=2)
    sent = pktstream.produce_flows(synth_pcap, flows_topic, bootstrap_servers=bootstrap, progress=False,
                                   idle_timeout=idle_timeout)
    report = pipelines.netflow_distances(flows_topic, pairs_topic, bootstrap_servers=bootstrap,
                                         group_id=f"flows-{uuid.uuid4().hex[:8]}", idle_timeout=2.0,
                                         idle_partition_timeout=2.0)
    print(f"\nflows: {sent}\npipeline: {report}")
    events = pktstream.suricata_events(pktstream.flows(synth_pcap, idle_timeout=idle_timeout))
    ref = reference(events)
    assert report.stopped == "idle"
    assert (report.events, report.invalid, report.late_events) == (events.num_rows, 0, 0) == (sent.delivered, 0, 0)
    assert report.pairs == report.delivered == ref.num_rows > 1000
    got = pktstream.consume(pairs_topic, bootstrap_servers=bootstrap, schema=OUT_SCHEMA, timeout=10.0)
    assert pc.all(pc.is_null(got["_error"])).as_py()
    assert_same_pairs(got, ref)


def test_cli_flows_then_cli_distances(bootstrap, topic_factory, synth_pcap) -> None:
    """The two commands chained, as docs/flows.md shows them."""
    flows_topic, pairs_topic = topic_factory(partitions=1), topic_factory(partitions=1)
    done = cli("flows", str(synth_pcap), "-t", flows_topic, "-b", bootstrap, "--no-progress")
    assert done.returncode == 0, done.stderr
    dist = cli("distances", "--in-topic", flows_topic, "--out-topic", pairs_topic, "-b", bootstrap,
               "--group", f"cli-{uuid.uuid4().hex[:8]}", "--idle-timeout", "2")
    assert dist.returncode == 0, dist.stderr
    ref = reference(pktstream.suricata_events(pktstream.flows(synth_pcap)))
    assert " (0 late, 0 invalid) -> " in dist.stdout
    assert f"{ref.num_rows:,} pairs, {ref.num_rows:,} delivered" in dist.stdout
    got = pktstream.consume(pairs_topic, bootstrap_servers=bootstrap, schema=OUT_SCHEMA, timeout=10.0)
    assert_same_pairs(got, ref)


# -- the docs ------------------------------------------------------------------------------------------

def test_docs_kafka_section_runs(bootstrap, tmp_path, monkeypatch, capsys) -> None:
    """The Python block of docs/flows.md's "Flows into Kafka and the distance pipeline" runs as written
    (against the test broker, with topics and a file of its own)."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "flows.md").read_text()
    section = text[text.index("## Flows into Kafka and the distance pipeline"):]
    block = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    stem = f"flows-docs-{uuid.uuid4().hex[:8]}"
    block = block.replace("netflow-demo", stem).replace("/tmp/flows-demo.pcap", str(tmp_path / "demo.pcap"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP", bootstrap)
    exec(compile(block, "docs/flows.md", "exec"), {"__name__": "docs"})
    out = capsys.readouterr().out
    assert " (0 late, 0 invalid) -> " in out and "flows from 5,000 packets" in out


# -- flows from a Kafka topic of raw frames ----------------------------------------------------------

FLOW_KEY = ["src_ip", "dst_ip", "src_port", "dst_port", "ip_proto", "vlan_id", "tunnel"]
FLOW_COUNTS = ["packets", "bytes", "src2dst_packets", "src2dst_bytes", "dst2src_packets", "dst2src_bytes"]


def flow_rows(t: pa.Table, columns: list[str]) -> list[tuple]:
    return sorted(tuple(-1 if v is None else v for v in r.values()) for r in t.select(columns).to_pylist())


def test_flows_from_a_raw_topic_equal_the_capture_flows(bootstrap, topic_factory, synth_pcap) -> None:
    """produce_pcap(format="raw") then iter_flows(Consumer(format="binary")): one partition keeps
    the capture's order, so the records are the file's, times included."""
    topic = topic_factory(partitions=1)
    pktstream.produce_pcap(synth_pcap, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    consumer = pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary", timeout=5.0)
    reader = pktstream.iter_flows(consumer, idle_timeout=0.5)
    got = reader.read_all()
    want = pktstream.flows(synth_pcap, idle_timeout=0.5)
    columns = [*FLOW_KEY, *FLOW_COUNTS, "first_seen", "last_seen", "expiration", "community_id"]
    assert got.num_rows == want.num_rows > 1000
    assert flow_rows(got, columns) == flow_rows(want, columns)
    stats = reader.stats
    assert stats["messages"] == 5000 and stats["packets"] == 5000 and stats["kafka_timestamps"] == 0
    assert reader.read_next_batch() is None
    consumer.close()


def test_flows_from_a_partitioned_raw_topic_in_a_group_commit_at_the_end(bootstrap, topic_factory,
                                                                          synth_pcap) -> None:
    """Three partitions (a conversation's frames share one: key="flow"), read in a group: the same
    flows, packets and bytes; the group's offsets are committed once the flows are out, so a
    second run finds nothing new."""
    topic = topic_factory(partitions=3)
    pktstream.produce_pcap(synth_pcap, topic, bootstrap_servers=bootstrap, format="raw", progress=False)
    group = f"flows-{uuid.uuid4().hex[:8]}"
    with pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary", group_id=group,
                            timeout=3.0) as consumer:
        got = pktstream.flows(consumer)
    want = pktstream.flows(synth_pcap)
    assert flow_rows(got, [*FLOW_KEY, *FLOW_COUNTS]) == flow_rows(want, [*FLOW_KEY, *FLOW_COUNTS])
    with pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="binary", group_id=group,
                            timeout=3.0) as again:
        assert pktstream.flows(again).num_rows == 0


def test_flows_from_kafka_need_binary_frames(bootstrap, topic_factory) -> None:
    topic = topic_factory(partitions=1)
    with pktstream.Consumer(topic, bootstrap_servers=bootstrap, format="raw", timeout=1.0) as consumer:
        with pytest.raises(ValueError, match='format="binary"'):
            pktstream.iter_flows(consumer)


def test_raw_topic_to_flow_events_to_distances(bootstrap, topic_factory, synth_pcap) -> None:
    """The pipeline with Kafka on both sides of the meter: raw frames -> flows -> events -> pairs."""
    frames, events, pairs = topic_factory(partitions=1), topic_factory(partitions=2), topic_factory(partitions=1)
    pktstream.produce_pcap(synth_pcap, frames, bootstrap_servers=bootstrap, format="raw", progress=False)
    with pktstream.Consumer(frames, bootstrap_servers=bootstrap, format="binary", timeout=5.0) as consumer:
        sent = pktstream.produce_flows(consumer, events, bootstrap_servers=bootstrap, progress=False)
    report = pipelines.netflow_distances(events, pairs, bootstrap_servers=bootstrap,
                                         group_id=f"raw-{uuid.uuid4().hex[:8]}", idle_timeout=2.0,
                                         idle_partition_timeout=2.0)
    ref = reference(pktstream.suricata_events(pktstream.flows(synth_pcap)))
    assert (report.events, report.late_events) == (sent.delivered, 0)
    assert report.pairs == ref.num_rows > 1000
    got = pktstream.consume(pairs, bootstrap_servers=bootstrap, schema=OUT_SCHEMA, timeout=10.0)
    assert_same_pairs(got, ref)
