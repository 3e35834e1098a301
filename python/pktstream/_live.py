"""Live capture: :func:`capture` (an interface as a stream of record batches) and
:func:`produce_live` (an interface into a Kafka topic).

Capturing needs root or the ``CAP_NET_RAW`` capability (``CAP_NET_ADMIN`` too for promiscuous
mode); without it :class:`~pktstream.CaptureError` is raised with ``kind == "permission"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Literal, Mapping, Optional, Sequence

from . import _native
from ._kafka import DEFAULT_BOOTSTRAP, ProduceReport, ProgressArg, _config, _run, _Tracker
from ._reader import AddressFormat, PacketReader
from ._types import TimestampUnit

__all__ = ["LiveReader", "LiveProduceReport", "capture", "produce_live"]

Format = Literal["raw", "json", "csv", "arrow"]


class LiveReader(PacketReader):
    """A live capture as a stream of packet record batches (see :func:`capture`).

    Iterating yields a batch when ``batch_size`` packets arrived or ``timeout`` passed with some
    packets waiting, so a quiet link still delivers promptly. The stream ends after
    ``max_packets`` or ``duration``, or when :meth:`stop` is called. Ctrl-C raises
    ``KeyboardInterrupt`` from the next read and loses nothing already captured: call
    :meth:`stop` and keep iterating to collect the rest. :meth:`read_all` treats Ctrl-C as the
    end of the capture and returns what was captured.

    :attr:`stats` adds libpcap's counters to the reader's: ``received``, ``dropped_kernel`` (no
    room in the kernel buffer: raise ``buffer_size`` or read faster), ``dropped_interface`` and
    ``dropped_pktstream`` (always 0: every packet libpcap hands over becomes a row).
    """

    def stop(self) -> None:
        """Ends the capture: iteration returns what is buffered, then stops."""
        self._native.stop()

    @property
    def interface(self) -> str:
        """The interface captured from."""
        return str(self._native.path)

    @property
    def progress(self) -> Optional[float]:
        """Always None: a live capture has no known size."""
        return None

    def __enter__(self) -> "LiveReader":
        return self

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"LiveReader({self.interface!r}, packets={s.get('packets')}, "
            f"dropped_kernel={s.get('dropped_kernel')})"
        )


def capture(
    interface: str,
    *,
    bpf: Optional[str] = None,
    snaplen: int = 65535,
    promisc: bool = False,
    buffer_size: Optional[int] = None,
    timeout: float = 0.1,
    immediate: bool = False,
    max_packets: Optional[int] = None,
    duration: Optional[float] = None,
    batch_size: int = 65536,
    columns: Optional[Sequence[str]] = None,
    addresses: AddressFormat = "string",
) -> LiveReader:
    """Captures packets from a network interface (libpcap) as a stream of record batches.

    The batches have the same packet schema as :func:`iter_batches` produces for files; ``ts``
    has nanosecond precision where the platform provides it (Linux does).

    Args:
        interface: Interface name (``"eth0"``; ``"any"`` for every interface on Linux).
        bpf: A BPF filter expression (tcpdump syntax), e.g. ``"udp and port 53"``.
        snaplen: Bytes kept of each packet.
        promisc: Put the interface in promiscuous mode.
        buffer_size: Kernel buffer in bytes (libpcap's default, 2 MiB on Linux, when None); raise
            it if ``stats["dropped_kernel"]`` grows.
        timeout: Seconds libpcap waits for packets before returning control; also the longest
            time a partial batch waits before it is handed out.
        immediate: Deliver each packet at once instead of in kernel-filled blocks (lower
            latency, more CPU).
        max_packets: Stop after this many packets.
        duration: Stop after this many seconds.
        batch_size: Packets per batch (at most).
        columns: A projection of the packet schema.
        addresses: ``"string"`` or ``"binary"``.

    Raises:
        pktstream.CaptureError: unknown interface (``kind="no_such_device"``), missing permission
            (``"permission"``: run as root or grant ``CAP_NET_RAW``), invalid BPF expression
            (``"filter"``); the message is libpcap's.
        ValueError: a bad option.

    Example:
        One datagram to ourselves, over loopback, captured (as root or with ``CAP_NET_RAW``):

        >>> import pktstream, socket
        >>> rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        >>> rx.bind(("127.0.0.1", 0))
        >>> port = rx.getsockname()[1]
        >>> with pktstream.capture("lo", bpf=f"udp dst port {port}", max_packets=1, duration=10) as reader:
        ...     with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        ...         _ = tx.sendto(b"hello", ("127.0.0.1", port))
        ...     table = reader.read_all()
        >>> rx.close()
        >>> table.column("dst_port").to_pylist() == [port], table.column("payload_len").to_pylist()
        (True, [5])
        >>> reader.stats["dropped_kernel"]
        0
    """
    native = _native.capture(
        interface,
        bpf=bpf,
        snaplen=snaplen,
        promisc=promisc,
        buffer_size=buffer_size,
        timeout=timeout,
        immediate=immediate,
        max_packets=max_packets,
        duration=duration,
        batch_size=batch_size,
        columns=None if columns is None else list(columns),
        addresses=addresses,
    )
    return LiveReader(native)


@dataclass
class LiveProduceReport(ProduceReport):
    """A :class:`ProduceReport` plus the capture's counters in ``capture``: ``captured``,
    ``received``, ``dropped_kernel``, ``dropped_interface``, ``dropped_pktstream``."""

    capture: Dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        c = self.capture
        return (
            super().__str__()
            + f"; capture: {c.get('received', 0):,} received, {c.get('dropped_kernel', 0):,} dropped by the "
            f"kernel, {c.get('dropped_interface', 0):,} by the interface"
        )


def _live_report(d: Mapping[str, Any]) -> LiveProduceReport:
    return LiveProduceReport(**{k: d[k] for k in LiveProduceReport.__dataclass_fields__ if k in d})


def produce_live(
    interface: str,
    topic: str,
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    format: Format = "raw",
    key: Optional[str] = "flow",
    bpf: Optional[str] = None,
    max_packets: Optional[int] = None,
    duration: Optional[float] = None,
    columns: Optional[Sequence[str]] = None,
    config: Optional[Mapping[str, Any]] = None,
    progress: ProgressArg = None,
    snaplen: int = 65535,
    promisc: bool = False,
    buffer_size: Optional[int] = None,
    timeout: float = 0.1,
    immediate: bool = False,
    timestamp_unit: TimestampUnit = "us",
    rows_per_message: int = 10_000,
    batch_size: int = 65536,
    addresses: AddressFormat = "string",
    connect_timeout: float = 10.0,
    raise_on_failure: bool = True,
) -> LiveProduceReport:
    """Captures packets from an interface into a Kafka topic until ``max_packets``,
    ``duration`` or Ctrl-C.

    Formats and keys are those of :func:`produce_pcap`; the default ``"raw"`` sends each frame as
    it was captured (key = timestamp, Apache Metron's layout). Decoded formats send a batch at
    least every ``timeout`` seconds, so a quiet link is not held back. Capture options are those
    of :func:`capture`.

    Returns:
        A :class:`LiveProduceReport` once every message was acknowledged or failed; ``capture``
        holds the capture counters (kernel drops included).

    Raises:
        pktstream.CaptureError: the capture could not start (see :func:`capture`).
        pktstream.KafkaError: as for :func:`produce_pcap`.
        KeyboardInterrupt: Ctrl-C; the queued messages were still awaited and ``e.report`` is
            the :class:`LiveProduceReport`.

    Example:
        >>> report = pktstream.produce_live("eth0", "packets", duration=10,
        ...                                 bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        >>> report.capture["dropped_kernel"]  # doctest: +SKIP
        0
    """
    tracker = _Tracker(progress, None, "rows", f"capture {interface}")
    return _run(
        lambda: _native.produce_live(
            interface,
            topic,
            bootstrap_servers=bootstrap_servers,
            format=format,
            key=key,
            columns=None if columns is None else list(columns),
            config=_config(config),
            bpf=bpf,
            snaplen=snaplen,
            promisc=promisc,
            buffer_size=buffer_size,
            timeout=timeout,
            immediate=immediate,
            max_packets=max_packets,
            duration=duration,
            timestamp_unit=timestamp_unit,
            rows_per_message=rows_per_message,
            batch_size=batch_size,
            addresses=addresses,
            connect_timeout=connect_timeout,
            progress=tracker,
        ),
        tracker,
        raise_on_failure,
        _live_report,
    )


def capture_to_pcap(
    interface: str,
    path: str,
    *,
    bpf: Optional[str] = None,
    snaplen: int = 65535,
    promisc: bool = False,
    buffer_size: Optional[int] = None,
    timeout: float = 0.1,
    immediate: bool = False,
    max_packets: Optional[int] = None,
    duration: Optional[float] = None,
) -> Dict[str, Any]:
    """Captures into a pcap file (nanosecond timestamps where available) until ``max_packets``,
    ``duration`` or Ctrl-C (which ends the capture normally: the file is complete). Returns the
    counters, with ``written`` packets and ``interrupted``."""
    return dict(
        _native.capture_to_pcap(
            interface,
            path,
            bpf=bpf,
            snaplen=snaplen,
            promisc=promisc,
            buffer_size=buffer_size,
            timeout=timeout,
            immediate=immediate,
            max_packets=max_packets,
            duration=duration,
        )
    )
