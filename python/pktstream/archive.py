"""A raw packet archive from Kafka: Apache Metron's pcap backend without Storm or HDFS.

:func:`archive` consumes a ``raw`` topic (key = capture timestamp, value = frame; what
``produce_pcap(..., format="raw")`` and ``produce_live`` write) and writes rolling pcap files per
partition, turning a file over when it holds ``roll_packets`` packets or spans ``roll_seconds`` of
packet time (Metron's ``numPackets`` / ``maxTimeMS``). :func:`query` selects packets across the
rolled files by time range and 5-tuple and writes one time-ordered pcap (Metron's pcap query).

Crash safety: a file is written as ``NAME.<pid>.part``, flushed and fsynced, renamed to ``NAME`` and
only then are the partition's offsets committed, up to the file's last packet (one commit per
consumed batch covers every file closed in it). File names are
fixed by the file's first message (topic, partition, first offset, first timestamp), so after a
crash the archiver re-reads from the last committed offset and rewrites the same file under the
same name: nothing is lost and nothing is stored twice. The part name carries the process id, so
two archivers never write one part file, and a restarted archiver removes only the part files of
processes that are gone.

Several archivers may share a group: when a rebalance takes a partition away, its open file is
closed and committed before the partition goes (``on_revoke``), and rows of it still in a batch
read before the revoke are left to the next owner, which resumes right after the closed file.

Both run in Rust (``pktstream._native``) with the GIL released: the archiver on pktstream's
consumer, the query as a streaming k-way merge by timestamp that holds one packet per open file,
whatever the number of matches. Local directories are handled in Rust alone; other pyarrow
filesystems are read and written through Python streams, about 1 MiB at a time.

Example:
    >>> from pktstream import archive
    >>> archive.file_name("pcap", 3, 1200, 1_700_000_000_000_000_000)
    'pcap-3-00000000000000001200-1700000000000000000.pcap'
    >>> archive.parse_name("pcap-3-00000000000000001200-1700000000000000000.pcap")
    ('pcap', 3, 1200, 1700000000000000000)
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from . import _native
from ._kafka import DEFAULT_BOOTSTRAP
from ._types import TimestampUnit
from .exceptions import PktstreamError

__all__ = ["ArchiveReport", "archive", "query", "file_name", "parse_name", "read_records"]

_NAME = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)-(?P<offset>\d{20})-(?P<ts>-?\d+)\.pcap$")
_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def file_name(topic: str, partition: int, first_offset: int, first_ts_ns: int) -> str:
    """The name of the rolled file that starts with this message."""
    return f"{topic}-{partition}-{first_offset:020d}-{first_ts_ns}.pcap"


def parse_name(name: str) -> Optional[Tuple[str, int, int, int]]:
    """``(topic, partition, first_offset, first_ts_ns)`` of a rolled file's name, or None."""
    m = _NAME.match(os.path.basename(name))
    if not m:
        return None
    return m["topic"], int(m["partition"]), int(m["offset"]), int(m["ts"])


@dataclass
class ArchiveReport:
    """What an :func:`archive` run did: packets written, files closed, offsets committed.

    ``bad_timestamps`` counts packets whose key held a time pcap cannot store (before 1970, after
    2106, or no 8-byte key): they are archived with the Kafka message time (or the epoch).
    ``skipped`` counts messages left to another member after a rebalance, or delivered again.
    """

    packets: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    committed: Dict[Tuple[str, int], int] = field(default_factory=dict)
    paths: List[str] = field(default_factory=list)
    bad_timestamps: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"{self.packets:,} packets in {self.files:,} files ({self.bytes / 1e6:,.1f} MB) "
            f"in {self.seconds:.2f} s"
        )


def _report(d: Mapping[str, Any], seconds: float) -> ArchiveReport:
    return ArchiveReport(
        packets=d["packets"], files=d["files"], bytes=d["bytes"], seconds=seconds, committed=dict(d["committed"]),
        paths=list(d["paths"]), bad_timestamps=d["bad_timestamps"], skipped=d["skipped"],
    )


def _filesystem(uri: str) -> Optional[Tuple[Any, str]]:
    """``(pyarrow filesystem, root)`` for a URI other than ``file://``; None for a local path."""
    if "://" not in uri or uri.startswith("file://"):
        return None
    from pyarrow import fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(uri)
    return filesystem, root.rstrip("/")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


class _FsTarget:
    """Rolled files on a pyarrow filesystem (``s3://``, ``gs://``, ``hdfs://``): written as
    ``NAME.<pid>.part`` through an output stream, closed (uploaded), then moved into place."""

    def __init__(self, filesystem: Any, root: str) -> None:
        self.fs, self.root = filesystem, root
        self.fs.create_dir(root, recursive=True)

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def open(self, name: str) -> Any:
        return self.fs.open_output_stream(self._path(f"{name}.{os.getpid()}.part"))

    def publish(self, stream: Any, name: str) -> str:
        stream.close()
        final = self._path(name)
        self.fs.move(self._path(f"{name}.{os.getpid()}.part"), final)
        return final

    def clean_parts(self, prefix: str) -> None:
        from pyarrow import fs as pafs

        for info in self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True)):
            if _native.archive_is_stale_part(info.base_name, prefix):
                self.fs.delete_file(info.path)


def archive(
    topic: str,
    output: Union[str, "os.PathLike[str]"],
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    group_id: str = "pktstream-archive",
    roll_packets: int = 1000,
    roll_seconds: float = 300.0,
    timestamp_unit: TimestampUnit = "us",
    idle_timeout: Optional[float] = None,
    max_packets: Optional[int] = None,
    config: Optional[Mapping[str, Any]] = None,
    progress: Optional[Callable[[ArchiveReport], Any]] = None,
) -> ArchiveReport:
    """Archives a ``raw`` topic into rolling pcap files in ``output``: a local directory, or any
    filesystem URI pyarrow supports (``s3://bucket/pcap``, ``hdfs://...``, ``file:///...``).

    Runs until ``idle_timeout`` seconds pass without a message, ``max_packets`` were written, or
    Ctrl-C; then closes the open files, commits, and returns (re-raising Ctrl-C with ``.report``).

    Args:
        topic: The raw topic (key = timestamp in ``timestamp_unit``, value = frame, headers
            ``link_type`` and ``wirelen`` as written by pktstream).
        output: Directory or filesystem URI for the rolled files (created if missing). Locally a
            file is fsynced and renamed before its offsets are committed; on a remote
            filesystem it is closed (uploaded) and moved into place first.
        group_id: The consumer group whose committed offsets say what is archived.
        roll_packets: Packets per file at most.
        roll_seconds: Packet-time span of a file at most.
        timestamp_unit: Unit of the timestamp keys; ``"ns"`` writes nanosecond pcaps.
        progress: Called with the running :class:`ArchiveReport` after every batch.

    Example:
        >>> report = pktstream.archive.archive("pcap", "/data/pcap", bootstrap_servers="127.0.0.1:9092",
        ...                                    idle_timeout=5)  # doctest: +SKIP
    """
    import time

    if roll_packets < 1 or roll_seconds <= 0:
        raise ValueError("roll_packets must be at least 1 and roll_seconds positive")
    if timestamp_unit not in _UNITS:
        raise ValueError(f"timestamp_unit must be one of {sorted(_UNITS)}, not {timestamp_unit!r}")
    output = os.fspath(output)
    remote = _filesystem(output)
    started = time.monotonic()
    on_progress = None
    if progress is not None:
        def on_progress(d: Mapping[str, Any]) -> None:
            progress(_report(d, time.monotonic() - started))
    try:
        d = _native.archive_run(
            topic, None if remote else _local(output), target=_FsTarget(*remote) if remote else None,
            bootstrap_servers=bootstrap_servers, group_id=group_id, roll_packets=roll_packets,
            roll_seconds=roll_seconds, timestamp_unit=timestamp_unit, idle_timeout=idle_timeout,
            max_packets=max_packets, config=dict(config) if config else None, progress=on_progress,
        )
    except KeyboardInterrupt as e:
        partial = getattr(e, "report", None)
        if isinstance(partial, dict):
            e.report = _report(partial, time.monotonic() - started)  # type: ignore[attr-defined]
        raise
    return _report(d, time.monotonic() - started)


def read_records(path: Union[str, "os.PathLike[str]"]) -> Iterator[Tuple[int, bytes, int, int]]:
    """``(ts_ns, frame, wirelen, link_type)`` of every record of a classic pcap file (any byte
    order, micro- or nanosecond), as written by :func:`archive`.

    Example:
        >>> from pktstream import archive
        >>> first = next(archive.read_records("tests/data/sample.pcap"))
        >>> first[3], len(first[1]) > 0
        (1, True)
    """
    with open(path, "rb") as fh:
        head = fh.read(24)
        magic = head[:4]
        table = {
            b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
            b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1),
        }
        if magic not in table:
            raise PktstreamError(f"{path}: not a classic pcap file")
        order, scale = table[magic]
        link_type = struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF
        rec = struct.Struct(order + "IIII")
        while True:
            h = fh.read(16)
            if len(h) < 16:
                return
            sec, frac, incl, orig = rec.unpack(h)
            frame = fh.read(incl)
            if len(frame) < incl:
                return
            yield sec * 1_000_000_000 + frac * scale, frame, orig, link_type


def _ts_ns(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value * 1e9) if isinstance(value, float) else int(value)
    import datetime as dt

    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000
    raise TypeError(f"cannot use {value!r} as a time (ISO-8601 string, datetime or epoch ns)")


def query(
    directory: Union[str, "os.PathLike[str]"],
    output: Union[str, "os.PathLike[str]"],
    *,
    start: Any = None,
    end: Any = None,
    src_ip: Optional[str] = None,
    dst_ip: Optional[str] = None,
    port: Optional[int] = None,
    proto: Optional[int] = None,
    bpf: Optional[str] = None,
) -> int:
    """Writes the packets of the rolled files in ``directory`` that match into one time-ordered
    pcap; returns how many matched.

    ``start``/``end`` (ISO-8601, datetime or epoch nanoseconds) bound the capture time,
    ``[start, end)``; ``src_ip``/``dst_ip`` match the source/destination address, ``port`` either
    port, ``proto`` the IP protocol number, ``bpf`` a tcpdump filter expression. Files whose names
    show they start after ``end`` are not opened.

    ``directory`` is a local directory or any pyarrow filesystem URI (``s3://bucket/pcap``); the
    output is a local file, written as ``OUTPUT.<pid>.part`` and renamed once complete. The files
    are merged by timestamp as a stream: memory holds one packet per file open at once (files are
    opened when the merge reaches the time their names start at), not the matches.

    Raises:
        ValueError: An invalid address or BPF expression, or matching packets of several link
            types (one pcap file holds one; narrow the query).

    Example:
        A directory with one rolled file (the bundled sample under an archive name), queried for
        its TCP packets to or from port 443 with the ACK flag in the capture's first minute:

        >>> import os, shutil, tempfile
        >>> import pktstream
        >>> from pktstream import archive
        >>> d = tempfile.mkdtemp()
        >>> name = archive.file_name("pcap", 0, 0, 1_704_067_200_000_000_000)
        >>> _ = shutil.copy("tests/data/sample.pcap", os.path.join(d, name))
        >>> out = os.path.join(d, "out.pcap")
        >>> n = archive.query(d, out, start="2024-01-01T00:00:00Z", end="2024-01-01T00:01:00Z",
        ...                   port=443, proto=6, bpf="tcp[tcpflags] & tcp-ack != 0")
        >>> n > 0 and n == pktstream.read_pcap(out).num_rows
        True
    """
    lo, hi = _ts_ns(start), _ts_ns(end)
    source = os.fspath(directory)
    remote = _filesystem(source)
    files: List[Tuple[str, int]] = []
    opener = None
    if remote is not None:
        from pyarrow import fs as pafs

        filesystem, root = remote
        for info in filesystem.get_file_info(pafs.FileSelector(root)):
            parsed = parse_name(info.base_name)
            if parsed is not None and info.type == pafs.FileType.File:
                files.append((info.path, parsed[3]))
        opener = filesystem.open_input_stream
    else:
        local = _local(source)
        for name in os.listdir(local):
            parsed = parse_name(name)
            if parsed is not None:
                files.append((os.path.join(local, name), parsed[3]))
    d = _native.archive_query(
        files, os.fspath(output), start=lo, end=hi, src_ip=src_ip, dst_ip=dst_ip, port=port, proto=proto, bpf=bpf,
        opener=opener,
    )
    return int(d["packets"])
