"""Reading capture files into Arrow: :func:`read_pcap`, :func:`iter_batches`, :func:`schema`."""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterator, Literal, Optional, Sequence, Union

import pyarrow as pa

from . import _native
from .exceptions import TruncatedCaptureWarning

__all__ = ["PacketReader", "read_pcap", "iter_batches", "schema"]

PathLike = Union[str, "os.PathLike[str]"]
AddressFormat = Literal["string", "binary"]


def schema(columns: Optional[Sequence[str]] = None, addresses: AddressFormat = "string") -> pa.Schema:
    """The packet schema: one row per packet, every column nullable.

    Args:
        columns: A projection (names, in the order wanted); ``None`` for every column.
        addresses: ``"string"`` for readable addresses, ``"binary"`` for 4/16-byte IPs and
            6-byte MACs.

    Example:
        >>> import pktstream
        >>> pktstream.schema(["ts", "src_ip"])
        ts: timestamp[ns, tz=UTC]
        src_ip: string
    """
    return pa.schema(_native.packet_schema(None if columns is None else list(columns), addresses))


class PacketReader:
    """A single-use stream of packet record batches from one capture file.

    Iterate it for :class:`pyarrow.RecordBatch` objects, or hand it to anything that accepts an
    Arrow C stream (``pyarrow.table(reader)``, ``polars.from_arrow(reader)``, DuckDB, ...).
    Memory stays bounded by ``batch_size`` whatever the file size. A truncated or corrupt tail
    ends the stream with a :class:`~pktstream.TruncatedCaptureWarning` (or raises
    :class:`~pktstream.FormatError` with ``strict=True``) after every packet before it.

    Example:
        >>> import pktstream
        >>> with pktstream.iter_batches("tests/data/sample.pcap", batch_size=4) as reader:
        ...     sizes = [batch.num_rows for batch in reader]
        >>> sum(sizes) == reader.stats["packets"]
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
        """Counters so far: packets, filtered, decode_errors, link_types, bytes_read, format, ..."""
        if self._closed_stats is not None:
            return dict(self._closed_stats)
        return dict(self._native.stats())

    @property
    def file_size(self) -> Optional[int]:
        """Size of the file on disk (compressed size for gzip), or None for a pipe."""
        return self._native.file_size

    @property
    def progress(self) -> Optional[float]:
        """Fraction of the file read so far (0.0-1.0), or None when the size is unknown."""
        size = self.file_size
        if not size:
            return None
        return min(1.0, self.stats.get("bytes_read", 0) / size)

    def read_next_batch(self) -> Optional[pa.RecordBatch]:
        """The next batch, or None at the end of the stream."""
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
        """Every remaining packet as one :class:`pyarrow.Table`."""
        table = pa.table(self._native.read_all())
        self._emit_warnings()
        return table

    def to_pyarrow(self) -> pa.RecordBatchReader:
        """The rest of the stream as a :class:`pyarrow.RecordBatchReader` (no copy)."""
        return pa.RecordBatchReader.from_stream(self)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._native.__arrow_c_stream__(requested_schema)

    def close(self) -> None:
        """Releases the file (the final :attr:`stats` stay available)."""
        if self._closed_stats is None:
            self._closed_stats = self._native.stats()
        self._native.close()

    def __enter__(self) -> "PacketReader":
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
        s = self._native.stats()
        return f"PacketReader({str(self._native.path)!r}, format={s.get('format')!r}, packets_read={s.get('packets')})"


def iter_batches(
    path: PathLike,
    *,
    columns: Optional[Sequence[str]] = None,
    batch_size: int = 65536,
    addresses: AddressFormat = "string",
    strict: bool = False,
    bpf: Optional[str] = None,
) -> PacketReader:
    """Opens a capture file as a stream of record batches.

    The format is recognised from the bytes: pcap (micro- or nanosecond, either byte order),
    pcapng (any number of interfaces and link types) and either one gzip-compressed.

    Args:
        path: The capture file.
        columns: A projection of the packet schema; ``None`` for every column. Asking only for
            file-level columns (``ts``, ``caplen``, ...) skips frame decoding entirely.
        batch_size: Packets per batch.
        addresses: ``"string"`` (default) or ``"binary"``.
        strict: Raise :class:`~pktstream.FormatError` on a truncated or corrupt tail instead
            of warning.
        bpf: A BPF filter in tcpdump syntax (``"udp"``, ``"tcp port 443"``, ``"vlan and
            host 10.0.0.1"``): only the packets passing it are read, as with
            ``tcpdump -r FILE EXPR``. libpcap compiles it for each link type of the file;
            ``frame_number`` stays the packet's position in the file, and ``stats["filtered"]``
            counts the packets left out. ``len``, ``greater`` and ``less`` compare the captured
            length, not the length on the wire.

    Raises:
        FileNotFoundError: The file does not exist.
        pktstream.FormatError: Not a capture file (bad magic), with the offending offset.
        ValueError: Unknown column or bad option; a ``bpf`` expression that does not compile
            (with libpcap's message).

    Example:
        >>> import pktstream
        >>> reader = pktstream.iter_batches("tests/data/sample.pcap", columns=["ts", "src_ip"])
        >>> next(iter(reader)).num_columns
        2

        Only the UDP packets, numbered by their place in the file:

        >>> with pktstream.iter_batches("tests/data/sample.pcap", bpf="udp") as udp:
        ...     frames = udp.read_all().column("frame_number").to_pylist()
        >>> frames[:4]
        [5, 7, 13, 14]
        >>> udp.stats["packets"] + udp.stats["filtered"]
        200
    """
    native = _native.NativeReader(
        os.fspath(path),
        columns=None if columns is None else list(columns),
        batch_size=batch_size,
        addresses=addresses,
        strict=strict,
        bpf=bpf,
    )
    return PacketReader(native)


def read_pcap(
    path: PathLike,
    *,
    columns: Optional[Sequence[str]] = None,
    batch_size: int = 65536,
    addresses: AddressFormat = "string",
    strict: bool = False,
    bpf: Optional[str] = None,
) -> pa.Table:
    """Reads a whole capture file into a :class:`pyarrow.Table`, one row per packet.

    Takes the same arguments as :func:`iter_batches`; use that instead for files larger than
    memory. The GIL is released while reading and Ctrl-C interrupts between batches.
    ``bpf="tcp port 80"`` keeps only the packets passing that tcpdump filter.

    Example:
        >>> import pktstream
        >>> table = pktstream.read_pcap("tests/data/sample.pcap")
        >>> table.column_names[:4]
        ['frame_number', 'ts', 'caplen', 'wirelen']
        >>> df = table.to_pandas()
    """
    return iter_batches(
        path, columns=columns, batch_size=batch_size, addresses=addresses, strict=strict, bpf=bpf
    ).read_all()
