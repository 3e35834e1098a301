"""``pktstream demo``: the whole path on one machine, with nothing to configure.

Starts a local Kafka-compatible broker (the durable Tansu build if installed, else the in-memory
one from ``pktstream[broker]``), streams a capture into a topic, reads it back into Arrow, prints
the delivery report and what the packets were, and stops the broker.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Literal, Optional

import pyarrow.compute as pc

from ._kafka import consume, create_topic, produce_pcap
from .broker import Broker

SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "data" / "sample.pcap"
#: tests/data/sample.pcap is `python -m pktstream.testing.synth sample.pcap -n 200 --seed 7` (tests/data/ORIGIN.md).
SAMPLE_PACKETS, SAMPLE_SEED = 200, 7


def run(path: Optional[str] = None, *, partitions: int = 3, fmt: Literal["json", "raw", "arrow"] = "json", progress: Optional[bool] = None) -> int:
    """Runs the demo on ``path`` (the bundled sample capture by default); returns an exit status.

    Example:
        >>> from pktstream import _demo
        >>> _demo.run(progress=False)  # doctest: +SKIP
        0
    """
    if path:
        capture = Path(path)
        if not capture.exists():
            raise FileNotFoundError(2, "No such file or directory", str(capture))
    elif SAMPLE.exists():
        capture = SAMPLE
    else:  # an installed wheel has no tests/: write the same capture (synth is deterministic)
        from .testing import synth

        capture = Path(tempfile.mkdtemp(prefix="pktstream-demo-")) / SAMPLE.name
        synth.write_pcap(str(capture), SAMPLE_PACKETS, seed=SAMPLE_SEED)
    with Broker() as broker:
        kind = "durable (sqlite)" if broker.durable else "in-memory (data is lost when it stops)"
        print(f"broker: Tansu, {kind}, at {broker.bootstrap_servers}")
        topic = f"packets-{int(time.time())}"
        create_topic(topic, partitions=partitions, bootstrap_servers=broker.bootstrap_servers)
        report = produce_pcap(capture, topic, bootstrap_servers=broker.bootstrap_servers, format=fmt, progress=progress)
        print(f"produced {capture.name} to {topic!r} as {fmt}: {report}")
        table = consume(topic, bootstrap_servers=broker.bootstrap_servers, format=fmt)
        print(f"consumed {table.num_rows:,} rows back into Arrow ({len(table.schema)} columns)")
        protocols = (
            table.group_by(["ip_proto"])
            .aggregate([("ip_proto", "count", pc.CountOptions(mode="all"))])
            .sort_by([("ip_proto_count", "descending")])
        )
        names = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6", 132: "sctp", None: "non-ip"}
        print("packets per protocol:")
        for row in protocols.to_pylist():
            print(f"  {names.get(row['ip_proto'], row['ip_proto'])!s:<8} {row['ip_proto_count']:>8,}")
        flows = pc.count_distinct(table["community_id"]).as_py()
        print(f"flows (community_id): {flows:,}; partitions used: {len(set(table['_partition'].to_pylist()))}")
    return 0
