"""Writing packets back to a capture file: :class:`PcapWriter` and :func:`write_pcap`.

Read with the opt-in ``frame`` column, filter with anything that speaks Arrow, and write what is
left as a classic pcap that tcpdump, tshark, Zeek or scapy open. The writer is the core's
(``src/sink/pcap.rs``), the one live capture, the archive and its query use.

Example:
    >>> import os, tempfile, pyarrow.compute as pc, pktstream
    >>> out = os.path.join(tempfile.mkdtemp(), "dns.pcap")
    >>> packets = pktstream.read_pcap("tests/data/sample.pcap",
    ...                               columns=["ts", "wirelen", "dst_port", "frame"])
    >>> dns = packets.filter(pc.equal(packets["dst_port"], 53))
    >>> pktstream.write_pcap(dns, out) == dns.num_rows
    True
    >>> pktstream.read_pcap(out).num_rows == dns.num_rows
    True
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import pyarrow as pa

from ._native import NativePcapWriter

__all__ = ["PcapWriter", "write_pcap"]

Target = Union[str, "os.PathLike[str]", Any]


class PcapWriter:
    """A classic pcap file being written (gzip-compressed when the name ends in ``.gz``).

    Args:
        target: A path, or an object with a ``write(bytes)`` method (a pyarrow filesystem's
            output stream, ``io.BytesIO``); records reach it in 1 MiB writes. The object is not
            closed by :meth:`close`.
        link_type: The LINKTYPE_ value of every packet (1 = Ethernet). Rows of a batch whose
            ``link_type`` column says otherwise are skipped and counted.
        snaplen: The file's snapshot length; longer frames are cut to it (as ``tcpdump -s``).
        nanosecond: Store nanosecond timestamps (magic ``0xa1b23c4d``) instead of microseconds.
        big_endian: Write every header field big-endian, as a SPARC or PowerPC host would.

    A timestamp outside 1970-2106 (what pcap's 32-bit seconds hold) raises ValueError and writes
    nothing for that packet.

    Example:
        >>> import io, pktstream
        >>> buf = io.BytesIO()
        >>> with pktstream.PcapWriter(buf, nanosecond=True) as w:
        ...     w.write(1_700_000_000_000_000_001, b"\\x00" * 60)
        >>> len(buf.getvalue())  # 24-byte file header + 16-byte record header + 60 bytes
        100
    """

    def __init__(
        self,
        target: Target,
        *,
        link_type: int = 1,
        snaplen: int = 262144,
        nanosecond: bool = False,
        big_endian: bool = False,
    ) -> None:
        if isinstance(target, os.PathLike):
            target = os.fspath(target)
        self._native = NativePcapWriter(
            target, link_type=link_type, snaplen=snaplen, nanosecond=nanosecond, big_endian=big_endian
        )
        self.skipped = 0

    def write(self, ts_ns: int, frame: bytes, wirelen: Optional[int] = None) -> None:
        """Appends one packet: its time in ns since the epoch, its bytes, and its length on the
        wire (default: the frame's length)."""
        self._native.write(ts_ns, frame, wirelen)

    def write_batch(self, batch: Any) -> int:
        """Appends every row of a record batch with ``ts`` and ``frame`` columns (``wirelen`` and
        ``link_type`` used when present); rows with a null ``ts`` or ``frame`` or another link
        type are skipped (counted in :attr:`skipped`). Returns the rows written."""
        written, skipped = self._native.write_batch(batch)
        self.skipped += skipped
        return int(written)

    def write_table(self, data: Any) -> int:
        """Appends a table, a record batch reader, or anything with ``__arrow_c_stream__``, batch
        by batch. Returns the rows written."""
        if isinstance(data, pa.RecordBatch):
            return self.write_batch(data)
        reader = pa.RecordBatchReader.from_stream(data)
        return sum(self.write_batch(b) for b in reader)

    @property
    def packets(self) -> int:
        """Packets written so far."""
        return int(self._native.packets)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return bool(self._native.closed)

    def close(self) -> None:
        """Flushes and closes the file (a ``.gz`` gets its trailer). Calling it twice is fine."""
        self._native.close()

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_pcap(
    data: Any,
    where: Target,
    *,
    link_type: int = 1,
    snaplen: int = 262144,
    nanosecond: bool = False,
) -> int:
    """Writes packets (a table, batch or stream with ``ts`` and ``frame`` columns, as
    ``read_pcap(..., columns=[..., "frame"])`` gives) to a classic pcap file. Returns the packets
    written. See :class:`PcapWriter` for the options and the rows that are skipped.

    Example:
        >>> import io, pktstream
        >>> t = pktstream.read_pcap("tests/data/sample.pcap", columns=["ts", "frame", "wirelen"])
        >>> pktstream.write_pcap(t, io.BytesIO()) == t.num_rows
        True
    """
    with PcapWriter(where, link_type=link_type, snaplen=snaplen, nanosecond=nanosecond) as w:
        return w.write_table(data)
