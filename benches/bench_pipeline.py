"""The netflow distance pipeline (:func:`pktstream.pipelines.netflow_distances`) end to end.

Usage::

    .venv/bin/python benches/bench_pipeline.py [--bootstrap H:P] [--events 30000] [--repeat 1]

Produces synthetic netflow events (:func:`pktstream.testing.netflow.events`) to a fresh 3-partition topic
once per scenario, then runs the pipeline over it with a fresh group and output topic, and prints
events/s and pairs/s over the run's active time (first message read to last delivery; the final
idle wait is not counted). Scenarios:

- ``all pairs``: every pair of each (source, 5 s window) group, one message per pair: bound by the
  broker's message rate;
- ``top_k=3``: three nearest per event: few messages, so the pipeline's own per-event work shows;
- ``top_k=3, small reads``: the same with ``batch_size=200``: many small reads and deliveries, so
  per-delivery costs (a producer made per delivery, say) show.

It starts its own Apache Kafka (``pktstream.broker.ApacheKafka``) unless ``--bootstrap`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any, Dict, List

import pktstream
from pktstream import pipelines
from pktstream.broker import ApacheKafka
from pktstream.testing import netflow

SCENARIOS: Dict[str, Dict[str, Any]] = {
    "all pairs": {"events": 3000, "sources": 10, "rate": 150.0, "kw": {}},
    "top_k=3": {"events": None, "sources": 50, "rate": 1000.0, "kw": {"top_k": 3}},
    "top_k=3, small reads": {"events": None, "sources": 50, "rate": 1000.0, "kw": {"top_k": 3, "batch_size": 200}},
}


def run(bootstrap: str, name: str, events: int, repeat: int) -> List[Dict[str, Any]]:
    s = SCENARIOS[name]
    n = s["events"] or events
    run_id = uuid.uuid4().hex[:6]
    in_topic = f"bench-pipe-{run_id}-in"
    pktstream.create_topic(in_topic, partitions=3, bootstrap_servers=bootstrap)
    table = netflow.events(n, seed=42, rate=s["rate"], sources=s["sources"])
    pktstream.produce(table, in_topic, bootstrap_servers=bootstrap, key="src_ip4", progress=False)
    out = []
    for i in range(repeat):
        out_topic = f"bench-pipe-{run_id}-out{i}"
        pktstream.create_topic(out_topic, partitions=3, bootstrap_servers=bootstrap)
        t = time.perf_counter()
        r = pipelines.netflow_distances(in_topic, out_topic, bootstrap_servers=bootstrap,
                                        group_id=f"bench-{run_id}-{i}", idle_timeout=2.0,
                                        idle_partition_timeout=2.0, **s["kw"])
        wall = time.perf_counter() - t
        assert r.events == n and r.delivered == r.pairs, r
        out.append({"scenario": name, "events": r.events, "pairs": r.pairs, "active": r.active_seconds,
                    "wall": wall, "ev_s": r.events_per_second, "pairs_s": r.pairs_per_second})
        print(f"  {name}: {r}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="an existing Kafka (default: start Apache Kafka)")
    ap.add_argument("--events", type=int, default=30_000, help="events of the top_k scenarios")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="(default: all)")
    args = ap.parse_args()
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = ApacheKafka(security=False).start()
        bootstrap = broker.bootstrap_servers
    try:
        rows = []
        for name in args.scenario or list(SCENARIOS):
            rows += run(bootstrap, name, args.events, args.repeat)
    finally:
        if broker is not None:
            broker.stop()
    print(f"{'scenario':<22} {'events':>8} {'pairs':>9} {'active s':>9} {'wall s':>7} {'events/s':>10} {'pairs/s':>10}")
    for r in rows:
        print(f"{r['scenario']:<22} {r['events']:>8,} {r['pairs']:>9,} {r['active']:>9.2f} {r['wall']:>7.2f} "
              f"{r['ev_s']:>10,.0f} {r['pairs_s']:>10,.0f}")


if __name__ == "__main__":
    main()
