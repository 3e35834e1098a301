"""Flows from packets: :func:`flows` and :func:`iter_flows`.

A flow is every packet between two endpoints (IP version, addresses, ports, IP protocol, VLAN
and tunnel type), both directions together, cut into records by NFStream's rules: an idle
timeout, an active timeout, and the end of the input. See ``docs/flows.md``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterator, Literal, Optional, Sequence, Union

import pyarrow as pa

from . import _native
from .exceptions import TruncatedCaptureWarning

__all__ = ["FlowReader", "flows", "iter_flows", "flow_schema"]

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

    def close(self) -> None:
        """Releases the file (the final :attr:`stats` stay available)."""
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


def iter_flows(
    source: PathLike,
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
) -> FlowReader:
    """Meters bidirectional flows from a capture file, streaming.

    Flows are emitted as they expire (idle, active timeout, TCP close, eviction), so memory is
    bounded by the flows active at once, and the flows still active are flushed at the end with
    ``expiration="end"``. The defaults are NFStream's, so the two can be compared.

    Args:
        source: A capture file: pcap or pcapng, either one gzip-compressed.
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

    Raises:
        FileNotFoundError: The file does not exist.
        pktstream.FormatError: Not a capture file.
        ValueError: Unknown column or bad option.

    Example:
        >>> import pktstream
        >>> reader = pktstream.iter_flows("tests/data/sample.pcap", columns=["src_ip", "packets"])
        >>> batch = next(iter(reader))
        >>> batch.schema.names
        ['src_ip', 'packets']
    """
    native = _native.NativeFlowReader(
        os.fspath(source),
        idle_timeout=float(idle_timeout),
        active_timeout=float(active_timeout),
        tcp_close=tcp_close,
        accounting=accounting,
        statistics=statistics,
        server_name=server_name,
        columns=None if columns is None else list(columns),
        max_flows=max_flows,
        batch_size=batch_size,
        strict=strict,
    )
    return FlowReader(native)


def flows(
    source: PathLike,
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
) -> pa.Table:
    """Meters bidirectional flows from a capture file into a :class:`pyarrow.Table`.

    Takes the same arguments as :func:`iter_flows`, which streams instead. The GIL is released
    while metering and Ctrl-C interrupts between batches.

    Example:
        >>> import pktstream
        >>> table = pktstream.flows("tests/data/sample.pcap")
        >>> table.column_names[:5]
        ['flow_id', 'community_id', 'first_seen', 'last_seen', 'duration']
        >>> int(pktstream.flows("tests/data/sample.pcap", columns=["packets"])["packets"].to_numpy().sum()) > 0
        True
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
    ).read_all()
