"""Streaming pipelines: Kafka in, windowed pairwise distances out, at-least-once.

:func:`netflow_distances` is the issue's Kappa-architecture job: netflow events (JSON) are grouped
by source address in event-time tumbling windows, the distance between every pair of events of a
group is computed (:class:`pktstream.distance.WindowedPairs`), and each pair goes to an output
topic as one JSON object::

    {"eventid_1": "...", "eventid_2": "...", "distance": 1234.5,
     "timestamp": "2024-05-06T09:00:05.000000+00:00",        # window end (exclusive)
     "key": "10.1.2.3", "window_start": "2024-05-06T09:00:00.000000+00:00"}

Event time and partitions: each input partition is read in order, and the watermark is the
*smallest* of the partitions' largest event times (as in Flink and Kafka Streams), minus
``allowed_lateness``. Events beyond it are held back until every partition has caught up, so a
partition that is read before another does not make the other's events late. A partition that
delivered nothing for ``idle_partition_timeout`` seconds stops holding the others back.

Delivery: at-least-once. A window's pairs are produced (and acknowledged by the broker) before any
offset covering its events is committed. For each partition the safe offset is the smallest offset
of an event still buffered (held back, or in a window that is still open); see
:func:`netflow_distances` for what is committed when, and docs/pipeline.md for the de-duplication
key downstream.

The loop itself runs in the Rust core (``src/distance/pipeline/``) with the GIL released: this
module converts the arguments, logs large groups and calls ``progress``.

Example:
    >>> from pktstream import pipelines
    >>> pipelines.DEFAULT_FEATURES[:3]
    ('duration', 'in_bytes', 'in_packets')
    >>> r = pipelines.PipelineReport(events=3000, pairs=110_000, seconds=5.0, active_seconds=2.0)
    >>> r.events_per_second, r.pairs_per_second
    (1500.0, 55000.0)
    >>> report = pipelines.netflow_distances("netflow", "netflow-pairs", idle_timeout=10,
    ...                                      bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
    >>> print(report)  # doctest: +SKIP
    3,000 events (0 late, 0 invalid) -> 47 windows, 184,138 pairs, 184,138 delivered in 9.22 s ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import pyarrow as pa

from . import _native
from ._events import NETFLOW_SCHEMA
from ._kafka import DEFAULT_BOOTSTRAP, _config
from ._types import Metric
from .distance import (
    DEFAULT_MAX_GROUP_EVENTS,
    Duration,
    OnLargeGroup,
    _check_options,
    _duration_ns,
    _log_large_groups,
)

__all__ = ["NETFLOW_SCHEMA", "DEFAULT_FEATURES", "PipelineReport", "netflow_distances", "input_schema"]

#: Features of :func:`netflow_distances` by default: the flow's size, length and ports.
DEFAULT_FEATURES = ("duration", "in_bytes", "in_packets", "out_bytes", "out_packets", "dst_port", "src_port")

#: Output columns, in the order of each JSON object.
#: Seconds :func:`netflow_distances` waits for a partition assignment before its idle wait starts
#: anyway (as :func:`pktstream.consume` does).
ASSIGNMENT_WAIT = 60.0

OUTPUT_COLUMNS = ("eventid_1", "eventid_2", "distance", "timestamp", "key", "window_start")

Normalize = Union[None, str, Mapping[str, Tuple[float, float]]]


@dataclass
class PipelineReport:
    """What a pipeline run did.

    Attributes:
        events: Input messages read.
        invalid: Messages skipped because they could not be decoded or lack the key, id or time
            (counted, never silently dropped; their offsets are committed like the others).
        late_events: Events whose window had already closed (not paired).
        large_groups: (key, window) groups over ``max_group_events``: reduced to ``top_k`` pairs
            or skipped (``on_large_group``), each window logged with its keys.
        large_group_events: The events of those groups.
        windows: (key, window) groups that produced pairs.
        pairs: Pairs computed and produced.
        delivered: Output messages acknowledged by the broker.
        commits: Offset commits made.
        committed: ``{(topic, partition): offset}`` last committed (the next offset to read).
        seconds: Wall time of the run (including joining the group and the final idle wait).
        active_seconds: From the first message read to the last delivery: the rates use it.
        stopped: Why the run ended: ``"idle"``, ``"max_events"`` or ``"interrupted"``.

    Example:
        >>> print(PipelineReport(events=10, windows=1, pairs=45, delivered=45, seconds=3.0, active_seconds=0.5))
        10 events (0 late, 0 invalid) -> 1 windows, 45 pairs, 45 delivered in 3.00 s (20 events/s, 90 pairs/s
        over 0.50 s active)
    """

    events: int = 0
    invalid: int = 0
    late_events: int = 0
    large_groups: int = 0
    large_group_events: int = 0
    windows: int = 0
    pairs: int = 0
    delivered: int = 0
    commits: int = 0
    committed: Dict[Tuple[str, int], int] = field(default_factory=dict)
    seconds: float = 0.0
    active_seconds: float = 0.0
    stopped: str = ""

    @property
    def events_per_second(self) -> float:
        """Events per active second."""
        return self.events / self.active_seconds if self.active_seconds > 0 else 0.0

    @property
    def pairs_per_second(self) -> float:
        """Pairs per active second."""
        return self.pairs / self.active_seconds if self.active_seconds > 0 else 0.0

    def __str__(self) -> str:
        s = (
            f"{self.events:,} events ({self.late_events:,} late, {self.invalid:,} invalid) -> "
            f"{self.windows:,} windows, {self.pairs:,} pairs, {self.delivered:,} delivered in "
            f"{self.seconds:.2f} s ({self.events_per_second:,.0f} events/s, {self.pairs_per_second:,.0f} pairs/s "
            f"over {self.active_seconds:.2f} s active)"
        )
        if self.large_groups:
            s += f"; {self.large_groups:,} large groups ({self.large_group_events:,} events) not fully paired"
        return s + (f" [{self.stopped}]" if self.stopped else "")




def input_schema(key: str, id: str, time: str, features: Sequence[str]) -> pa.Schema:
    """The JSON value schema the pipeline decodes: :data:`NETFLOW_SCHEMA`'s types where the names
    match, else string key and id, ``timestamp[us, UTC]`` time,
    float64 features.

    Example:
        >>> input_schema("src_ip4", "eventid", "@timestamp", ["in_bytes", "score"]).types
        [DataType(string), DataType(string), TimestampType(timestamp[us, tz=UTC]), DataType(int64), DataType(double)]
    """
    known = {f.name: f.type for f in NETFLOW_SCHEMA}
    fields: List[Tuple[str, pa.DataType]] = []
    defaults = [(key, pa.string()), (id, pa.string()), (time, pa.timestamp("us", tz="UTC"))]
    defaults += [(f, pa.float64()) for f in features]
    for name, default in defaults:
        if name not in (n for n, _ in fields):
            fields.append((name, known.get(name, default)))
    return pa.schema(fields)


def _normalize_arg(how: Normalize, features: Sequence[str]) -> Union[None, str, List[Optional[Tuple[float, float]]]]:
    """``normalize`` as the native pipeline takes it: ``None``, ``"log1p"`` or one ``(offset, scale)``
    (or ``None``: untouched) per feature. The transform itself runs in Rust on every consumed batch."""
    if how is None or how == "log1p":
        return how
    if isinstance(how, Mapping):
        return [None if f not in how else (float(how[f][0]), float(how[f][1])) for f in features]
    raise ValueError(f"normalize must be None, 'log1p' or {{feature: (offset, scale)}}, not {how!r}")


def _report(raw: Mapping[str, Any]) -> PipelineReport:
    return PipelineReport(**{k: raw[k] for k in PipelineReport.__dataclass_fields__})


def netflow_distances(
    in_topic: Union[str, Sequence[str]],
    out_topic: str,
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    group_id: str = "pktstream-netflow-distances",
    key: str = "src_ip4",
    id: str = "eventid",
    time: str = "@timestamp",
    features: Sequence[str] = DEFAULT_FEATURES,
    window: Duration = "5s",
    allowed_lateness: Duration = "0s",
    metric: Metric = "euclidean",
    normalize: Normalize = None,
    top_k: Optional[int] = None,
    max_distance: Optional[float] = None,
    max_group_events: Optional[int] = DEFAULT_MAX_GROUP_EVENTS,
    on_large_group: OnLargeGroup = "top_k",
    max_events: Optional[int] = None,
    idle_timeout: Optional[float] = None,
    idle_partition_timeout: float = 5.0,
    batch_size: int = 65_536,
    schema: Optional[pa.Schema] = None,
    config: Optional[Mapping[str, Any]] = None,
    progress: Optional[Callable[[PipelineReport], Any]] = None,
) -> PipelineReport:
    """Consumes JSON events, pairs them per key and event-time window, produces the pairs as JSON.

    Every pair of events with the same ``key`` in the same tumbling window (aligned to the epoch)
    becomes one output message ``{"eventid_1", "eventid_2", "distance", "timestamp", "key",
    "window_start"}``: ``timestamp`` is the window's end (exclusive), ``window_start`` its start,
    both ISO-8601 UTC; ``eventid_1 <= eventid_2``; a NaN distance (a missing feature) leaves
    ``distance`` out. Messages are keyed by ``key``, so a group's pairs share a partition and keep
    their order: by distance, ties by ids (as :func:`pktstream.distance.pairs`).

    Runs until ``max_events`` messages were read, ``idle_timeout`` seconds passed without input,
    or Ctrl-C. On ``idle_timeout`` the input is taken as finished: every window is closed,
    delivered and all offsets committed. On ``max_events`` and Ctrl-C open windows are *not*
    emitted (they would be incomplete); their events stay uncommitted and are read again by the
    next run, which emits those windows whole.

    At-least-once: offsets are committed only after the pairs of every window the committed
    events belong to were acknowledged by the broker. A crash or stop can make the next run emit
    a window again (in full, or with a subset of its pairs when some of its events were before a
    committed offset); de-duplicate downstream on ``(key, window_start, eventid_1, eventid_2)``.
    Commit granularity: after every delivery, each partition is committed up to its oldest event
    still held back or in an open window (:meth:`pktstream.Consumer.commit_offsets`).

    Args:
        in_topic: Input topic(s) of JSON events.
        out_topic: Output topic (must exist).
        bootstrap_servers: ``host:port[,...]``.
        group_id: Consumer group; its committed offsets are where a run starts.
        key, id, time: Group, event id and event time fields.
        features: Numeric fields compared (default :data:`DEFAULT_FEATURES`: duration, bytes and
            packets both ways, destination and source port). Missing fields give NaN distances.
        window, allowed_lateness: Tumbling window length and how far behind the watermark an event
            may still be on time (``"5s"``, ``"500ms"``, ...). Later events are counted in
            ``late_events``, not paired.
        metric, top_k, max_distance: As in :func:`pktstream.distance.pairs`.
        max_group_events, on_large_group: The guard against one busy key: a (key, window) group
            with more events than ``max_group_events`` (default 4,000: ~8M pairs, ~1 GB; ``None``:
            no limit) gets only each event's ``top_k`` nearest (``top_k``, else 10) with
            ``on_large_group="top_k"``, or no pairs with ``"skip"``; counted in the report's
            ``large_groups`` / ``large_group_events`` and logged once per window with the keys.
            Without it, 30,000 events of one key in one window would be 450M pairs (> 50 GB).
        normalize: ``None``, ``"log1p"`` (``log(1 + x)`` of every feature: tames heavy-tailed
            byte counts) or ``{feature: (offset, scale)}`` for ``(x - offset) / scale``. Only
            per-event transforms: a stream has no "whole input" to z-score over.
        max_events: Stop after reading this many messages.
        idle_timeout: Stop (and close every window) after this many seconds without a message,
            counted from the group's partition assignment (or from ``ASSIGNMENT_WAIT`` seconds
            after the start, when no partition is assigned by then).
        idle_partition_timeout: Seconds without a message after which a partition no longer holds
            the watermark back.
        batch_size: Most messages per read.
        schema: JSON value schema (default :func:`input_schema`).
        config: librdkafka properties for both the consumer and the producer (e.g. security).
        progress: Called with the running :class:`PipelineReport` after every read.

    Returns:
        A :class:`PipelineReport`.

    Raises:
        pktstream.UnknownTopicError, pktstream.KafkaTimeoutError: no such topic, no broker.
        pktstream.DeliveryError: output messages were not delivered (nothing more is committed).
        KeyboardInterrupt: Ctrl-C; ``e.report`` is the report. Nothing is committed after the
            interrupt: the last commit (made after the last completed read and delivery) stands.

    Example:
        >>> report = netflow_distances("netflow", "netflow-pairs", window="5s", idle_timeout=10,
        ...                            bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        >>> report.pairs, report.late_events  # doctest: +SKIP
        (111090, 0)
    """
    features = [features] if isinstance(features, str) else list(features)
    if max_events is not None and max_events < 0:
        raise ValueError(f"max_events must be non-negative, not {max_events}")
    _check_options(top_k, max_distance, 1, max_group_events, on_large_group)
    window_ns = _duration_ns(window, "window")
    lateness_ns = _duration_ns(allowed_lateness, "allowed_lateness")
    norm = _normalize_arg(normalize, features)

    def on_progress(raw: Mapping[str, Any], large: list) -> None:
        if large:
            _log_large_groups(large, max_group_events, on_large_group, top_k)
        if progress is not None:
            progress(_report(raw))

    try:
        raw = _native.netflow_pipeline(
            [in_topic] if isinstance(in_topic, str) else list(in_topic), out_topic,
            bootstrap_servers=bootstrap_servers, group_id=group_id, key=key, id=id, time=time, features=features,
            window=window_ns, allowed_lateness=lateness_ns, metric=metric, normalize=norm, top_k=top_k,
            max_distance=max_distance, max_group_events=max_group_events, on_large_group=on_large_group,
            max_events=max_events, idle_timeout=idle_timeout, idle_partition_timeout=idle_partition_timeout,
            batch_size=batch_size, schema=schema or input_schema(key, id, time, features), config=_config(config),
            assignment_wait=ASSIGNMENT_WAIT, progress=on_progress,
        )
    except BaseException as e:
        partial = getattr(e, "report", None)
        if isinstance(partial, Mapping):
            e.report = _report(partial)  # type: ignore[attr-defined]
        raise
    return _report(raw)

