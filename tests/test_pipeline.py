"""The netflow distance pipeline end to end against the real broker (loopback), and its generator.

The pipeline's output is compared exactly with :func:`pktstream.distance.pairs` computed on the
generated table; committed offsets are checked by running the same group again; a stopped and
restarted run must cover every pair (duplicates allowed, nothing missing).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pktstream
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pktstream import distance, pipelines
from pktstream.testing import netflow

FEATURES = list(pipelines.DEFAULT_FEATURES)
OUT_SCHEMA = pa.schema([
    ("eventid_1", pa.string()), ("eventid_2", pa.string()), ("distance", pa.float64()),
    ("timestamp", pa.timestamp("us", tz="UTC")), ("key", pa.string()),
    ("window_start", pa.timestamp("us", tz="UTC")),
])
GROUP_COLS = ["key", "window_start", "eventid_1", "eventid_2"]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def flows() -> pa.Table:
    """~3,000 events over ~20 s of event time from 10 sources."""
    return netflow.events(3000, seed=42, rate=150.0, sources=10)


def reference(events: pa.Table, **kw) -> pa.Table:
    ref = distance.pairs(events, key="src_ip4", features=FEATURES, id="eventid", time="@timestamp",
                         window="5s", **kw)
    return pa.table({
        "key": ref["key"], "window_start": pc.cast(ref["window_start"], OUT_SCHEMA.field("window_start").type),
        "timestamp": pc.cast(ref["window_end"], OUT_SCHEMA.field("timestamp").type),
        "eventid_1": ref["id_1"], "eventid_2": ref["id_2"], "distance": ref["distance"],
    })


def output(bootstrap: str, topic: str) -> pa.Table:
    t = pktstream.consume(topic, bootstrap_servers=bootstrap, schema=OUT_SCHEMA, timeout=10.0)
    if t.num_rows == 0:
        return OUT_SCHEMA.empty_table()
    assert t.num_rows == 0 or pc.all(pc.is_null(t["_error"])).as_py()
    return t


def assert_same_pairs(got: pa.Table, ref: pa.Table) -> None:
    """Same (key, window, id pair) rows, distances equal to 1e-9, window ends consistent."""
    cols = [*GROUP_COLS, "timestamp", "distance"]
    got = got.select(cols).sort_by([(c, "ascending") for c in GROUP_COLS])
    ref = ref.select(cols).sort_by([(c, "ascending") for c in GROUP_COLS])
    assert got.num_rows == ref.num_rows
    for c in [*GROUP_COLS, "timestamp"]:
        assert got[c].equals(ref[c]), c
    np.testing.assert_allclose(got["distance"].to_numpy(), ref["distance"].to_numpy(), rtol=1e-9, atol=1e-9)


def dedup(t: pa.Table) -> pa.Table:
    return t.group_by(GROUP_COLS).aggregate([("distance", "min"), ("timestamp", "min")]).rename_columns(
        [*GROUP_COLS, "distance", "timestamp"])


def assert_sorted_within_groups(t: pa.Table) -> None:
    """In each output partition, a group's pairs come in non-decreasing distance order."""
    rows = t.select(["_partition", "_offset", "key", "window_start", "distance"]).sort_by(
        [("_partition", "ascending"), ("_offset", "ascending")]).to_pylist()
    last: dict = {}
    for r in rows:
        g = (r["key"], r["window_start"])
        assert r["distance"] >= last.get(g, -1.0), g
        last[g] = r["distance"]


def run(bootstrap: str, in_topic: str, out_topic: str, group: str, **kw) -> pipelines.PipelineReport:
    kw.setdefault("idle_timeout", 2.0)
    return pipelines.netflow_distances(in_topic, out_topic, bootstrap_servers=bootstrap, group_id=group,
                                       idle_partition_timeout=2.0, **kw)


# -- the generator -------------------------------------------------------------------------------------

def test_generator_is_deterministic_with_the_issue_schema() -> None:
    a = netflow.events(5000, seed=3, rate=500.0, sources=12, start="2024-02-01T12:00:00Z")
    assert a.schema == netflow.SCHEMA
    assert a.equals(netflow.events(5000, seed=3, rate=500.0, sources=12, start="2024-02-01T12:00:00Z"))
    assert not a.equals(netflow.events(5000, seed=4, rate=500.0, sources=12, start="2024-02-01T12:00:00Z"))
    assert a.num_rows == 5000 and a["eventid"].null_count == 0
    assert len(set(a["eventid"].to_pylist())) == 5000
    ts = a["@timestamp"].cast(pa.int64()).to_numpy()
    assert ts[0] == int(dt.datetime(2024, 2, 1, 12, tzinfo=dt.timezone.utc).timestamp() * 1e6)
    assert (np.diff(ts) >= 0).all() and (np.diff(ts) > 0).mean() > 0.99       # increasing, with jitter
    assert 8.5 < (ts[-1] - ts[0]) / 1e6 < 11.5                                  # ~n / rate seconds
    assert len(set(a["src_ip4"].to_pylist())) == 12
    counts = sorted(pc.value_counts(a["src_ip4"]).field("counts").to_pylist())
    assert counts[-1] > 3 * counts[0]                                           # heavy hitter
    ports = a["dst_port"].to_numpy()
    assert 0.45 < (ports == 443).mean() < 0.65 and (ports == 53).mean() > 0.1 and (ports == 80).mean() > 0.1
    sp = a["src_port"].to_numpy()
    assert sp.min() >= 49152 and sp.max() <= 65535
    out_bytes = a["out_bytes"].to_numpy()
    assert np.percentile(out_bytes, 99) > 10 * np.median(out_bytes)             # heavy tail
    assert (a["duration"].to_numpy() >= 0).all() and (a["in_packets"].to_numpy() >= 0).all()
    scans = (a["out_bytes"].to_numpy() == 44) & (a["out_packets"].to_numpy() == 1)
    assert scans.sum() >= 1                                                     # a few anomalies
    assert netflow.events(0).num_rows == 0
    with pytest.raises(ValueError):
        netflow.events(10, sources=0)


# -- the pipeline against the broker -------------------------------------------------------------------

def test_pipeline_output_equals_the_reference(bootstrap, topic_factory, flows) -> None:
    in_topic, out_topic = topic_factory(partitions=3), topic_factory(partitions=3)
    pktstream.produce(flows, in_topic, bootstrap_servers=bootstrap, key="src_ip4", progress=False)
    group = f"pipeline-{uuid.uuid4().hex[:8]}"

    report = run(bootstrap, in_topic, out_topic, group)
    print(f"\npipeline: {report}")
    ref = reference(flows)
    assert report.stopped == "idle"
    assert (report.events, report.invalid, report.late_events) == (3000, 0, 0)
    assert report.pairs == report.delivered == ref.num_rows > 100_000
    assert report.windows == ref.select(["key", "window_start"]).group_by(["key", "window_start"]).aggregate(
        []).num_rows
    got = output(bootstrap, out_topic)
    assert_same_pairs(got, ref)
    assert_sorted_within_groups(got)
    # Committed at the end: every partition's offset is its end, so the same group reads nothing.
    ends = pc.value_counts(pktstream.consume(in_topic, bootstrap_servers=bootstrap, schema=netflow.SCHEMA)
                           ["_partition"]).to_pylist()
    assert report.committed == {(in_topic, e["values"]): e["counts"] for e in ends}
    again = run(bootstrap, in_topic, out_topic, group, idle_timeout=1.0)
    assert (again.events, again.pairs) == (0, 0)
    assert output(bootstrap, out_topic).num_rows == ref.num_rows


def test_options_reach_the_kernel(bootstrap, topic_factory, flows) -> None:
    """top_k and log1p normalisation give what pairs() gives on the same (transformed) table."""
    events = flows.slice(0, 1500)
    in_topic, out_topic = topic_factory(partitions=2), topic_factory(partitions=1)
    pktstream.produce(events, in_topic, bootstrap_servers=bootstrap, key="src_ip4", progress=False)
    report = run(bootstrap, in_topic, out_topic, f"opts-{uuid.uuid4().hex[:8]}", top_k=3, normalize="log1p")
    logged = events
    for f in FEATURES:
        logged = logged.set_column(logged.schema.get_field_index(f), f, pc.log1p(pc.cast(logged[f], pa.float64())))
    ref = reference(logged, top_k=3)
    assert report.pairs == ref.num_rows
    assert_same_pairs(output(bootstrap, out_topic), ref)


@pytest.mark.parametrize("partitions", [1, 3])
def test_restart_covers_every_pair(bootstrap, topic_factory, flows, partitions) -> None:
    """Stop after half the events, run again: every pair is there. With one partition the first run
    has closed windows to emit; with three it may have none (a partition not read yet holds the
    watermark back), and the second run then does everything."""
    in_topic, out_topic = topic_factory(partitions=partitions), topic_factory(partitions=3)
    pktstream.produce(flows, in_topic, bootstrap_servers=bootstrap, key="src_ip4", progress=False)
    group = f"restart-{uuid.uuid4().hex[:8]}"
    ref = reference(flows)

    first = run(bootstrap, in_topic, out_topic, group, max_events=1500, idle_timeout=None)
    assert first.stopped == "max_events" and first.events == 1500
    part1 = output(bootstrap, out_topic)
    assert part1.num_rows == first.pairs
    # Windows closed by the first run are whole: each of its groups equals the reference's group.
    emitted = part1.select(["key", "window_start"]).group_by(["key", "window_start"]).aggregate([])
    assert emitted.num_rows == first.windows
    if partitions == 1:
        assert first.windows > 0
    ref_part = ref.join(emitted, ["key", "window_start"], join_type="inner")
    assert_same_pairs(part1, ref_part)

    second = run(bootstrap, in_topic, out_topic, group)
    assert second.stopped == "idle"
    assert first.events + second.events >= 3000          # uncommitted events are read again
    union = output(bootstrap, out_topic)
    assert union.num_rows == first.pairs + second.pairs
    assert_same_pairs(dedup(union), ref)                  # nothing missing, nothing extra
    third = run(bootstrap, in_topic, out_topic, group, idle_timeout=1.0)
    assert third.events == 0


def test_late_events_are_counted_not_paired(bootstrap, topic_factory, flows) -> None:
    on_time = flows.slice(0, 2000)
    t0 = on_time["@timestamp"][0].as_py()
    late = netflow.events(5, seed=9, start=t0 + dt.timedelta(seconds=1), rate=10.0, sources=1)
    late = late.set_column(1, "src_ip4", on_time["src_ip4"].slice(0, 5).combine_chunks())
    in_topic, out_topic = topic_factory(partitions=1), topic_factory(partitions=1)
    pktstream.produce(on_time, in_topic, bootstrap_servers=bootstrap, key="src_ip4", progress=False)
    pktstream.produce(late, in_topic, bootstrap_servers=bootstrap, key="src_ip4", progress=False)
    # At most 100 events a read: the late ones (after ~13 s of events) come after [t0, t0+5s) closed.
    report = run(bootstrap, in_topic, out_topic, f"late-{uuid.uuid4().hex[:8]}", batch_size=100)
    assert (report.events, report.late_events) == (2005, 5)
    assert_same_pairs(output(bootstrap, out_topic), reference(on_time))


def test_cli_end_to_end(bootstrap, topic_factory) -> None:
    in_topic, out_topic = topic_factory(partitions=2), topic_factory(partitions=1)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    gen = subprocess.run([str(BIN / "python"), "-m", "pktstream.testing.netflow", "--topic", in_topic, "--count", "800",
                          "--rate", "100", "--sources", "6", "--seed", "5", "-b", bootstrap],
                         capture_output=True, text=True, timeout=120, env=env)
    assert gen.returncode == 0, gen.stderr
    assert "800 delivered" in gen.stderr
    cli = subprocess.run([str(BIN / "pktstream"), "distances", "--in-topic", in_topic, "--out-topic", out_topic,
                          "-b", bootstrap, "--group", f"cli-{uuid.uuid4().hex[:8]}", "--window", "5s",
                          "--idle-timeout", "2", "-X", "session.timeout.ms=6000"],
                         capture_output=True, text=True, timeout=180, env=env)
    assert cli.returncode == 0, cli.stderr
    ref = reference(netflow.events(800, seed=5, rate=100.0, sources=6))
    assert "800 events (0 late, 0 invalid) -> " in cli.stdout
    assert f"{ref.num_rows:,} pairs, {ref.num_rows:,} delivered" in cli.stdout
    assert_same_pairs(output(bootstrap, out_topic), ref)
