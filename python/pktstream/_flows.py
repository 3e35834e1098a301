"""Flows from packets: :func:`flows` and :func:`iter_flows`.

A flow is every packet between two endpoints (IP version, addresses, ports, IP protocol, VLAN
and tunnel type), both directions together, cut into records by NFStream's rules: an idle
timeout, an active timeout, and the end of the input. See ``docs/flows.md``.
"""

from __future__ import annotations

import collections
import os
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc

from . import _native
from ._events import NETFLOW_SCHEMA
from ._kafka import DEFAULT_BOOTSTRAP, Consumer, ProduceReport, _file_size, produce, read_to_end
from ._progress import Progress
from ._reader import PacketReader
from .exceptions import TruncatedCaptureWarning

__all__ = [
    "FlowMeter", "FlowReader", "flows", "iter_flows", "flow_schema", "FlowProduceReport", "produce_flows", "suricata_events",
    "SURICATA_SCHEMA",
]

PathLike = Union[str, "os.PathLike[str]"]
Accounting = Literal["wire", "ip", "payload"]


def flow_schema(
    statistics: bool = False, columns: Optional[Sequence[str]] = None, server_name: bool = False
) -> pa.Schema:
    """The flow schema: one row per flow record.

    Args:
        statistics: Include the statistical columns (packet sizes and inter-arrival times).
        columns: A projection (names, in the order wanted); ``None`` for every column.
        server_name: Include ``requested_server_name``.

    Example:
        >>> import pktstream
        >>> pktstream.flow_schema(columns=["first_seen", "packets"])
        first_seen: timestamp[ns, tz=UTC] not null
        packets: uint64 not null
    """
    return pa.schema(_native.flow_schema(statistics, None if columns is None else list(columns), server_name))


class FlowReader:
    """A single-use stream of flow record batches from one capture file.

    Iterate it for :class:`pyarrow.RecordBatch` objects (flows are emitted as they expire, the
    rest when the capture ends), or hand it to anything that accepts an Arrow C stream.
    :attr:`stats` counts packets, flows, evicted flows and the packets that have no flow.

    Example:
        >>> import pktstream
        >>> with pktstream.iter_flows("tests/data/sample.pcap") as reader:
        ...     n = sum(batch.num_rows for batch in reader)
        >>> n == reader.stats["flows"]
        True
    """

    def __init__(self, native: Any) -> None:
        self._native = native
        self._warned = False
        self._closed_stats: Optional[dict] = None

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of every batch."""
        return pa.schema(self._native.schema)

    @property
    def stats(self) -> dict:
        """Counters so far: packets, metered, not_ip, fragments, flows, active, evicted, ..."""
        if self._closed_stats is not None:
            return dict(self._closed_stats)
        return dict(self._native.stats())

    def read_next_batch(self) -> Optional[pa.RecordBatch]:
        """The next batch of ended flows, or None at the end of the stream."""
        batch = self._native.next_batch()
        if batch is None:
            self._emit_warnings()
            return None
        return pa.record_batch(batch)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            batch = self.read_next_batch()
            if batch is None:
                return
            yield batch

    def read_all(self) -> pa.Table:
        """Every remaining flow as one :class:`pyarrow.Table`."""
        table = pa.table(self._native.read_all())
        self._emit_warnings()
        return table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._native.__arrow_c_stream__(requested_schema)

    @property
    def live(self) -> bool:
        """Whether the flows come from a live capture (:func:`pktstream.capture`)."""
        return bool(self._native.live)

    def stop(self) -> None:
        """Ends a live capture: the flows still active are flushed with ``expiration="end"``,
        then iteration stops. Does nothing for a file."""
        self._native.stop()

    def close(self) -> None:
        """Releases the file or stops the capture (the final :attr:`stats` stay available)."""
        if self._closed_stats is None:
            self._closed_stats = self._native.stats()
        self._native.close()

    def __enter__(self) -> "FlowReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _emit_warnings(self) -> None:
        if self._warned:
            return
        self._warned = True
        for message in self._native.warnings():
            warnings.warn(message, TruncatedCaptureWarning, stacklevel=3)

    def __repr__(self) -> str:
        s = self.stats
        return f"FlowReader({str(self._native.path)!r}, packets={s.get('packets')}, flows={s.get('flows')})"


def _meter_args(
    idle_timeout: float,
    active_timeout: float,
    tcp_close: bool,
    accounting: str,
    statistics: bool,
    server_name: bool,
    columns: Optional[Sequence[str]],
    max_flows: int,
    batch_size: int,
) -> Dict[str, Any]:
    """The meter's options as the native readers take them (one dict, every key)."""
    return {
        "idle_timeout": float(idle_timeout), "active_timeout": float(active_timeout), "tcp_close": tcp_close,
        "tcp_close_grace": 1.0, "accounting": accounting, "statistics": statistics, "server_name": server_name,
        "columns": None if columns is None else list(columns), "max_flows": max_flows, "batch_size": batch_size,
    }


class FlowMeter:
    """Meters flows from frames pushed in batches rather than read from a capture: a Kafka ``raw``
    topic read with ``format="binary"`` (what :func:`iter_flows` does with a :class:`Consumer`),
    or frames another client read (Spark's Kafka source, confluent-kafka).

    A batch has a binary ``value`` column (the frames) and, where present, ``link_type`` (uint16;
    Ethernet when absent), ``wirelen`` (uint32; the frame's length when absent), ``_key`` (an
    8-byte big-endian timestamp in ``timestamp_unit``, as :func:`produce_pcap` writes it) and
    ``_timestamp`` (the Kafka timestamp, used when the key is not a timestamp). The options are
    :func:`iter_flows`'s. Time is the frames' event time; nothing expires while nothing is pushed.

    Example:
        >>> import pyarrow as pa, pktstream
        >>> udp = bytes(12) + bytes.fromhex("0800" "4500001c00010000401100000a0000010a000002" "d43100350008" "0000")
        >>> meter = pktstream.FlowMeter(columns=["src_ip", "dst_port", "packets"])
        >>> meter.update(pa.record_batch({"value": pa.array([udp, udp], pa.binary())}))
        []
        >>> meter.finish()[0].to_pylist()
        [{'src_ip': '10.0.0.1', 'dst_port': 53, 'packets': 2}]
    """

    def __init__(
        self,
        *,
        idle_timeout: float = 120,
        active_timeout: float = 1800,
        tcp_close: bool = False,
        accounting: Accounting = "wire",
        statistics: bool = False,
        server_name: bool = False,
        columns: Optional[Sequence[str]] = None,
        max_flows: int = 1_000_000,
        batch_size: int = 65536,
        timestamp_unit: Literal["s", "ms", "us", "ns"] = "us",
    ) -> None:
        meter = _meter_args(idle_timeout, active_timeout, tcp_close, accounting, statistics, server_name, columns,
                            max_flows, batch_size)
        self._native = _native.NativeFlowMeter(meter, timestamp_unit=timestamp_unit)

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the flow batches."""
        return pa.schema(self._native.schema)

    @property
    def stats(self) -> dict:
        """Counters: packets, metered, not_ip, fragments, flows, active, evicted, ``empty``
        (messages without a frame) and ``kafka_timestamps`` (frames timed by the Kafka timestamp)."""
        return dict(self._native.stats())

    def update(self, batch: Any) -> List[pa.RecordBatch]:
        """Meters a batch of frames (any Arrow record batch); returns the flows that ended."""
        return [pa.record_batch(b) for b in self._native.update(pa.record_batch(batch))]

    def finish(self) -> List[pa.RecordBatch]:
        """Ends every active flow (``expiration="end"``) and returns them."""
        return [pa.record_batch(b) for b in self._native.finish()]


class _ConsumerFlows:
    """What :class:`FlowReader` needs of its native side, over a Kafka consumer of frames: reads
    as :func:`pktstream.consume` does (to the end of the topics, or until ``timeout`` idle seconds
    with a group) and meters what it reads."""

    def __init__(self, consumer: Consumer, meter: FlowMeter) -> None:
        if consumer.format != "binary":
            raise ValueError(
                'flows from Kafka need the frames: make the Consumer with format="binary" '
                f"(not {consumer.format!r}) on a topic of raw frames"
            )
        self._consumer, self._meter = consumer, meter
        self._batches = read_to_end(consumer, consumer.timeout)
        self._ready: collections.deque = collections.deque()
        self._done = False
        self._messages = 0
        self.path = "kafka:" + ",".join(consumer.topics)
        self.file_size = None
        self.live = False
        self.schema = meter.schema

    def next_batch(self) -> Optional[pa.RecordBatch]:
        while not self._ready:
            if self._done:
                return None
            batch = next(self._batches, None)
            if batch is None:
                self.stop()
            elif batch.num_rows:
                self._messages += batch.num_rows
                self._ready.extend(self._meter.update(batch))
        return self._ready.popleft()

    def stop(self) -> None:
        """The input ends here: the active flows are flushed; with a group, the offsets read are
        committed (every packet read is in a flow handed out or about to be)."""
        if self._done:
            return
        self._done = True
        self._ready.extend(self._meter.finish())
        if self._consumer.group_id is not None and self._messages:
            self._consumer.commit()

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(iter(self.next_batch, None)), schema=self.schema)

    def stats(self) -> dict:
        return {**self._meter.stats, "messages": self._messages, "format": "kafka", "warnings": []}

    def warnings(self) -> List[str]:
        return []

    def close(self) -> None:
        self._done = True

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        reader = pa.RecordBatchReader.from_batches(self.schema, iter(self.next_batch, None))
        return reader.__arrow_c_stream__(requested_schema)


def iter_flows(
    source: Union[PathLike, PacketReader, Consumer],
    *,
    idle_timeout: float = 120,
    active_timeout: float = 1800,
    tcp_close: bool = False,
    accounting: Accounting = "wire",
    statistics: bool = False,
    server_name: bool = False,
    columns: Optional[Sequence[str]] = None,
    max_flows: int = 1_000_000,
    batch_size: int = 65536,
    strict: bool = False,
    bpf: Optional[str] = None,
) -> FlowReader:
    """Meters bidirectional flows from a capture file or a live capture, streaming.

    Flows are emitted as they expire (idle, active timeout, TCP close, eviction), so memory is
    bounded by the flows active at once, and the flows still active are flushed at the end with
    ``expiration="end"``. The defaults are NFStream's, so the two can be compared.

    From a live capture (``source=pktstream.capture(...)``) flows also end while the link is
    quiet, by the wall clock: a flow idle for ``idle_timeout`` is handed out at the next read
    timeout, not at the next packet. The capture ends as :func:`pktstream.capture` says
    (``max_packets``, ``duration``, :meth:`FlowReader.stop`), then the active flows are flushed;
    :attr:`FlowReader.stats` carries the capture's drop counters too.

    Args:
        source: A capture file (pcap or pcapng, either one gzip-compressed), or a packet reader
            from :func:`pktstream.iter_batches` or :func:`pktstream.capture`. The meter takes
            over the reader's source where the reader stopped; the packet reader reads nothing
            more. Or a :class:`Consumer` with ``format="binary"`` on a topic of raw frames
            (``produce_pcap(format="raw")``): read as :func:`pktstream.consume` reads (without a
            group to the end of the topics, with one until ``timeout`` seconds pass without a
            message), flows flushed at the end, then the group's offsets committed (see
            :class:`FlowMeter` for the columns and the time used).
        idle_timeout: Seconds without a packet after which a flow ends (NFStream: 120).
        active_timeout: A packet this many seconds or more after a record's first packet ends
            the record and starts the next (NFStream: 1800).
        tcp_close: End TCP flows on RST or once both sides sent FIN (after 1 s without
            packets, or at a new SYN). NFStream never does this, hence off by default.
        accounting: What ``bytes`` adds up: ``"wire"`` frame lengths on the wire (NFStream's
            default), ``"ip"`` IP packet lengths or ``"payload"`` transport payload lengths.
        statistics: Add min/mean/stddev/max of packet sizes and inter-arrival times per
            direction (NFStream's ``statistical_analysis`` columns).
        server_name: Add ``requested_server_name``: the TLS ClientHello SNI, the HTTP Host
            header or the DNS query name, from the first 10 packets of the flow.
        columns: A projection of the flow schema; ``None`` for every column.
        max_flows: Flows held at most; beyond it the least recently seen flow is emitted with
            ``expiration="evicted"`` and counted in ``stats["evicted"]``.
        batch_size: Flows per batch at most.
        strict: Raise :class:`~pktstream.FormatError` on a truncated or corrupt tail.
        bpf: A BPF filter in tcpdump syntax: only the packets of a capture file passing it are
            metered, as if the file had been filtered by ``tcpdump -r FILE -w OUT EXPR`` first
            (``stats["filtered"]`` counts the others). For a packet reader ``source``, give the
            filter to the reader (``iter_batches(path, bpf=...)``, ``capture(..., bpf=...)``).

    Raises:
        FileNotFoundError: The file does not exist.
        pktstream.FormatError: Not a capture file.
        ValueError: The packet reader was already consumed or closed.
        ValueError: Unknown column or bad option; a ``bpf`` that does not compile (with
            libpcap's message), or a ``bpf`` with a packet reader ``source``.

    Example:
        >>> import pktstream
        >>> reader = pktstream.iter_flows("tests/data/sample.pcap", columns=["src_ip", "packets"])
        >>> batch = next(iter(reader))
        >>> batch.schema.names
        ['src_ip', 'packets']

        Flows from a live capture (root or ``CAP_NET_RAW``), ended after a minute:

        >>> live = pktstream.iter_flows(pktstream.capture("eth0", duration=60), idle_timeout=15)  # doctest: +SKIP
        >>> for batch in live:  # doctest: +SKIP
        ...     print(batch.num_rows, "flows ended")
    """
    args = _meter_args(idle_timeout, active_timeout, tcp_close, accounting, statistics, server_name, columns,
                       max_flows, batch_size)
    if isinstance(source, Consumer):
        if bpf is not None:
            raise ValueError("bpf applies to capture files; filter a Kafka topic's frames when producing them")
        meter = FlowMeter.__new__(FlowMeter)
        meter._native = _native.NativeFlowMeter(args, timestamp_unit=source.timestamp_unit)  # type: ignore[arg-type]
        return FlowReader(_ConsumerFlows(source, meter))
    native = _native.NativeFlowReader(
        source._native if isinstance(source, PacketReader) else os.fspath(source), args, strict=strict, bpf=bpf
    )
    return FlowReader(native)


def flows(
    source: Union[PathLike, PacketReader, Consumer],
    *,
    idle_timeout: float = 120,
    active_timeout: float = 1800,
    tcp_close: bool = False,
    accounting: Accounting = "wire",
    statistics: bool = False,
    server_name: bool = False,
    columns: Optional[Sequence[str]] = None,
    max_flows: int = 1_000_000,
    batch_size: int = 65536,
    strict: bool = False,
    bpf: Optional[str] = None,
) -> pa.Table:
    """Meters bidirectional flows from a capture file (or a packet reader) into a
    :class:`pyarrow.Table`.

    Takes the same arguments as :func:`iter_flows`, which streams instead. The GIL is released
    while metering and Ctrl-C interrupts between batches.

    Example:
        >>> import pktstream
        >>> table = pktstream.flows("tests/data/sample.pcap")
        >>> table.column_names[:5]
        ['flow_id', 'community_id', 'first_seen', 'last_seen', 'duration']
        >>> int(pktstream.flows("tests/data/sample.pcap", columns=["packets"])["packets"].to_numpy().sum()) > 0
        True
        >>> tcp = pktstream.flows("tests/data/sample.pcap", bpf="tcp", columns=["ip_proto"])
        >>> set(tcp["ip_proto"].to_pylist())
        {6}
    """
    return iter_flows(
        source,
        idle_timeout=idle_timeout,
        active_timeout=active_timeout,
        tcp_close=tcp_close,
        accounting=accounting,
        statistics=statistics,
        server_name=server_name,
        columns=columns,
        max_flows=max_flows,
        batch_size=batch_size,
        strict=strict,
        bpf=bpf,
    ).read_all()


# -- flows into Kafka ---------------------------------------------------------------------------------

Layout = Literal["native", "suricata"]

#: The event layout of :func:`suricata_events` and of ``produce_flows(layout="suricata")``: the
#: Kappa netflow job's fields with :data:`pktstream.testing.netflow.SCHEMA`'s types (so the distance
#: pipeline decodes them as it decodes the generator's), then the flow's own identifiers.
SURICATA_SCHEMA = pa.schema(
    [
        *NETFLOW_SCHEMA,
        ("nproto", pa.int32()),
        ("flow_start", pa.timestamp("us", tz="UTC")),
        ("flow_id", pa.uint64()),
        ("community_id", pa.string()),
    ]
)

#: The flow columns :func:`suricata_events` reads.
SURICATA_INPUT_COLUMNS = (
    "flow_id", "community_id", "first_seen", "last_seen", "duration", "ip_version", "src_ip", "dst_ip",
    "src_port", "dst_port", "ip_proto", "src2dst_packets", "src2dst_bytes", "dst2src_packets", "dst2src_bytes",
)

#: The namespace of the ``eventid`` UUIDs (a UUID5 of the DNS name ``flows.pktstream``).
EVENTID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "flows.pktstream")


def _eventids(batch: pa.RecordBatch) -> pa.Array:
    """UUID5 of ``community_id|first_seen ns|src_ip|src_port|dst_ip|dst_port|ip_proto|flow_id``."""
    cols = [batch.column(name).to_pylist() for name in
            ("community_id", "src_ip", "src_port", "dst_ip", "dst_port", "ip_proto", "flow_id")]
    first = pc.cast(batch.column("first_seen"), pa.int64()).to_pylist()
    ns = EVENTID_NAMESPACE
    return pa.array(
        [str(uuid.uuid5(ns, f"{cid or ''}|{t}|{sip}|{sp or 0}|{dip}|{dp or 0}|{proto}|{fid}"))
         for cid, sip, sp, dip, dp, proto, fid, t in zip(*cols, first)],
        pa.string(),
    )


def suricata_events(flows: Union[pa.Table, pa.RecordBatch], *, ipv6: Literal["skip", "null"] = "skip") -> pa.Table:
    """Flow records as the Kappa netflow job's events (:data:`SURICATA_SCHEMA`).

    The mapping (see docs/flows.md, "Flows into Kafka and the distance pipeline"):

    * ``out_bytes``/``out_packets`` are ``src2dst_*`` (what the flow's first sender sent) and
      ``in_*`` are ``dst2src_*``: in :mod:`pktstream.testing.netflow` the source is the internal host and
      ``out`` is what it sends (a scan probe is one packet *out*, an exfiltration is bytes *out*).
    * ``src_ip4``/``dst_ip4`` are dotted-quad strings, as in :data:`pktstream.testing.netflow.SCHEMA`,
      which the distance pipeline decodes and groups by.
    * ``@timestamp`` is the record's last packet (``last_seen``): the meter emits records in
      last-seen order, so the events of a topic come in event-time order, which the pipeline's
      watermark wants. ``flow_start`` is the first packet, ``duration`` seconds (float).
    * ``eventid`` is deterministic: a UUID5 (:data:`EVENTID_NAMESPACE`) of the Community ID, the
      first packet's time in nanoseconds, the directed 5-tuple and the ``flow_id``, so the same
      capture and options give the same ids (and replays de-duplicate downstream).
    * Ports of portless protocols (ICMP, ...) are 0, as NFStream and netflow exporters report them,
      so the port features of the distance are never missing. ``nproto`` is the IP protocol number.
    * IPv6 records have no IPv4 address: ``ipv6="skip"`` (the default) leaves them out,
      ``ipv6="null"`` keeps them with null ``src_ip4``/``dst_ip4`` (the pipeline counts such events
      as invalid, since its key is missing).

    Args:
        flows: Flow records (at least :data:`SURICATA_INPUT_COLUMNS`).
        ipv6: ``"skip"`` or ``"null"``.

    Example:
        >>> import pktstream
        >>> from pktstream._flows import suricata_events
        >>> events = suricata_events(pktstream.flows("tests/data/sample.pcap"))
        >>> events.column_names[:4], events.num_rows
        (['eventid', 'src_ip4', 'dst_ip4', 'dst_port'], 136)
    """
    if ipv6 not in ("skip", "null"):
        raise ValueError(f"ipv6 must be 'skip' or 'null', not {ipv6!r}")
    table = flows if isinstance(flows, pa.Table) else pa.Table.from_batches([flows])
    missing = [c for c in SURICATA_INPUT_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"the suricata layout needs the flow columns {', '.join(missing)}")
    v4 = pc.equal(table.column("ip_version"), 4)
    if ipv6 == "skip":
        table = table.filter(v4)
        v4 = pc.equal(table.column("ip_version"), 4)
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    if batch is None:
        return SURICATA_SCHEMA.empty_table()

    def ip4(name: str) -> pa.Array:
        return pc.if_else(v4, batch.column(name), pa.scalar(None, pa.string()))

    def port(name: str) -> pa.Array:
        return pc.cast(pc.fill_null(batch.column(name), 0), pa.int32())

    def count(name: str) -> pa.Array:
        return pc.cast(batch.column(name), pa.int64())

    def us(name: str) -> pa.Array:
        # Truncation toward the past, as a pcap's microsecond timestamps.
        ns = pc.cast(batch.column(name), pa.int64())
        return pc.cast(pc.divide(ns, 1000), pa.timestamp("us", tz="UTC"))

    duration = pc.divide(pc.cast(pc.cast(batch.column("duration"), pa.int64()), pa.float64()), 1e9)
    columns = [
        _eventids(batch), ip4("src_ip"), ip4("dst_ip"), port("dst_port"), port("src_port"), duration,
        count("dst2src_bytes"), count("dst2src_packets"), count("src2dst_bytes"), count("src2dst_packets"),
        us("last_seen"), pc.cast(batch.column("ip_proto"), pa.int32()), us("first_seen"),
        batch.column("flow_id"), batch.column("community_id"),
    ]
    return pa.Table.from_arrays(columns, schema=SURICATA_SCHEMA)


@dataclass
class FlowProduceReport(ProduceReport):
    """What :func:`produce_flows` did: a :class:`~pktstream.ProduceReport` (``rows`` are the
    events sent) plus the meter's side.

    Attributes:
        flows: Flow records metered.
        skipped_ipv6: IPv6 records left out (``layout="suricata"``, ``ipv6="skip"``).
        expirations: Flow records by ``expiration`` (``idle``, ``active``, ``end``, ...).
        flow_stats: The meter's final :attr:`FlowReader.stats`.
    """

    flows: int = 0
    skipped_ipv6: int = 0
    expirations: Dict[str, int] = field(default_factory=dict)
    flow_stats: Dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        s = super().__str__()
        s += f"; {self.flows:,} flows from {self.flow_stats.get('packets', 0):,} packets"
        if self.skipped_ipv6:
            s += f", {self.skipped_ipv6:,} IPv6 flows skipped"
        return s


_AUTO = "auto"


def _native_json_schema(schema: pa.Schema) -> pa.Schema:
    """``duration`` as int64 nanoseconds: Arrow's JSON writer spells durations as ISO-8601 text
    ("PT0.5S"), which the JSON decoders (pktstream's consumer too) do not read back."""
    return pa.schema([f.with_type(pa.int64()) if pa.types.is_duration(f.type) else f for f in schema])


def _native_json(batch: pa.RecordBatch) -> pa.RecordBatch:
    schema = _native_json_schema(batch.schema)
    if schema.equals(batch.schema):
        return batch
    return pa.RecordBatch.from_arrays([c.cast(f.type) for c, f in zip(batch.columns, schema)], schema=schema)


def _count_expirations(batch: pa.RecordBatch, into: Dict[str, int]) -> None:
    if "expiration" in batch.schema.names and batch.num_rows:
        for r in batch.column("expiration").value_counts().to_pylist():
            into[r["values"]] = into.get(r["values"], 0) + r["counts"]


def produce_flows(
    source: Union[PathLike, PacketReader, Consumer, FlowReader],
    topic: str,
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    layout: Layout = "suricata",
    config: Optional[Mapping[str, Any]] = None,
    key: Optional[str] = _AUTO,
    progress: Union[None, bool, Callable[["FlowReader"], Any]] = None,
    ipv6: Literal["skip", "null"] = "skip",
    raise_on_failure: bool = True,
    on_batch: Optional[Callable[[FlowReader], Any]] = None,
    **flow_options: Any,
) -> FlowProduceReport:
    """Meters the flows of a capture and sends them to a Kafka topic as JSON, one message per flow.

    Streams: flows go to Kafka batch by batch as :func:`iter_flows` emits them, so memory stays
    bounded by the active flows whatever the capture's size.

    Args:
        source: A capture file or a packet reader such as a live capture (``flow_options``
            are :func:`iter_flows`'s), or a :class:`FlowReader` (then no ``flow_options``).
        topic: The topic (it must exist, or the broker must create topics).
        bootstrap_servers: ``host:port[,...]``.
        layout: ``"suricata"``: the Kappa netflow job's events (:func:`suricata_events`, what
            ``pktstream distances`` consumes); ``"native"``: the flow columns as they are, but
            ``duration`` in integer nanoseconds (Arrow writes durations as ISO-8601 text).
        config: librdkafka producer settings.
        key: Message key column. Default: ``src_ip4`` for ``suricata`` (a source's events share a
            partition and stay in time order, as the pipeline groups by it), ``"flow"`` (the
            Community ID) for ``native``; ``None`` for no key.
        progress: ``None`` (a bar on a terminal), ``True``/``False``, or a callable taking the
            :class:`FlowReader` after each batch.
        ipv6: ``suricata`` layout only: ``"skip"`` IPv6 flows (counted in ``skipped_ipv6``) or send
            them with ``"null"`` IPv4 addresses.
        raise_on_failure: Raise :class:`~pktstream.DeliveryError` when messages failed.
        on_batch: Called with the reader after each flow batch is handed to Kafka.

    Example:
        >>> import pktstream
        >>> report = pktstream.produce_flows("tests/data/sample.pcap", "flows",
        ...                                  bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        >>> report.flows, report.skipped_ipv6, report.delivered  # doctest: +SKIP
        (196, 60, 136)
    """
    if layout not in ("native", "suricata"):
        raise ValueError(f"layout must be 'native' or 'suricata', not {layout!r}")
    if isinstance(source, FlowReader):
        if flow_options:
            raise ValueError("flow options go to iter_flows(), not with a FlowReader")
        reader = source
    else:
        reader = iter_flows(source, **flow_options)
    if key == _AUTO:
        key = "src_ip4" if layout == "suricata" else "flow"
    counts = {"flows": 0, "skipped": 0}
    expirations: Dict[str, int] = {}
    size = None if isinstance(source, (FlowReader, PacketReader, Consumer)) else _file_size(source)
    callback = progress if callable(progress) else None
    bar = Progress(size, f"flows -> {topic}", False if callable(progress) else progress)
    schema = SURICATA_SCHEMA if layout == "suricata" else _native_json_schema(reader.schema)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            counts["flows"] += batch.num_rows
            _count_expirations(batch, expirations)
            if layout == "suricata":
                events = suricata_events(batch, ipv6=ipv6)
                counts["skipped"] += batch.num_rows - events.num_rows
                out = events.to_batches()
            else:
                out = [_native_json(batch)]
            yield from (b for b in out if b.num_rows)
            bar.update(reader.stats.get("bytes_read", 0))
            if callback is not None:
                callback(reader)
            if on_batch is not None:
                on_batch(reader)

    with reader, bar:
        base = produce(pa.RecordBatchReader.from_batches(schema, batches()), topic,
                       bootstrap_servers=bootstrap_servers, format="json", key=key, config=config,
                       progress=False, raise_on_failure=raise_on_failure)
    report = FlowProduceReport(**{f: getattr(base, f) for f in ProduceReport.__dataclass_fields__})
    report.flows, report.skipped_ipv6 = counts["flows"], counts["skipped"]
    report.flow_stats, report.expirations = reader.stats, expirations
    report.warnings = list(report.warnings) + list(report.flow_stats.get("warnings") or [])
    return report
