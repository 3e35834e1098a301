"""A deterministic generator of realistic netflow events, the input of the distance pipeline.

Each event is one flow record with the fields of the issue's layout: ``eventid`` (a UUID-like
string), ``src_ip4``, ``dst_ip4``, ``src_port``, ``dst_port``, ``duration`` (seconds),
``in_bytes``, ``in_packets``, ``out_bytes``, ``out_packets`` and ``@timestamp``
(``timestamp[us, UTC]``, non-decreasing, Poisson arrivals at ``rate`` events per second).

The distributions imitate an office network's edge: a few internal sources (``10.x.y.z``), one of
them a heavy hitter; destination ports mostly 443, 80 and 53, then NTP, SSH, SMTP, RDP and random
ephemeral ports; source ports ephemeral (49152-65535); packet counts and sizes log-normal (heavy
tailed), DNS small and short, HTTPS downloads large; a small share of anomalies (port-scan probes:
one 44-byte packet to a random port, and exfiltration: hundreds of MB out over minutes). The same
``seed`` gives the same table, byte for byte.

Command line (creates nothing; the topic must exist or use ``--create-topic``)::

    python -m pktstream.testing.netflow --topic netflow --count 100000 --bootstrap-servers 127.0.0.1:9092

Example:
    >>> from pktstream.testing import netflow
    >>> t = netflow.events(1000, seed=7, rate=100.0, sources=5)
    >>> t.num_rows, t.column_names[:3]
    (1000, ['eventid', 'src_ip4', 'dst_ip4'])
    >>> str(t.schema.field("@timestamp").type)
    'timestamp[us, tz=UTC]'
    >>> t.equals(netflow.events(1000, seed=7, rate=100.0, sources=5))   # deterministic
    True
    >>> len(set(t.column("src_ip4").to_pylist()))
    5
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from typing import List, Optional, Union

import numpy as np
import pyarrow as pa

from .._events import NETFLOW_SCHEMA

__all__ = ["SCHEMA", "events", "main"]

#: The columns and types of :func:`events` (the pipeline's input schema, owned by the pipeline).
SCHEMA = NETFLOW_SCHEMA

DEFAULT_START = _dt.datetime(2024, 5, 6, 9, 0, 0, tzinfo=_dt.timezone.utc)

# Destination ports and their shares; the rest are ephemeral (1024-65535).
_PORTS = np.array([443, 80, 53, 123, 22, 25, 3389, 8080])
_PORT_P = np.array([0.55, 0.14, 0.16, 0.03, 0.02, 0.015, 0.01, 0.015])


def _ip(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> List[str]:
    return [f"{w}.{x}.{y}.{z}" for w, x, y, z in zip(a.tolist(), b.tolist(), c.tolist(), d.tolist())]


def _start_us(start: Union[_dt.datetime, str, int, None]) -> int:
    if start is None:
        start = DEFAULT_START
    if isinstance(start, str):
        start = _dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    if isinstance(start, _dt.datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=_dt.timezone.utc)
        return round(start.timestamp() * 1_000_000)
    return int(start)  # microseconds since the epoch


def events(
    n: int,
    *,
    seed: int = 0,
    start: Union[_dt.datetime, str, int, None] = None,
    rate: float = 1000.0,
    sources: int = 25,
    heavy_hitter_share: float = 0.2,
    anomaly_share: float = 0.002,
) -> pa.Table:
    """``n`` netflow events as a ``pyarrow.Table`` with :data:`SCHEMA`.

    Args:
        n: Number of events.
        seed: Random seed; the same arguments give the same table.
        start: Time of the first arrival: a ``datetime`` (naive means UTC), an ISO-8601 string,
            or integer microseconds since the epoch. Default 2024-05-06T09:00:00Z.
        rate: Mean events per second; gaps are exponential, so times are non-decreasing with
            jitter and ``n`` events span about ``n / rate`` seconds.
        sources: Distinct source addresses (``10.0.0.0/8``).
        heavy_hitter_share: Share of the events coming from the busiest source; the others
            follow a Zipf-like law (source ``i`` has weight ``1 / i``).
        anomaly_share: Share of anomalous flows (half port-scan probes, half exfiltration).

    Returns:
        The events in arrival (time) order.

    Example:
        >>> from pktstream.testing.netflow import events
        >>> t = events(3, seed=1, start="2024-01-01T00:00:00Z", rate=10.0, sources=2)
        >>> [r["src_ip4"].startswith("10.") for r in t.to_pylist()]
        [True, True, True]
        >>> str(t.column("@timestamp")[0])       # the first event is at ``start``
        '2024-01-01 00:00:00+00:00'
        >>> t.column("dst_port").type, t.column("in_bytes").type
        (DataType(int32), DataType(int64))
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, not {n}")
    if sources < 1:
        raise ValueError(f"sources must be at least 1, not {sources}")
    if not rate > 0:
        raise ValueError(f"rate must be positive, not {rate}")
    if not 0.0 <= heavy_hitter_share <= 1.0 or not 0.0 <= anomaly_share <= 1.0:
        raise ValueError("heavy_hitter_share and anomaly_share are shares between 0 and 1")
    rng = np.random.default_rng(seed)

    # Sources: fixed addresses per seed; source 0 is the heavy hitter, the rest Zipf-like.
    octets = rng.integers(1, 255, size=(sources, 3))
    src_names = np.array(_ip(np.full(sources, 10), octets[:, 0], octets[:, 1], octets[:, 2]), dtype=object)
    if sources == 1:
        weights = np.ones(1)
    else:
        rest = 1.0 / np.arange(1, sources)
        weights = np.concatenate([[heavy_hitter_share], (1.0 - heavy_hitter_share) * rest / rest.sum()])
    src = rng.choice(sources, size=n, p=weights / weights.sum())

    # Destinations: each source talks mostly to a few favourite servers, sometimes anywhere.
    servers = rng.integers(1, 224, size=(64, 4))
    favourite = (src * 7 + rng.integers(0, 4, size=n)) % len(servers)
    anywhere = rng.random(n) < 0.25
    dst = np.where(anywhere[:, None], rng.integers(1, 224, size=(n, 4)), servers[favourite])
    dst_ip = _ip(dst[:, 0], dst[:, 1], dst[:, 2], dst[:, 3])

    well_known = rng.random(n) < _PORT_P.sum()
    dst_port = np.where(well_known, rng.choice(_PORTS, size=n, p=_PORT_P / _PORT_P.sum()),
                        rng.integers(1024, 65536, size=n))
    src_port = rng.integers(49152, 65536, size=n)

    dns = dst_port == 53
    # Packets: log-normal counts (heavy tail); sizes per packet log-normal around ~500 B out, ~900 B in.
    out_packets = np.maximum(1, np.round(rng.lognormal(np.where(dns, 0.0, 2.0), 1.0))).astype(np.int64)
    in_packets = np.maximum(1, np.round(out_packets * rng.lognormal(0.3, 0.5))).astype(np.int64)
    out_size = np.clip(rng.lognormal(np.where(dns, 4.2, 6.0), 0.6, size=n), 40, 1500)
    in_size = np.clip(rng.lognormal(np.where(dns, 4.8, 6.8), 0.6, size=n), 40, 1500)
    out_bytes = np.round(out_packets * out_size).astype(np.int64)
    in_bytes = np.round(in_packets * in_size).astype(np.int64)
    duration = np.where(dns, rng.lognormal(-4.0, 0.5, size=n), rng.lognormal(0.0, 1.5, size=n))

    # Anomalies: port-scan probes and exfiltration.
    anomaly = rng.random(n) < anomaly_share
    scan = anomaly & (rng.random(n) < 0.5)
    exfil = anomaly & ~scan
    dst_port = np.where(scan, rng.integers(1, 65536, size=n), dst_port)
    for arr, value in ((out_packets, 1), (in_packets, 0), (out_bytes, 44), (in_bytes, 0)):
        arr[scan] = value
    duration = np.where(scan, 0.0, duration)
    out_bytes[exfil] = np.round(rng.lognormal(19.5, 0.5, size=int(exfil.sum()))).astype(np.int64)
    out_packets[exfil] = np.maximum(1, out_bytes[exfil] // 1400)
    duration = np.where(exfil, rng.lognormal(5.0, 0.5, size=n), duration)

    gaps = rng.exponential(1e6 / rate, size=n)
    times = _start_us(start) + np.floor(np.cumsum(gaps) - gaps[0] if n else gaps).astype(np.int64)
    ids = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    eventid = [f"{a:016x}{b:016x}" for a, b in ids.tolist()]
    eventid = [f"{e[:8]}-{e[8:12]}-4{e[13:16]}-{e[16:20]}-{e[20:]}" for e in eventid]

    return pa.table(
        [
            pa.array(eventid, pa.string()),
            pa.array(src_names[src].tolist(), pa.string()),
            pa.array(dst_ip, pa.string()),
            pa.array(dst_port, pa.int32()),
            pa.array(src_port, pa.int32()),
            pa.array(np.round(duration, 6), pa.float64()),
            pa.array(in_bytes, pa.int64()),
            pa.array(in_packets, pa.int64()),
            pa.array(out_bytes, pa.int64()),
            pa.array(out_packets, pa.int64()),
            pa.array(times, pa.timestamp("us", tz="UTC")),
        ],
        schema=SCHEMA,
    )


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m pktstream.testing.netflow``: generates events and produces them as JSON to a topic."""
    p = argparse.ArgumentParser(prog="python -m pktstream.testing.netflow", description=__doc__.splitlines()[0])
    p.add_argument("--topic", "-t", required=True)
    p.add_argument("--count", "-n", type=int, default=10_000, help="events (default 10,000)")
    p.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", help="first event time, ISO-8601 (default 2024-05-06T09:00:00Z)")
    p.add_argument("--rate", type=float, default=1000.0, help="events per second of event time")
    p.add_argument("--sources", type=int, default=25, help="distinct source addresses")
    p.add_argument("--key", default="src_ip4", help='message key column, or "none" (default src_ip4)')
    p.add_argument("--create-topic", type=int, metavar="PARTITIONS", help="create the topic first")
    args = p.parse_args(argv)

    from .._kafka import create_topic, produce

    table = events(args.count, seed=args.seed, start=args.start, rate=args.rate, sources=args.sources)
    if args.create_topic:
        create_topic(args.topic, partitions=args.create_topic, bootstrap_servers=args.bootstrap_servers)
    report = produce(table, args.topic, bootstrap_servers=args.bootstrap_servers, format="json",
                     key=None if args.key == "none" else args.key, progress=False)
    print(report, file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
