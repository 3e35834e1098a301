"""Kafka producer and consumer: capture files and Arrow data in, Arrow record batches out."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import pyarrow as pa

from . import _native
from ._types import AddressFormat, ConsumeFormat, DecodeFormat, ProduceFormat, TimestampUnit
from .exceptions import DeliveryError

__all__ = ["ProduceReport", "produce_pcap", "produce", "create_topic", "Consumer", "consume", "decode_values"]

DEFAULT_BOOTSTRAP = "localhost:9092"

Config = Optional[Mapping[str, Any]]
ProgressArg = Union[None, bool, Callable[["ProduceReport"], Any]]


@dataclass
class ProduceReport:
    """What a produce call did.

    Attributes:
        rows: Rows (packets) read from the input.
        messages: Messages handed to librdkafka.
        delivered: Messages the broker acknowledged.
        failed: Messages that could not be delivered (``errors`` holds the first ones,
            ``error_code`` librdkafka's name for the first one's code).
        bytes: Key and value bytes sent.
        seconds: Wall time, including waiting for the last acknowledgement.
        queued_seconds: Time until the last message was encoded and handed to librdkafka.
        partitions: Partitions of the topic.
        interrupted: Stopped early (Ctrl-C); everything queued before the stop was still awaited.
        warnings: Problems with the input that ended it early (a cut capture file).

    Example:
        >>> r = ProduceReport(rows=10, messages=10, delivered=10, seconds=0.5)
        >>> r.rows_per_second
        20.0
    """

    rows: int = 0
    messages: int = 0
    delivered: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    queued_seconds: float = 0.0
    errors: List[str] = field(default_factory=list)
    error_code: Optional[str] = None
    interrupted: bool = False
    warnings: List[str] = field(default_factory=list)
    partitions: Optional[int] = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        s = (
            f"{self.rows:,} rows -> {self.messages:,} messages, {self.delivered:,} delivered, "
            f"{self.failed:,} failed, {self.bytes / 1e6:,.1f} MB in {self.seconds:.2f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )
        if self.interrupted:
            s += " [interrupted]"
        return s


def _report(d: Mapping[str, Any]) -> ProduceReport:
    return ProduceReport(**{k: d[k] for k in ProduceReport.__dataclass_fields__ if k in d})


class _Tracker:
    """Feeds native progress ticks to a tqdm bar and/or a user callback."""

    def __init__(self, progress: ProgressArg, total: Optional[int], unit: str, desc: str) -> None:
        self.callback = progress if callable(progress) else None
        enabled = progress if isinstance(progress, bool) else (progress is None and sys.stderr.isatty())
        self.bar: Any = None
        self.unit = unit
        self.started = time.monotonic()
        if enabled:
            try:
                from tqdm import tqdm

                scale = dict(unit="B", unit_scale=True, unit_divisor=1024) if unit == "bytes" else dict(unit=" rows")
                self.bar = tqdm(total=total, desc=desc, leave=False, **scale)
            except ImportError:  # pragma: no cover
                pass
        self.done = 0

    def __call__(self, rows: int, messages: int, delivered: int, failed: int, source_bytes: int) -> None:
        if self.bar is not None:
            now = source_bytes if self.unit == "bytes" else rows
            if now > self.done:
                self.bar.update(now - self.done)
                self.done = now
            self.bar.set_postfix(delivered=delivered, failed=failed, refresh=False)
        if self.callback is not None:
            self.callback(
                ProduceReport(
                    rows=rows,
                    messages=messages,
                    delivered=delivered,
                    failed=failed,
                    seconds=time.monotonic() - self.started,
                )
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


R = TypeVar("R", bound="ProduceReport")


def _run(
    call: Callable[[], Mapping[str, Any]],
    tracker: _Tracker,
    raise_on_failure: bool,
    convert: Callable[[Mapping[str, Any]], R],
) -> R:
    """Runs a native produce call: converts its report (also the one attached to an exception
    that stopped it) and raises :class:`DeliveryError` for failed deliveries if asked to."""
    try:
        report = convert(call())
    except BaseException as e:
        raw = getattr(e, "report", None)
        if isinstance(raw, dict):
            e.report = convert(raw)  # type: ignore[attr-defined]
        raise
    finally:
        tracker.close()
    if report.failed and raise_on_failure:
        first = report.errors[0] if report.errors else "unknown error"
        err = DeliveryError(
            f"{report.failed:,} of {report.messages:,} messages were not delivered; first error: {first}",
            report.error_code or "FAIL",
        )
        err.report = report
        raise err
    return report


def produce_pcap(
    path: Union[str, "os.PathLike[str]"],
    topic: str,
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    format: ProduceFormat = "json",
    key: Optional[str] = "flow",
    columns: Optional[Sequence[str]] = None,
    config: Config = None,
    progress: ProgressArg = None,
    timestamp_unit: TimestampUnit = "us",
    rows_per_message: int = 10_000,
    csv_delimiter: str = ",",
    batch_size: int = 65_536,
    addresses: AddressFormat = "string",
    connect_timeout: float = 10.0,
    raise_on_failure: bool = True,
    bpf: Optional[str] = None,
) -> ProduceReport:
    """Streams a pcap/pcapng file (optionally gzipped) into a Kafka topic, without loading it.

    Args:
        path: The capture file.
        topic: The topic; it must exist (see :func:`create_topic`).
        bootstrap_servers: ``host:port[,host:port]`` of the brokers.
        format: ``"json"`` (one object per packet), ``"csv"`` (one line per packet, no header),
            ``"raw"`` (value = the frame, key = the timestamp as 8 big-endian bytes, Apache
            Metron's layout; headers ``link_type`` and ``wirelen``) or ``"arrow"`` (an Arrow IPC
            stream of up to ``rows_per_message`` packets per message).
        key: ``"flow"`` (the Community ID: both directions of a conversation share a key, hence a
            partition, in order), ``"timestamp"``, a column name, or ``None``. With ``raw``, the
            key is always the timestamp and ``key="flow"`` only pins flows to partitions.
        columns: Packet columns to send (all when ``None``); ignored by ``raw``.
        config: librdkafka configuration (dotted keys, e.g. ``{"acks": "1", "sasl.username": ...}``),
            layered over pktstream's defaults: idempotent producer, ``acks=all``, Java-compatible
            ``murmur2_random`` partitioner, lz4 compression for ``arrow``.
        progress: ``None`` shows a progress bar on a terminal; ``True``/``False`` force it on/off;
            a callable is called with a partial :class:`ProduceReport` about every batch.
        timestamp_unit: Unit of timestamp keys: ``"s"``, ``"ms"``, ``"us"`` (default) or ``"ns"``.
        rows_per_message: Rows per ``arrow`` message.
        raise_on_failure: Raise :class:`pktstream.DeliveryError` (with ``.report``) when any message
            failed; otherwise just return the report.
        bpf: A BPF filter in tcpdump syntax (``"tcp port 443"``): only the packets passing it are
            sent, in every format (see :func:`pktstream.iter_batches`).

    Returns:
        A :class:`ProduceReport`, after every message was acknowledged or failed.

    Raises:
        FileNotFoundError, pktstream.FormatError: the capture cannot be read.
        ValueError: ``bpf`` does not compile (libpcap's message).
        pktstream.UnknownTopicError: the topic does not exist.
        pktstream.KafkaTimeoutError: no broker answered within ``connect_timeout`` seconds.
        pktstream.KafkaConfigError: librdkafka rejected a configuration key or value.
        KeyboardInterrupt: Ctrl-C; ``e.report`` says what was delivered before the stop.

    Example:
        >>> report = pktstream.produce_pcap("capture.pcap", "packets",
        ...                                 bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
        14,261 rows -> 14,261 messages, 14,261 delivered, 0 failed, 6.2 MB in 0.21 s (67,910 rows/s)
    """
    size = _file_size(path)
    tracker = _Tracker(progress, size, "bytes", f"produce {os.path.basename(str(path))}")
    return _run(
        lambda: _native.produce_pcap(
            os.fspath(path),
            topic,
            bootstrap_servers=bootstrap_servers,
            format=format,
            key=key,
            columns=None if columns is None else list(columns),
            config=_config(config),
            timestamp_unit=timestamp_unit,
            rows_per_message=rows_per_message,
            csv_delimiter=csv_delimiter,
            batch_size=batch_size,
            addresses=addresses,
            connect_timeout=connect_timeout,
            progress=tracker,
            bpf=bpf,
        ),
        tracker,
        raise_on_failure,
        _report,
    )


def produce(
    data: Any,
    topic: str,
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    format: ProduceFormat = "json",
    key: Optional[str] = None,
    columns: Optional[Sequence[str]] = None,
    config: Config = None,
    progress: ProgressArg = None,
    timestamp_unit: TimestampUnit = "us",
    rows_per_message: int = 10_000,
    csv_delimiter: str = ",",
    connect_timeout: float = 10.0,
    raise_on_failure: bool = True,
) -> ProduceReport:
    """Sends any tabular data to a Kafka topic, one message per row (``json``, ``csv``) or per
    ``rows_per_message`` rows (``arrow``).

    ``data`` may be a pyarrow Table, RecordBatch or RecordBatchReader, a polars DataFrame, a pandas
    DataFrame, pktstream's own readers, or anything with ``__arrow_c_stream__``. Streams are sent
    batch by batch, so a reader larger than memory is fine. Options are as for
    :func:`produce_pcap`; ``key`` defaults to ``None`` here and may be ``"flow"`` when the data has
    packet columns (``community_id``, or ``src_ip``/``dst_ip``/``ip_proto``/ports).

    Example:
        >>> import pyarrow as pa
        >>> events = pa.table({"branch": ["north", "south"], "amount": [12.5, 3.0]})
        >>> pktstream.produce(events, "transactions", key="branch",
        ...                   bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        ProduceReport(rows=2, messages=2, delivered=2, ...)
    """
    stream = _as_stream(data)
    tracker = _Tracker(progress, None, "rows", f"produce {topic}")
    return _run(
        lambda: _native.produce(
            stream,
            topic,
            bootstrap_servers=bootstrap_servers,
            format=format,
            key=key,
            columns=None if columns is None else list(columns),
            config=_config(config),
            timestamp_unit=timestamp_unit,
            rows_per_message=rows_per_message,
            csv_delimiter=csv_delimiter,
            connect_timeout=connect_timeout,
            progress=tracker,
        ),
        tracker,
        raise_on_failure,
        _report,
    )


def create_topic(
    topic: str,
    *,
    partitions: int = 1,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    replication_factor: int = 1,
    config: Config = None,
    topic_config: Optional[Mapping[str, Any]] = None,
    timeout: float = 10.0,
) -> bool:
    """Creates a topic; returns ``False`` if it already existed (not an error).

    Args:
        topic: The topic name.
        partitions: Its number of partitions.
        bootstrap_servers: ``host:port[,...]``.
        replication_factor: Copies of each partition (at most the number of brokers).
        config: librdkafka client settings (TLS, SASL, ...).
        topic_config: Topic settings, e.g. ``{"retention.ms": 3600000, "compression.type": "zstd"}``.
        timeout: Seconds to wait for the cluster.

    Example:
        >>> pktstream.create_topic("packets", partitions=6,
        ...                        bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        True
    """
    return bool(
        _native.create_topic(
            topic,
            partitions=partitions,
            bootstrap_servers=bootstrap_servers,
            replication_factor=replication_factor,
            config=_config(config),
            topic_config=_config(topic_config),
            timeout=timeout,
        )
    )


class Consumer:
    """Reads Kafka topics as Arrow record batches.

    Each batch has the decoded value columns, then ``_topic``, ``_partition``, ``_offset``,
    ``_timestamp`` (the message's Kafka timestamp), ``_key`` and ``_error`` (null, or why the
    message could not be decoded: its value columns are then null; nothing is skipped).

    Values decode by ``format``: ``"json"`` into ``schema`` (default: the packet schema; fields
    missing from a message are null, extra fields ignored), ``"raw"`` frames into the packet schema
    (``columns`` projects it; timestamps come from the 8-byte key in ``timestamp_unit``), ``"arrow"``
    into the batches as they were sent.

    With a ``group_id``, the consumer joins the group and :meth:`commit` stores the offsets of
    everything already returned (at-least-once: commit after processing, and a crash re-delivers
    rather than loses). Without one, it reads every partition from the beginning.

    **Rebalances.** When members join or leave, partitions move. A partition revoked from this
    consumer is forgotten at once: :meth:`commit` and :meth:`commit_offsets` never commit a
    partition this consumer no longer holds (that would move the new owner's offset), and never
    commit an offset lower than one this consumer committed or returned before. The at-least-once
    bound: the messages of a partition returned (or being read) *after its last commit and before
    it was revoked* are delivered again to its next owner, which may be this consumer again (the
    default, eager protocol revokes every partition at each rebalance and assigns them anew). Nothing
    else is delivered twice, and nothing is skipped. To shrink the bound, commit often, or pass
    ``on_revoke``: it is called as ``on_revoke(consumer, [(topic, partition), ...])`` just before
    the partitions go, and may call ``consumer.commit()`` / ``consumer.commit_offsets(...)`` (for
    what it has processed) while they are still this consumer's. ``on_assign(consumer, partitions)``
    is called with newly assigned partitions. Both run inside :meth:`read_batch` (or :meth:`close`)
    and may not call any other method of the consumer; an exception they raise comes out of the
    next :meth:`read_batch`. ``partition.assignment.strategy=cooperative-sticky`` in ``config``
    selects incremental rebalancing: only the partitions that move are revoked. A commit the
    broker refuses because a rebalance is under way raises :class:`pktstream.KafkaError` with
    ``retriable=True`` (``REBALANCE_IN_PROGRESS``, ``ILLEGAL_GENERATION``): nothing was committed,
    and the next :meth:`commit` after a read commits it (for the partitions still held).

    ``config`` holds librdkafka keys over pktstream's defaults: ``enable.auto.commit=false``,
    ``auto.offset.reset=earliest``, ``session.timeout.ms=6000``.

    ``headers=True`` adds a last column ``_headers``, every header of each message in order as
    ``list<struct<key: string, value: binary>>`` (null for a message without headers), the type
    of Spark's ``headers`` column. Values are kept as bytes; a key that is not UTF-8 is decoded
    with U+FFFD replacing each invalid sequence, as Kafka's Java client (and Spark) decode keys.

    Example:
        >>> with pktstream.Consumer("packets", group_id="analytics",
        ...                         bootstrap_servers="127.0.0.1:9092") as consumer:  # doctest: +SKIP
        ...     for batch in consumer:
        ...         process(batch.to_pandas())
        ...         consumer.commit()
    """

    def __init__(
        self,
        topics: Union[str, Sequence[str]],
        *,
        group_id: Optional[str] = None,
        bootstrap_servers: str = DEFAULT_BOOTSTRAP,
        format: ConsumeFormat = "json",
        schema: Optional[pa.Schema] = None,
        columns: Optional[Sequence[str]] = None,
        addresses: AddressFormat = "string",
        timestamp_unit: TimestampUnit = "us",
        config: Config = None,
        timeout: float = 10.0,
        on_revoke: Optional[Callable[["Consumer", List[Tuple[str, int]]], Any]] = None,
        on_assign: Optional[Callable[["Consumer", List[Tuple[str, int]]], Any]] = None,
        headers: bool = False,
    ) -> None:
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.group_id = group_id
        self.bootstrap_servers = bootstrap_servers
        self.format = format
        self.timeout = timeout
        self.timestamp_unit = timestamp_unit
        self._native: Any = _native.NativeConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            format=format,
            schema=schema,
            columns=None if columns is None else list(columns),
            addresses=addresses,
            timestamp_unit=timestamp_unit,
            config=_config(config),
            headers=headers,
        )
        self.ends: Optional[List[Tuple[str, int, int]]] = None
        self._on_revoke, self._on_assign = on_revoke, on_assign
        # Inside on_revoke: what it asked to commit (commit() everything returned, offsets).
        self._revoke_commits: Optional[Tuple[bool, List[Tuple[str, int, int]]]] = None
        self._in_callback = False
        if (on_revoke is not None or on_assign is not None) and group_id is not None:
            self._native.set_rebalance_callbacks(
                self._revoking if on_revoke is not None else None,
                self._assigned if on_assign is not None else None,
            )
        if group_id is None:
            self.ends = self._native.assign_all(self.topics, timeout)
        else:
            self._native.subscribe(self.topics, timeout)
        self._closed = False

    def _revoking(self, partitions: List[Tuple[str, int]]) -> Tuple[bool, List[Tuple[str, int, int]]]:
        self._revoke_commits = (False, [])
        self._in_callback = True
        try:
            assert self._on_revoke is not None
            self._on_revoke(self, list(partitions))
            return self._revoke_commits
        finally:
            self._revoke_commits = None
            self._in_callback = False

    def _assigned(self, partitions: List[Tuple[str, int]]) -> None:
        self._in_callback = True
        try:
            assert self._on_assign is not None
            self._on_assign(self, list(partitions))
        finally:
            self._in_callback = False

    def _not_in_callback(self, what: str) -> None:
        if self._in_callback:
            raise RuntimeError(f"{what}() cannot be called from on_revoke/on_assign (only commit() can)")

    def read_batch(self, max_rows: int = 65_536, timeout: float = 1.0) -> pa.RecordBatch:
        """Up to ``max_rows`` rows: waits up to ``timeout`` seconds for the first message, then
        returns what is immediately available. An empty batch means nothing arrived."""
        self._not_in_callback("read_batch")
        return pa.record_batch(self._native.read_batch(max_rows, timeout))

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        """Yields non-empty batches until :meth:`close` (Ctrl-C interrupts)."""
        while not self._closed:
            batch = self.read_batch()
            if batch.num_rows:
                yield batch

    def commit(self) -> None:
        """Commits the offsets of every message returned so far (needs a ``group_id``)."""
        if self.group_id is None:
            raise ValueError("commit() needs a consumer with a group_id")
        if self._revoke_commits is not None:  # inside on_revoke: committed before the revoke completes
            self._revoke_commits = (True, self._revoke_commits[1])
            return
        self._native.commit()

    def commit_offsets(self, offsets: Mapping[Tuple[str, int], int]) -> None:
        """Commits explicit next offsets ``{(topic, partition): offset}`` (needs a ``group_id``), for
        applications that make data durable in pieces and may commit only part of what they read.
        Partitions not assigned to this consumer, and offsets at or below what it committed
        before, are left out (never an error)."""
        if self.group_id is None:
            raise ValueError("commit_offsets() needs a consumer with a group_id")
        wanted = [(t, p, o) for (t, p), o in offsets.items()]
        if self._revoke_commits is not None:  # inside on_revoke
            self._revoke_commits[1].extend(wanted)
            return
        self._native.commit_offsets(wanted)

    def seek(self, topic: str, partition: int, offset: int, timeout: float = 10.0) -> None:
        """Moves the read position of an assigned partition (``-2``: beginning, ``-1``: end).
        Seeking back re-reads, but :meth:`commit` never moves a committed offset backwards."""
        self._not_in_callback("seek")
        self._native.seek(topic, partition, offset, timeout)

    def assignment(self) -> List[Tuple[str, int]]:
        """The (topic, partition) pairs assigned to this consumer."""
        self._not_in_callback("assignment")
        return list(self._native.assignment())

    def positions(self) -> dict:
        """``{(topic, partition): next offset}`` after what was returned so far, for the partitions
        this consumer holds (a revoked partition is dropped)."""
        self._not_in_callback("positions")
        return {(t, p): o for t, p, o in self._native.positions()}

    def committed(self) -> dict:
        """``{(topic, partition): next offset}``: the highest offset this consumer committed per
        partition (it never commits one lower)."""
        self._not_in_callback("committed")
        return {(t, p): o for t, p, o in self._native.committed_by_me()}

    def revocations(self) -> Tuple[int, int]:
        """``(rebalances that revoked partitions from this consumer, partitions revoked in all)``."""
        self._not_in_callback("revocations")
        return tuple(self._native.revocations())  # type: ignore[return-value]

    def offsets_for_times(
        self, timestamps: Mapping[Tuple[str, int], int], timeout: float = 10.0
    ) -> Dict[Tuple[str, int], Optional[int]]:
        """``{(topic, partition): offset}``: for each time (milliseconds since the epoch), the
        earliest offset whose message timestamp is at or after it, or ``None`` when no message
        of the partition is that recent. Kafka answers from its time index (librdkafka's
        ``offsets_for_times``); no message is read, and the partitions need not be assigned.
        :meth:`seek` to the offset to read from that time.

        Example:
            >>> with pktstream.Consumer("packets", bootstrap_servers="127.0.0.1:9092") as c:  # doctest: +SKIP
            ...     start = c.offsets_for_times({("packets", 0): 1_700_000_000_000})
            ...     c.seek("packets", 0, start[("packets", 0)] or -1)
        """
        self._not_in_callback("offsets_for_times")
        asked = [(t, int(p), int(ms)) for (t, p), ms in timestamps.items()]
        return {(t, p): o for t, p, o in self._native.offsets_for_times(asked, timeout)}

    @property
    def config(self) -> dict:
        """The effective librdkafka configuration, secrets shown as ``***``."""
        return dict(self._native.config())

    def close(self) -> None:
        """Leaves the group and releases the client (uncommitted offsets are not committed, unless
        ``on_revoke``, which is called for the partitions still held, commits them)."""
        if not self._closed:
            self._closed = True
            self._native.close()

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<pktstream.Consumer topics={self.topics} group_id={self.group_id!r} "
            f"bootstrap_servers={self.bootstrap_servers!r} format={self.format!r} {state}>"
        )


def consume(
    topics: Union[str, Sequence[str]],
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    format: ConsumeFormat = "json",
    schema: Optional[pa.Schema] = None,
    max_rows: Optional[int] = None,
    timeout: float = 10.0,
    group_id: Optional[str] = None,
    columns: Optional[Sequence[str]] = None,
    addresses: AddressFormat = "string",
    timestamp_unit: TimestampUnit = "us",
    config: Config = None,
    headers: bool = False,
) -> pa.Table:
    """Reads a topic into one Arrow table: up to ``max_rows`` rows, or everything up to the end of
    the topic as it was when the call started.

    Without a ``group_id`` every partition is read from the beginning and nothing is committed.
    With one, the group's committed offsets are the start and reading stops once no message came
    for ``timeout`` seconds (or at ``max_rows``); then, **before returning**, the offsets of every
    row in the table are committed (synchronously). That is at-most-once delivery for the group:
    rows the caller loses afterwards (a crash before they are stored) are not read again by the
    group. For at-least-once, use a :class:`Consumer` and call :meth:`Consumer.commit` after the
    rows are safe. If the commit fails, :class:`~pktstream.KafkaError` is raised and no table is
    returned.
    ``headers=True`` adds every header as a ``_headers`` column (see :class:`Consumer`).

    Example:
        >>> table = pktstream.consume("packets", bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        >>> table.group_by("ip_proto").aggregate([("ip_proto", "count")])  # doctest: +SKIP
    """
    batches: List[pa.RecordBatch] = []
    rows = 0
    with Consumer(
        topics,
        group_id=group_id,
        bootstrap_servers=bootstrap_servers,
        format=format,
        schema=schema,
        columns=columns,
        addresses=addresses,
        timestamp_unit=timestamp_unit,
        config=config,
        timeout=timeout,
        headers=headers,
    ) as consumer:
        last = None
        for batch in read_to_end(consumer, timeout, max_rows):
            last = batch
            if batch.num_rows:
                batches.append(batch)
                rows += batch.num_rows
        if group_id is not None and rows:
            consumer.commit()
    if batches:
        return pa.Table.from_batches(batches)
    schema_ = last.schema if last is not None else pa.schema([])
    return schema_.empty_table()


def read_to_end(consumer: "Consumer", timeout: float, max_rows: Optional[int] = None) -> Iterator[pa.RecordBatch]:
    """The batches :func:`consume` reads (empty ones included, for their schema): without a group,
    up to the end of the topics as it was when the consumer was made; with one, until no message
    came for ``timeout`` seconds once partitions are assigned (or at ``max_rows``)."""
    ends = {(t, p): end for t, p, end in consumer.ends or []}
    idle_since = started = time.monotonic()
    rows = 0
    while max_rows is None or rows < max_rows:
        if consumer.ends is not None:
            pos = consumer.positions()
            if all(pos.get(tp, 0) >= end for tp, end in ends.items()):
                return
        want = 65_536 if max_rows is None else min(65_536, max_rows - rows)
        batch = consumer.read_batch(want, min(1.0, timeout))
        yield batch
        if batch.num_rows:
            rows += batch.num_rows
            idle_since = time.monotonic()
        elif consumer.group_id is not None and not consumer.assignment() and time.monotonic() - started < 60:
            idle_since = time.monotonic()  # still joining the group (a restarted member waits out the old one)
        elif time.monotonic() - idle_since >= timeout:
            return


def decode_values(
    values: Any,
    *,
    format: DecodeFormat = "json",
    schema: Optional[pa.Schema] = None,
    columns: Optional[Sequence[str]] = None,
    addresses: AddressFormat = "string",
    timestamp_unit: TimestampUnit = "us",
    keys: Any = None,
    timestamps_ms: Any = None,
) -> pa.RecordBatch:
    """Decodes Kafka message values already read by another client (Spark's Kafka source, a
    confluent-kafka loop) exactly as :class:`Consumer` would.

    Args:
        values: A binary (or string) Arrow array or anything ``pyarrow.array`` accepts.
        format: ``"json"`` (into ``schema``, default the packet schema), ``"raw"`` (frames into the
            packet schema; ``keys`` hold the 8-byte timestamps), ``"arrow"`` (IPC streams) or
            ``"binary"``.
        keys: The message keys (needed by ``raw`` for timestamps). Message headers are not read:
            ``raw`` frames get link type 1 (Ethernet) and ``wirelen`` = captured length.
        timestamps_ms: The messages' Kafka timestamps (``raw`` falls back to them without a key).
            ``keys`` and ``timestamps_ms`` hold one entry per value.

    Returns:
        The value columns, ``_error`` (null, or why a value could not be decoded) and ``_message``
        (which value each row came from: an ``arrow`` value holds many rows). Every value is at
        least one row, by the consumer's rules (see the README's Kafka section).

    Raises:
        ValueError: ``keys`` or ``timestamps_ms`` do not have one entry per value.
        MemoryError: the decoded rows do not fit in memory.

    Example:
        >>> import pktstream, pyarrow as pa
        >>> b = pktstream.decode_values([b'{"a": 1}', b"oops"], schema=pa.schema({"a": pa.int64()}))
        >>> b.column("a").to_pylist(), b.column("_error").is_null().to_pylist()
        ([1, None], [True, False])
    """
    def arr(x: Any) -> Any:
        if x is None or hasattr(x, "__arrow_c_array__"):
            return x
        return pa.array(x, pa.binary()) if not isinstance(x, pa.ChunkedArray) else x.combine_chunks()

    return pa.record_batch(
        _native.decode_values(
            arr(values),
            format=format,
            schema=schema,
            columns=None if columns is None else list(columns),
            addresses=addresses,
            timestamp_unit=timestamp_unit,
            keys=arr(keys),
            timestamps_ms=None if timestamps_ms is None else (
                timestamps_ms if hasattr(timestamps_ms, "__arrow_c_array__") else pa.array(timestamps_ms, pa.int64())
            ),
        )
    )


def _config(config: Config) -> Optional[dict]:
    if config is None:
        return None
    return {str(k): v for k, v in dict(config).items()}


def _file_size(path: Any) -> Optional[int]:
    try:
        return os.stat(path).st_size
    except (OSError, TypeError, ValueError):
        return None


def _as_stream(data: Any) -> Any:
    """Anything tabular as an object with ``__arrow_c_stream__``."""
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "__arrow_c_stream__"):
        return data
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "to_arrow"):  # older polars
        return data.to_arrow()
    if isinstance(data, (list, tuple)) and data and all(isinstance(b, pa.RecordBatch) for b in data):
        return pa.Table.from_batches(list(data))
    raise TypeError(
        f"cannot produce a {type(data).__name__}: pass a pyarrow Table/RecordBatch/RecordBatchReader, "
        "a polars or pandas DataFrame, or an object with __arrow_c_stream__"
    )
