"""The netflow pipeline's native loop: Ctrl-C, argument checks, and a second group member joining
(a rebalance) without losing a pair or pairing an event with itself.

The end-to-end output checks are in tests/test_pipeline.py; these cover what moved into Rust.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pktstream
import pyarrow.compute as pc
import pytest
from pktstream import pipelines
from pktstream.testing import netflow
from test_pipeline import OUT_SCHEMA, assert_same_pairs, dedup, reference

CHILD = textwrap.dedent("""
    import sys
    from pktstream import pipelines
    try:
        pipelines.netflow_distances(sys.argv[1], sys.argv[2], bootstrap_servers=sys.argv[3],
                                    group_id="ctrl-c", idle_timeout=None,
                                    progress=lambda r: print("running", flush=True))
    except KeyboardInterrupt as e:
        print("interrupted", e.report.stopped, e.report.events, flush=True)
        sys.exit(3)
""")


def test_ctrl_c_stops_the_run_with_its_report(bootstrap, topic_factory) -> None:
    in_topic, out_topic = topic_factory(partitions=1), topic_factory(partitions=1)
    pktstream.produce(netflow.events(50, seed=1), in_topic, bootstrap_servers=bootstrap, progress=False)
    child = subprocess.Popen([sys.executable, "-c", CHILD, in_topic, out_topic, bootstrap],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "running"      # the loop runs (GIL released, waiting)
    time.sleep(1.0)
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert time.monotonic() - sent < 5.0
    assert child.returncode == 3, err
    assert "interrupted interrupted 50" in out


def test_bad_arguments_raise_before_connecting() -> None:
    no_broker = "127.0.0.1:1"
    with pytest.raises(ValueError, match="normalize"):
        pipelines.netflow_distances("a", "b", bootstrap_servers=no_broker, normalize="zscore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metric"):
        pipelines.netflow_distances("a", "b", bootstrap_servers=no_broker, metric="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        pipelines.netflow_distances("a", "b", bootstrap_servers=no_broker, window=0)
    with pytest.raises(ValueError, match="max_events"):
        pipelines.netflow_distances("a", "b", bootstrap_servers=no_broker, max_events=-1)


def test_a_member_joining_loses_nothing_and_pairs_no_event_with_itself(bootstrap, topic_factory) -> None:
    """Two runs of one group on a 4-partition topic, the second joining while the first reads: the
    rebalance revokes partitions from the first. Together they emit every pair (duplicates allowed),
    and no event is ever paired with itself."""
    flows = netflow.events(3000, seed=42, rate=150.0, sources=10)
    in_topic, out_topic = topic_factory(partitions=4), topic_factory(partitions=3)
    pktstream.produce(flows, in_topic, bootstrap_servers=bootstrap, key="src_ip4", progress=False)
    group = f"join-{uuid.uuid4().hex[:8]}"
    reports: dict = {}

    def member(name: str, delay: float) -> None:
        time.sleep(delay)
        reports[name] = pipelines.netflow_distances(in_topic, out_topic, bootstrap_servers=bootstrap,
                                                    group_id=group, idle_timeout=6.0, idle_partition_timeout=1.0,
                                                    batch_size=50)

    threads = [threading.Thread(target=member, args=("a", 0.0)), threading.Thread(target=member, args=("b", 1.5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    print(f"\na: {reports.get('a')}\nb: {reports.get('b')}")
    assert set(reports) == {"a", "b"}
    got = pktstream.consume(out_topic, bootstrap_servers=bootstrap, schema=OUT_SCHEMA, timeout=10.0)
    assert got.num_rows == reports["a"].delivered + reports["b"].delivered
    assert not pc.any(pc.equal(got["eventid_1"], got["eventid_2"])).as_py()
    assert_same_pairs(dedup(got), reference(flows))
