"""A raw packet archive from Kafka: Apache Metron's pcap backend without Storm or HDFS.

:func:`archive` consumes a ``raw`` topic (key = capture timestamp, value = frame; what
``produce_pcap(..., format="raw")`` and ``produce_live`` write) and writes rolling pcap files per
partition, turning a file over when it holds ``roll_packets`` packets or spans ``roll_seconds`` of
packet time (Metron's ``numPackets`` / ``maxTimeMS``). :func:`query` selects packets across the
rolled files by time range and 5-tuple and writes one time-ordered pcap (Metron's pcap query).

Crash safety: a file is written as ``NAME.part``, flushed and fsynced, renamed to ``NAME`` and
only then are the partition's offsets committed, up to the file's last packet (one commit per
consumed batch covers every file closed in it). File names are
fixed by the file's first message (topic, partition, first offset, first timestamp), so after a
crash the archiver re-reads from the last committed offset and rewrites the same file under the
same name: nothing is lost and nothing is stored twice.

Several archivers may share a group: when a rebalance takes a partition away, its open file is
closed and committed before the partition goes (``on_revoke``), and rows of it still in a batch
read before the revoke are left to the next owner, which resumes right after the closed file.

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
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._kafka import DEFAULT_BOOTSTRAP, Consumer
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
    """What an :func:`archive` run did: packets written, files closed, offsets committed."""

    packets: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    committed: Dict[Tuple[str, int], int] = field(default_factory=dict)
    paths: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.packets:,} packets in {self.files:,} files ({self.bytes / 1e6:,.1f} MB) "
            f"in {self.seconds:.2f} s"
        )


class _Rolling:
    """One partition's open file, on the local disk or on a pyarrow filesystem."""

    def __init__(self, target: "_Target", topic: str, partition: int, offset: int, ts_ns: int, link_type: int,
                 nanos: bool) -> None:
        self.target = target
        self.name = file_name(topic, partition, offset, ts_ns)
        self.first_ts = ts_ns
        self.link_type = link_type
        self.nanos = nanos
        self.count = 0
        self.bytes = 0
        self.last_offset = offset
        self.fh: Any = target.open(self.name + ".part")
        magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
        self.fh.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, link_type))

    def add_many(self, offsets: Any, ts: Any, frames: List[bytes], wirelens: Any) -> None:
        """Appends a run of packets with one write (headers built with numpy)."""
        n = len(frames)
        sec, frac = np.divmod(ts, 1_000_000_000)
        if not self.nanos:
            frac //= 1000
        headers = np.empty((n, 4), dtype="<u4")
        headers[:, 0] = sec
        headers[:, 1] = frac
        headers[:, 2] = [len(x) for x in frames]
        headers[:, 3] = wirelens
        raw = headers.tobytes()
        self.fh.write(b"".join(b for k in range(n) for b in (raw[16 * k:16 * k + 16], frames[k])))
        self.count += n
        self.bytes += 16 * n + int(headers[:, 2].sum())
        self.last_offset = int(offsets[-1])

    def close(self) -> str:
        return self.target.publish(self.fh, self.name)


def private_file(path: str) -> BinaryIO:
    """``path`` opened for writing (created or truncated), readable by its owner only (0600):
    captures hold other people's traffic."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file that was already there keeps its mode otherwise
    return os.fdopen(fd, "wb")


class _Target:
    """Where rolled files go: a local directory (fsync + atomic rename + directory fsync) or any
    pyarrow filesystem URI (``s3://``, ``gs://``, ``hdfs://``, ``file://``: close, then move)."""

    def __init__(self, output: str) -> None:
        self.fs: Any = None
        if output.startswith("file://"):  # a local directory: fsynced and renamed like a plain path
            output = output[len("file://"):]
        if "://" in output:
            from pyarrow import fs as pafs

            self.fs, self.root = pafs.FileSystem.from_uri(output)
            self.fs.create_dir(self.root, recursive=True)
            self.dir_fd: Optional[int] = None
        else:
            self.root = output
            os.makedirs(output, mode=0o700, exist_ok=True)  # captures are private to the user
            self.dir_fd = os.open(output, os.O_RDONLY)

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}" if self.fs is not None else os.path.join(self.root, name)

    def open(self, name: str) -> Any:
        if self.fs is not None:
            return self.fs.open_output_stream(self.path(name))
        return private_file(self.path(name))

    def publish(self, fh: Any, name: str) -> str:
        tmp, final = self.path(name + ".part"), self.path(name)
        if self.fs is not None:
            fh.close()
            self.fs.move(tmp, final)
            return final
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(tmp, final)
        if self.dir_fd is not None:
            os.fsync(self.dir_fd)
        return final

    def clean_parts(self, prefix: str) -> None:
        """Removes the ``.part`` files a crashed run left (they are rewritten from the commits)."""
        if self.fs is not None:
            from pyarrow import fs as pafs

            infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
            for info in infos:
                if info.base_name.startswith(prefix) and info.base_name.endswith(".pcap.part"):
                    self.fs.delete_file(info.path)
            return
        for name in os.listdir(self.root):
            if name.startswith(prefix) and name.endswith(".pcap.part"):
                os.unlink(os.path.join(self.root, name))

    def close(self) -> None:
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None


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
    progress: Optional[Any] = None,
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
    if roll_packets < 1 or roll_seconds <= 0:
        raise ValueError("roll_packets must be at least 1 and roll_seconds positive")
    if timestamp_unit not in _UNITS:
        raise ValueError(f"timestamp_unit must be one of {sorted(_UNITS)}, not {timestamp_unit!r}")
    target = _Target(os.fspath(output))
    per = _UNITS[timestamp_unit]
    nanos = timestamp_unit == "ns"
    roll_ns = int(roll_seconds * 1e9)
    report = ArchiveReport()
    started = time.monotonic()
    open_files: Dict[int, _Rolling] = {}
    # Leftovers of a crashed run are rewritten from the committed offsets: drop them.
    target.clean_parts(f"{topic}-")

    pending: Dict[Tuple[str, int], int] = {}
    # Partitions this member holds. On revoke, their open files are closed and committed before
    # they go (the next owner resumes exactly after them); rows of a partition already revoked,
    # still in a batch read before the revoke, are not written (the next owner writes them).
    owned: set = set()

    def on_revoke(c: Consumer, partitions: List[Tuple[str, int]]) -> None:
        for t, part in partitions:
            owned.discard(part)
            if t == topic and part in open_files:
                close(part)
        if pending:
            c.commit_offsets(dict(pending))
            report.committed.update(pending)
            pending.clear()

    def on_assign(c: Consumer, partitions: List[Tuple[str, int]]) -> None:
        owned.update(part for t, part in partitions if t == topic)

    consumer = Consumer(
        topic, group_id=group_id, bootstrap_servers=bootstrap_servers, format="binary",
        timestamp_unit=timestamp_unit, config=config, on_revoke=on_revoke, on_assign=on_assign,
    )

    def close(partition: int) -> None:
        f = open_files.pop(partition)
        report.paths.append(f.close())
        report.files += 1
        pending[(topic, partition)] = f.last_offset + 1

    def commit() -> None:
        """Commits the files closed so far (once per batch: a commit is a broker round trip)."""
        if pending:
            consumer.commit_offsets(pending)
            report.committed.update(pending)
            pending.clear()

    try:
        idle_since = time.monotonic()
        while max_packets is None or report.packets < max_packets:
            want = 65_536 if max_packets is None else min(65_536, max_packets - report.packets)
            batch = consumer.read_batch(want, timeout=1.0)
            if batch.num_rows == 0:
                if not consumer.assignment() and time.monotonic() - started < 60:
                    idle_since = time.monotonic()  # still joining the group: not idle yet
                elif idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                    break
                continue
            idle_since = time.monotonic()
            parts = batch.column("_partition").to_numpy(zero_copy_only=False)
            mine = np.isin(parts, list(owned))
            if not mine.all():
                batch = batch.filter(pa.array(mine))
                if batch.num_rows == 0:
                    continue
            parts, offsets, ts, frames, links, wirelens = _columns(batch, per)
            i, n = 0, len(parts)
            while i < n:
                part = int(parts[i])
                f = open_files.get(part)
                if f is not None and (
                    f.count >= roll_packets or ts[i] - f.first_ts >= roll_ns or links[i] != f.link_type
                ):
                    close(part)
                    f = None
                if f is None:
                    f = open_files[part] = _Rolling(target, topic, part, int(offsets[i]), int(ts[i]),
                                                    int(links[i]), nanos)
                # The longest run from i that stays in this partition and this file.
                stop = min(n, i + roll_packets - f.count)
                run = slice(i, stop)
                breaks = (parts[run] != part) | (ts[run] - f.first_ts >= roll_ns) | (links[run] != f.link_type)
                if breaks.any():
                    stop = i + int(np.argmax(breaks))
                f.add_many(offsets[i:stop], ts[i:stop], frames[i:stop], wirelens[i:stop])
                report.packets += stop - i
                i = stop
            report.bytes += 16 * n + sum(len(x) for x in frames)
            commit()
            if progress is not None:
                report.seconds = time.monotonic() - started
                progress(report)
    except KeyboardInterrupt as e:
        for part in list(open_files):
            close(part)
        commit()
        report.seconds = time.monotonic() - started
        e.report = report  # type: ignore[attr-defined]
        consumer.close()
        target.close()
        raise
    for part in list(open_files):
        close(part)
    commit()
    consumer.close()
    target.close()
    report.seconds = time.monotonic() - started
    return report


def _columns(batch: pa.RecordBatch, per: int) -> Tuple[Any, Any, Any, List[bytes], Any, Any]:
    """A consumed ``binary`` batch as arrays: partition, offset, timestamp (ns), frames, link
    type, wire length. Timestamps come from the 8-byte keys, else from the message time."""
    n = batch.num_rows
    parts = batch.column("_partition").to_numpy(zero_copy_only=False)
    offsets = batch.column("_offset").to_numpy(zero_copy_only=False)
    keys = batch.column("_key")
    frames = [b or b"" for b in batch.column("value").to_pylist()]
    lens = pc.fill_null(pc.binary_length(keys), 0).to_numpy(zero_copy_only=False)
    if n and (lens == 8).all():
        ts = np.frombuffer(b"".join(keys.to_pylist()), dtype=">i8").astype(np.int64) * per
    else:  # not all in pktstream's raw layout: per row, falling back to the message time
        kafka_ms = pc.fill_null(pc.cast(batch.column("_timestamp"), pa.int64()), 0).to_numpy(zero_copy_only=False)
        ts = np.array(
            [struct.unpack(">q", k)[0] * per if k is not None and len(k) == 8 else int(ms) * 1_000_000
             for k, ms in zip(keys.to_pylist(), kafka_ms)],
            dtype=np.int64,
        )
    links = pc.fill_null(batch.column("link_type"), 1).to_numpy(zero_copy_only=False).astype(np.int64)
    frame_lens = np.array([len(x) for x in frames], dtype=np.int64)
    wl = batch.column("wirelen")
    wirelens = np.where(wl.is_null().to_numpy(zero_copy_only=False), frame_lens,
                        pc.fill_null(wl, 0).to_numpy(zero_copy_only=False))
    return parts, offsets, ts, frames, links, wirelens


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
) -> int:
    """Writes the packets of the rolled files in ``directory`` that match into one time-ordered
    pcap; returns how many matched.

    ``start``/``end`` (ISO-8601, datetime or epoch nanoseconds) bound the capture time,
    ``[start, end)``; ``src_ip``/``dst_ip`` match the source/destination address, ``port`` either
    port, ``proto`` the IP protocol number. Files whose names show they start after ``end`` are
    not opened.

    Example:
        A directory with one rolled file (the bundled sample under an archive name), queried for
        its TCP packets to or from port 443 in the capture's first minute:

        >>> import os, shutil, tempfile
        >>> import pktstream
        >>> from pktstream import archive
        >>> d = tempfile.mkdtemp()
        >>> name = archive.file_name("pcap", 0, 0, 1_704_067_200_000_000_000)
        >>> _ = shutil.copy("tests/data/sample.pcap", os.path.join(d, name))
        >>> out = os.path.join(d, "out.pcap")
        >>> n = archive.query(d, out, start="2024-01-01T00:00:00Z", end="2024-01-01T00:01:00Z",
        ...                   port=443, proto=6)
        >>> n > 0 and n == pktstream.read_pcap(out).num_rows
        True
    """
    from ._reader import read_pcap

    lo, hi = _ts_ns(start), _ts_ns(end)
    files = []
    for name in sorted(os.listdir(directory)):
        parsed = parse_name(name)
        if parsed is None:
            continue
        if hi is not None and parsed[3] >= hi:
            continue
        files.append(os.path.join(directory, name))
    selected: List[Tuple[int, int, int, bytes, int, int]] = []
    nanos = False
    cols = ["ts", "src_ip", "dst_ip", "src_port", "dst_port", "ip_proto"]
    for n, path in enumerate(files):
        table = read_pcap(path, columns=cols)
        mask = pa.array([True] * table.num_rows)
        ts = pc.cast(table["ts"], pa.int64())
        if lo is not None:
            mask = pc.and_(mask, pc.greater_equal(ts, lo))
        if hi is not None:
            mask = pc.and_(mask, pc.less(ts, hi))
        if src_ip is not None:
            mask = pc.and_kleene(mask, pc.equal(table["src_ip"], src_ip))
        if dst_ip is not None:
            mask = pc.and_kleene(mask, pc.equal(table["dst_ip"], dst_ip))
        if port is not None:
            mask = pc.and_kleene(mask, pc.or_kleene(pc.equal(table["src_port"], port), pc.equal(table["dst_port"], port)))
        if proto is not None:
            mask = pc.and_kleene(mask, pc.equal(table["ip_proto"], proto))
        keep = set(pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist())
        if not keep:
            continue
        with open(path, "rb") as fh:
            nanos = nanos or fh.read(4) in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        for i, (t, frame, orig, link) in enumerate(read_records(path)):
            if i in keep:
                selected.append((t, n, i, frame, orig, link))
    links = {s[5] for s in selected}
    if len(links) > 1:
        raise PktstreamError(f"matching packets have several link types {sorted(links)}; narrow the query")
    selected.sort(key=lambda s: (s[0], s[1], s[2]))
    with private_file(os.fspath(output)) as out:
        magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
        out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, links.pop() if links else 1))
        for t, _, _, frame, orig, _ in selected:
            sec, frac = divmod(t, 1_000_000_000)
            out.write(struct.pack("<IIII", sec, frac if nanos else frac // 1000, len(frame), orig))
            out.write(frame)
    return len(selected)
