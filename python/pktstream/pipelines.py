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

import math
import time as _time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._kafka import DEFAULT_BOOTSTRAP, Consumer, produce
from ._types import Metric
from .distance import DEFAULT_MAX_GROUP_EVENTS, Duration, OnLargeGroup, WindowedPairs, _duration_ns, _time_ns
from .testing import netflow

__all__ = ["DEFAULT_FEATURES", "PipelineReport", "netflow_distances", "input_schema"]

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
    """The JSON value schema the pipeline decodes: netflow's types where the names match
    (:data:`pktstream.testing.netflow.SCHEMA`), else string key and id, ``timestamp[us, UTC]`` time,
    float64 features.

    Example:
        >>> input_schema("src_ip4", "eventid", "@timestamp", ["in_bytes", "score"]).types
        [DataType(string), DataType(string), TimestampType(timestamp[us, tz=UTC]), DataType(int64), DataType(double)]
    """
    known = {f.name: f.type for f in netflow.SCHEMA}
    fields: List[Tuple[str, pa.DataType]] = []
    defaults = [(key, pa.string()), (id, pa.string()), (time, pa.timestamp("us", tz="UTC"))]
    defaults += [(f, pa.float64()) for f in features]
    for name, default in defaults:
        if name not in (n for n, _ in fields):
            fields.append((name, known.get(name, default)))
    return pa.schema(fields)


def _normalized(table: pa.Table, features: Sequence[str], how: Normalize) -> pa.Table:
    """Stateless per-event feature transforms (a stream has no "whole input" to z-score over)."""
    if how is None:
        return table
    for name in features:
        col = pc.cast(table.column(name), pa.float64())
        if how == "log1p":
            col = pc.log1p(col)
        elif isinstance(how, Mapping):
            if name not in how:
                continue
            offset, scale = how[name]
            col = pc.divide(pc.subtract(col, float(offset)), float(scale))
        else:
            raise ValueError(f"normalize must be None, 'log1p' or {{feature: (offset, scale)}}, not {how!r}")
        table = table.set_column(table.schema.get_field_index(name), name, col)
    return table


def _exact_timestamps(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Window bounds in microseconds when that is exact (it is for any window of whole µs)."""
    try:
        return pc.cast(col, pa.timestamp("us", tz="UTC"))
    except pa.ArrowInvalid:
        return col


class _Pipeline:
    """The state of one run: held-back events, in-flight (open-window) offsets, the report."""

    def __init__(self, consumer: Consumer, pairs: WindowedPairs, *, key: str, id: str, time: str,
                 features: Sequence[str], normalize: Normalize, window_ns: int, idle_partition_timeout: float,
                 deliver: Callable[[pa.Table], int], report: PipelineReport) -> None:
        self.consumer, self.pairs = consumer, pairs
        self.key, self.id, self.time, self.features = key, id, time, list(features)
        self.normalize, self.window_ns = normalize, window_ns
        self.idle_partition_timeout = idle_partition_timeout
        self.deliver, self.report = deliver, report
        self.columns = list(dict.fromkeys([key, id, time, *self.features]))
        self.held: Optional[pa.Table] = None  # read, not yet pushed (waiting for other partitions)
        self.held_t = np.empty(0, np.int64)
        # Pushed events whose window is still open: (topic index, partition, offset, window end ns).
        self.inflight = np.empty((0, 3), np.int64)
        self.topics: List[str] = []
        self.max_time: Dict[Tuple[str, int], int] = {}
        self.last_seen: Dict[Tuple[str, int], float] = {}
        self.windows_seen: set = set()

    # -- reading -------------------------------------------------------------------------------------
    def ingest(self, batch: pa.RecordBatch, now: float) -> None:
        """Adds a consumed batch to the held-back events (invalid rows are counted and dropped)."""
        table = pa.Table.from_batches([batch])
        self.report.events += table.num_rows
        valid = pc.is_null(table.column("_error"))
        for name in (self.key, self.id, self.time):
            valid = pc.and_(valid, pc.is_valid(table.column(name)))
        valid = pc.fill_null(valid, False)
        n_valid = pc.sum(valid).as_py() or 0
        self.report.invalid += table.num_rows - n_valid
        for tp in set(zip(table.column("_topic").to_pylist(), table.column("_partition").to_pylist())):
            self.last_seen[tp] = now
        if n_valid < table.num_rows:
            table = table.filter(valid)
        if table.num_rows == 0:
            return
        t = _time_ns(table.column(self.time), self.time)
        topic = np.asarray(table.column("_topic").to_pylist(), dtype=object)
        part = table.column("_partition").to_numpy()
        for tp in set(zip(topic.tolist(), part.tolist())):
            mask = (part == tp[1]) & (topic == tp[0])
            self.max_time[tp] = max(self.max_time.get(tp, -(2**63)), int(t[mask].max()))
            if tp[0] not in self.topics:
                self.topics.append(tp[0])
        table = _normalized(table.select([*self.columns, "_topic", "_partition", "_offset"]), self.features,
                            self.normalize)
        self.held = table if self.held is None else pa.concat_tables([self.held, table])
        self.held_t = np.concatenate([self.held_t, t])

    def _watermark_limit(self, now: float) -> float:
        """Events at or before this time may be pushed: every active partition has reached it."""
        limits = []
        for topic, p in self.consumer.assignment():
            tp = (topic, p)
            self.last_seen.setdefault(tp, now)  # first noticed now
            if now - self.last_seen[tp] >= self.idle_partition_timeout:
                continue  # idle: do not hold the others back
            limits.append(self.max_time.get(tp, -math.inf))
        return min(limits) if limits else math.inf

    # -- computing and delivering --------------------------------------------------------------------
    def release(self, now: float, everything: bool = False) -> None:
        """Pushes the held events every partition has caught up with; delivers closed windows."""
        if self.held is None or self.held.num_rows == 0:
            return
        limit = math.inf if everything else self._watermark_limit(now)
        ready = self.held_t <= limit
        if not ready.any():
            return
        push = self.held if ready.all() else self.held.filter(pa.array(ready))
        t = self.held_t[ready]
        topic_idx = np.array([self.topics.index(x) for x in push.column("_topic").to_pylist()], np.int64)
        pp = (topic_idx << 32) | push.column("_partition").to_numpy().astype(np.int64)
        ends = (np.floor_divide(t, self.window_ns) + 1) * self.window_ns
        # In flight before leaving the held set: an interrupt in between never loses an offset.
        self.inflight = np.concatenate([self.inflight, np.stack([pp, push.column("_offset").to_numpy(), ends], 1)])
        if ready.all():
            self.held, self.held_t = None, np.empty(0, np.int64)
        else:
            self.held, self.held_t = self.held.filter(pa.array(~ready)), self.held_t[~ready]
        late_before = self.pairs.late_events
        closed = self.pairs.push(push.select(self.columns))
        self.report.late_events += self.pairs.late_events - late_before
        self._count_large()
        self._closed(closed)

    def _count_large(self) -> None:
        self.report.large_groups = self.pairs.large_groups
        self.report.large_group_events = self.pairs.large_group_events

    def flush(self) -> None:
        """End of input: pushes everything held, closes every window, delivers."""
        self.release(_time.monotonic(), everything=True)
        closed = self.pairs.flush()
        self._count_large()
        self._closed(closed, everything=True)

    def _closed(self, pairs: pa.Table, everything: bool = False) -> None:
        """Delivers closed windows' pairs, then forgets their events' offsets (now safe)."""
        if pairs.num_rows:
            self._deliver(pairs)
        wm = self.pairs.watermark
        if everything:
            self.inflight = self.inflight[:0]
        elif wm is not None and len(self.inflight):
            self.inflight = self.inflight[self.inflight[:, 2] > wm]

    def _deliver(self, pairs: pa.Table) -> None:
        self.report.windows += pairs.select(["key", "window_start"]).group_by(["key", "window_start"]).aggregate(
            []).num_rows
        out = pa.table({
            "eventid_1": pairs.column("id_1"),
            "eventid_2": pairs.column("id_2"),
            "distance": pairs.column("distance"),
            "timestamp": _exact_timestamps(pairs.column("window_end")),
            "key": pairs.column("key"),
            "window_start": _exact_timestamps(pairs.column("window_start")),
        })
        self.report.pairs += out.num_rows
        self.report.delivered += self.deliver(out)

    # -- committing ----------------------------------------------------------------------------------
    def safe_offsets(self) -> Dict[Tuple[str, int], int]:
        """Per partition handed out: the smallest offset of an event still buffered, else the next."""
        safe = dict(self.consumer.positions())
        if self.held is not None and self.held.num_rows:
            topics = self.held.column("_topic").to_pylist()
            parts = self.held.column("_partition").to_numpy()
            offs = self.held.column("_offset").to_numpy()
            for tp, o in zip(zip(topics, parts.tolist()), offs.tolist()):
                if o < safe.get(tp, o + 1):
                    safe[tp] = o
        for pp, o, _ in self.inflight.tolist():
            tp = (self.topics[pp >> 32], pp & 0xFFFFFFFF)
            if o < safe.get(tp, o + 1):
                safe[tp] = o
        return safe

    def commit(self) -> None:
        """Commits the safe offsets that moved (only after the deliveries above returned)."""
        safe = self.safe_offsets()
        moved = {tp: o for tp, o in safe.items() if self.report.committed.get(tp, -1) < o}
        if not moved:
            return
        self.consumer.commit_offsets(dict(sorted(moved.items())))
        self.report.committed.update(moved)
        self.report.commits += 1


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
    started = _time.monotonic()
    features = [features] if isinstance(features, str) else list(features)
    if max_events is not None and max_events < 0:
        raise ValueError(f"max_events must be non-negative, not {max_events}")
    window_ns = _duration_ns(window, "window")
    windowed = WindowedPairs(key, features, id, time, window_ns, allowed_lateness=allowed_lateness,
                             metric=metric, top_k=top_k, max_distance=max_distance,
                             max_group_events=max_group_events, on_large_group=on_large_group)
    report = PipelineReport()

    def deliver(out: pa.Table) -> int:
        r = produce(out, out_topic, bootstrap_servers=bootstrap_servers, format="json", key="key",
                    config=config, progress=False)
        return r.delivered

    consumer = Consumer(in_topic, group_id=group_id, bootstrap_servers=bootstrap_servers, format="json",
                        schema=schema or input_schema(key, id, time, features), config=config)
    state = _Pipeline(consumer, windowed, key=key, id=id, time=time, features=features, normalize=normalize,
                      window_ns=window_ns, idle_partition_timeout=idle_partition_timeout, deliver=deliver,
                      report=report)
    read_timeout = 1.0 if idle_timeout is None else max(0.05, min(1.0, idle_timeout))
    try:
        last_input = _time.monotonic()
        first_input: Optional[float] = None
        assigned = False  # the idle wait counts from the group's assignment (joining may take seconds)
        while True:
            if max_events is not None and report.events >= max_events:
                report.stopped = "max_events"
                break
            want = batch_size if max_events is None else min(batch_size, max_events - report.events)
            batch = consumer.read_batch(want, read_timeout)
            now = _time.monotonic()
            if batch.num_rows:
                last_input = now
                first_input = now if first_input is None else first_input
                state.ingest(batch, now)
            else:
                if not assigned:
                    assigned = bool(consumer.assignment())
                    if assigned:
                        last_input = now
                waited = assigned or now - started >= ASSIGNMENT_WAIT
                if idle_timeout is not None and waited and now - last_input >= idle_timeout:
                    report.stopped = "idle"
                    break
            delivered = report.delivered
            state.release(now)
            state.commit()
            if first_input is not None and (batch.num_rows or report.delivered > delivered):
                report.active_seconds = _time.monotonic() - first_input
            report.seconds = _time.monotonic() - started
            if progress is not None:
                progress(report)
        if report.stopped == "idle":
            flushing = _time.monotonic()
            state.flush()
            state.commit()
            if first_input is not None:  # the idle wait is not active time
                report.active_seconds += _time.monotonic() - flushing
    except KeyboardInterrupt as e:
        report.stopped = "interrupted"
        report.seconds = _time.monotonic() - started
        e.report = report  # type: ignore[attr-defined]
        raise
    finally:
        consumer.close()
    report.seconds = _time.monotonic() - started
    return report
