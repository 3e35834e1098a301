"""The ``pcap`` data source: capture files (pcap, pcapng, gzipped) as a Spark DataFrame.

``spark.read.format("pcap").load(path)`` reads a file, a directory (its files) or a glob, one
Spark partition per file, each with :func:`pktstream.iter_batches`. As a streaming source over a
directory or glob, each micro-batch reads the files that appeared since the previous one; the
offset is the sorted list of files already read, so it lives in Spark's checkpoint. Files must
be complete when they appear (write elsewhere, then rename into the directory); files modified
within the last ``minFileAgeMs`` (default 1000) wait for the next batch. Paths are local to the
machine (every executor must see them).

With ``flows=true`` the files are read as flow records instead of packets: each file is metered
with :func:`pktstream.iter_flows` (schema :func:`pktstream.flow_schema`), still one partition per
file. Flows never span files: a file's flows end with it (``expiration="end"``), the same
endpoints in the next file start new records, and ``flow_id`` counts from 0 in every file (add
``includePath=true`` to tell them apart). The flow options are checked on the driver: packet-only
options with ``flows=true``, and flow options without it, are refused with the option's name.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from ._decode import column_list
from ._options import _flag
from ._schema import arrow_schema, conform, spark_schema

try:  # Spark 4.2+
    from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxFiles, SupportsTriggerAvailableNow
except ImportError:  # Spark 4.0 / 4.1
    ReadAllAvailable = ReadMaxFiles = None  # type: ignore[assignment,misc]

    class SupportsTriggerAvailableNow:  # type: ignore[no-redef]
        """Stand-in on Spark < 4.2."""


__all__ = ["PcapDataSource", "FlowOptions", "list_files", "PACKET_ONLY_OPTIONS", "FLOW_ONLY_OPTIONS"]

#: Options only packet reads take: lower case (as Spark passes them) -> the documented spelling.
PACKET_ONLY_OPTIONS = {"addresses": "addresses"}

#: Options only flow reads (``flows=true``) take: lower case -> the documented spelling.
FLOW_ONLY_OPTIONS = {
    n.lower(): n
    for n in (
        "idleTimeout",
        "activeTimeout",
        "tcpClose",
        "accounting",
        "statistics",
        "serverName",
        "maxFlows",
    )
}

#: ``accounting``'s values (what :func:`pktstream.iter_flows` counts as a packet's bytes).
ACCOUNTING = ("wire", "ip", "payload")


def list_files(path: str) -> List[str]:
    """The capture files ``path`` names, sorted: a file, a directory's files, or a glob. Hidden
    files and names starting with ``_`` or ending in ``.tmp`` / ``.part`` are left out.

    Example:
        >>> list_files("tests/data/sample.pcap")
        ['tests/data/sample.pcap']
    """
    if os.path.isdir(path):
        candidates = [os.path.join(path, n) for n in os.listdir(path)]
    elif glob.has_magic(path):
        candidates = glob.glob(path)
    else:
        if not os.path.exists(path):
            raise FileNotFoundError(f"pcap source: no such file {path!r}")
        return [path]
    out = []
    for c in candidates:
        name = os.path.basename(c)
        if name.startswith((".", "_")) or name.endswith((".tmp", ".part", ".crc")) or not os.path.isfile(c):
            continue
        out.append(c)
    return sorted(out)


class PcapFile(InputPartition):
    """One capture file: one Spark task."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _seconds(opts: Mapping[str, str], key: str, default: float) -> float:
    """Option ``key`` as a positive, finite number of seconds (``default`` when not given).

    Example:
        >>> _seconds({"idletimeout": "0.5"}, "idletimeout", 120.0), _seconds({}, "idletimeout", 120.0)
        (0.5, 120.0)
    """
    if key not in opts:
        return default
    name = FLOW_ONLY_OPTIONS[key]
    try:
        value = float(opts[key])
    except ValueError as e:
        raise ValueError(f"pcap source: option {name} must be a number of seconds, not {opts[key]!r}") from e
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"pcap source: option {name} must be a positive number of seconds, not {opts[key]!r}"
        )
    return value


def _count(opts: Mapping[str, str], key: str, default: int) -> int:
    """Option ``key`` as a positive integer (``default`` when not given).

    Example:
        >>> _count({"maxflows": "1000"}, "maxflows", 1_000_000)
        1000
    """
    if key not in opts:
        return default
    name = FLOW_ONLY_OPTIONS[key]
    try:
        value = int(opts[key])
    except ValueError as e:
        raise ValueError(f"pcap source: option {name} must be a positive integer, not {opts[key]!r}") from e
    if value < 1:
        raise ValueError(f"pcap source: option {name} must be a positive integer, not {opts[key]!r}")
    return value


def _accounting(opts: Mapping[str, str]) -> str:
    """Option ``accounting``: ``wire`` (the default), ``ip`` or ``payload``."""
    value = opts.get("accounting", "wire").strip().lower()
    if value not in ACCOUNTING:
        raise ValueError(
            f"pcap source: option accounting must be wire, ip or payload, not {opts['accounting']!r}"
        )
    return value


def _check_mode(opts: Mapping[str, str], flows: bool) -> None:
    """Refuses options of the other mode: packet-only options with ``flows=true``, flow options
    without it.

    Example:
        >>> _check_mode({"idletimeout": "30"}, flows=False)
        Traceback (most recent call last):
        ...
        ValueError: pcap source: option idleTimeout is a flow option; it needs flows=true
    """
    for key in sorted(opts):
        if flows and key in PACKET_ONLY_OPTIONS:
            raise ValueError(
                f"pcap source: option {PACKET_ONLY_OPTIONS[key]} applies to packets, not to flows=true; drop it"
            )
        if not flows and key in FLOW_ONLY_OPTIONS:
            raise ValueError(
                f"pcap source: option {FLOW_ONLY_OPTIONS[key]} is a flow option; it needs flows=true"
            )


@dataclass(frozen=True)
class FlowOptions:
    """What :func:`pktstream.iter_flows` is given for every file when ``flows=true`` (parsed once,
    on the driver; the defaults are :func:`~pktstream.iter_flows`'s).

    Example:
        >>> o = FlowOptions.parse({"idletimeout": "30", "tcpclose": "true"})
        >>> o.idle_timeout, o.tcp_close, o.kwargs()["max_flows"]
        (30.0, True, 1000000)
    """

    idle_timeout: float = 120.0
    active_timeout: float = 1800.0
    tcp_close: bool = False
    accounting: str = "wire"
    statistics: bool = False
    server_name: bool = False
    max_flows: int = 1_000_000

    @classmethod
    def parse(cls, opts: Mapping[str, str]) -> "FlowOptions":
        """From the source's options (keys lower case)."""
        return cls(
            idle_timeout=_seconds(opts, "idletimeout", cls.idle_timeout),
            active_timeout=_seconds(opts, "activetimeout", cls.active_timeout),
            tcp_close=_flag(opts.get("tcpclose", "false"), "tcpClose"),
            accounting=_accounting(opts),
            statistics=_flag(opts.get("statistics", "false"), "statistics"),
            server_name=_flag(opts.get("servername", "false"), "serverName"),
            max_flows=_count(opts, "maxflows", cls.max_flows),
        )

    def kwargs(self) -> Dict[str, Any]:
        """:func:`pktstream.iter_flows`'s keyword arguments."""
        return dataclasses.asdict(self)


class _Options:
    def __init__(self, options: Mapping[str, str]) -> None:
        opts = {k.lower(): v for k, v in options.items()}
        paths = opts.get("path") or opts.get("paths")
        if not paths:
            raise ValueError('the pcap source needs a path: spark.read.format("pcap").load(path_or_glob)')
        if paths.startswith("["):  # load([...]) passes a JSON list
            import json

            self.paths = [str(p) for p in json.loads(paths)]
        else:
            self.paths = [paths]
        self.paths = [p[len("file:") :] if p.startswith("file:") else p for p in self.paths]
        flows = _flag(opts.get("flows", "false"), "flows")
        _check_mode(opts, flows)
        #: The flow options with ``flows=true``; None for packets.
        self.flow: Optional[FlowOptions] = FlowOptions.parse(opts) if flows else None
        self.columns = column_list(opts.get("columns"))
        self.addresses = opts.get("addresses", "string")
        self.batch_size = int(opts.get("batchsize", 65_536))
        self.strict = opts.get("strict", "false").lower() == "true"
        self.include_path = opts.get("includepath", "false").lower() == "true"
        self.max_files = int(opts["maxfilespertrigger"]) if opts.get("maxfilespertrigger") else None
        self.min_age = int(opts.get("minfileagems", 1000)) / 1000.0

    def files(self) -> List[str]:
        out: List[str] = []
        for p in self.paths:
            out.extend(list_files(p))
        return sorted(set(out))

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of what is read: :func:`pktstream.schema` (packets) or
        :func:`pktstream.flow_schema` (flows), projected by ``columns``, plus ``path``."""
        import pktstream

        if self.flow is None:
            arrow = pktstream.schema(self.columns, addresses=self.addresses)  # type: ignore[arg-type]
        else:
            try:
                arrow = pktstream.flow_schema(self.flow.statistics, self.columns, self.flow.server_name)
            except ValueError as e:
                raise ValueError(f"pcap source (flows=true), option columns: {e}") from e
        if self.include_path:
            arrow = arrow.append(pa.field("path", pa.string()))
        return arrow


def _open(opts: _Options, path: str) -> Any:
    """The reader of one file: :func:`pktstream.iter_batches`, or :func:`pktstream.iter_flows`
    with ``flows=true`` (both context managers yielding record batches)."""
    import pktstream

    if opts.flow is not None:
        return pktstream.iter_flows(
            path, columns=opts.columns, batch_size=opts.batch_size, strict=opts.strict, **opts.flow.kwargs()
        )
    return pktstream.iter_batches(
        path, columns=opts.columns, batch_size=opts.batch_size, addresses=opts.addresses,  # type: ignore[arg-type]
        strict=opts.strict,
    )


def _read_file(opts: _Options, path: str, target: pa.Schema) -> Iterator[pa.RecordBatch]:
    with _open(opts, path) as reader:
        for batch in reader:
            if opts.include_path:
                batch = batch.append_column("path", pa.array([path] * batch.num_rows, pa.string()))
            yield conform(batch, target)


class PcapBatchReader(DataSourceReader):
    def __init__(self, opts: _Options, schema: StructType) -> None:
        self.opts = opts
        self.target = arrow_schema(schema)

    def partitions(self) -> Sequence[InputPartition]:
        files = self.opts.files()
        if not files:
            raise FileNotFoundError(f"pcap source: no files match {self.opts.paths}")
        return [PcapFile(f) for f in files]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        assert isinstance(partition, PcapFile)
        return _read_file(self.opts, partition.path, self.target)


class PcapStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """New files in a directory (or matching a glob), oldest name first, in micro-batches."""

    def __init__(self, opts: _Options, schema: StructType) -> None:
        self.opts = opts
        self.target = arrow_schema(schema)
        self._until: Optional[List[str]] = None
        self._last: Optional[Dict[str, Any]] = None

    def _ready(self) -> List[str]:
        now = time.time()
        out = []
        try:
            files = self.opts.files()
        except FileNotFoundError:  # the directory does not exist yet
            files = []
        for f in files:
            try:
                if now - os.stat(f).st_mtime >= self.opts.min_age:
                    out.append(f)
            except FileNotFoundError:
                continue
        if self._until is not None:
            allowed = set(self._until)
            out = [f for f in out if f in allowed]
        return out

    def initialOffset(self) -> Dict[str, Any]:
        self._last = {"files": []}
        return self._last

    def getDefaultReadLimit(self) -> Any:
        if self.opts.max_files and ReadMaxFiles is not None:
            return ReadMaxFiles(self.opts.max_files)
        return ReadAllAvailable() if ReadAllAvailable is not None else None

    def prepareForTriggerAvailableNow(self) -> None:
        self._until = self._ready()

    def latestOffset(self, start: Optional[Dict[str, Any]] = None, limit: Any = None) -> Dict[str, Any]:
        max_files = None
        if start is None:  # Spark 4.0 / 4.1
            start = self._last or {"files": []}
            max_files = self.opts.max_files
        elif ReadMaxFiles is not None and isinstance(limit, ReadMaxFiles):
            max_files = limit.max_files
        done = set(start.get("files", []))
        new = [f for f in self._ready() if f not in done]
        if max_files:
            new = new[:max_files]
        end = {"files": sorted(done | set(new))}
        self._last = end
        return end

    def partitions(self, start: Dict[str, Any], end: Dict[str, Any]) -> Sequence[InputPartition]:
        done = set(start.get("files", []))
        return [PcapFile(f) for f in end.get("files", []) if f not in done]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        assert isinstance(partition, PcapFile)
        return _read_file(self.opts, partition.path, self.target)


class PcapDataSource(DataSource):
    """``spark.read.format("pcap").load(path_or_glob)`` and ``spark.readStream.format("pcap")``.

    Options: ``columns`` (a comma list: a projection of the packet schema, or of the flow schema
    with ``flows=true``), ``addresses`` (``string`` | ``binary``; packets only), ``batchSize``
    (packets or flows per batch), ``strict`` (raise on a cut file instead of reading up to the
    cut), ``includePath`` (add a ``path`` column); streaming: ``maxFilesPerTrigger``,
    ``minFileAgeMs``.

    ``flows=true`` reads flow records, each file metered on its own with
    :func:`pktstream.iter_flows` (flows never span files), with its options ``idleTimeout`` and
    ``activeTimeout`` (seconds), ``tcpClose``, ``accounting`` (``wire`` | ``ip`` | ``payload``),
    ``statistics``, ``serverName`` and ``maxFlows`` (per file).

    Example:
        >>> df = spark.read.format("pcap").load("tests/data/*.pcap")
        >>> df.count(), df.filter("ip_proto = 17").count() > 0
        (247, True)
        >>> flows = spark.read.format("pcap").option("flows", "true").option("idleTimeout", "30").load(
        ...     "tests/data/*.pcap")
        >>> flows.count()
        215
    """

    @classmethod
    def name(cls) -> str:
        return "pcap"

    def schema(self) -> StructType:
        return spark_schema(_Options(self.options).arrow_schema())

    def reader(self, schema: StructType) -> DataSourceReader:
        return PcapBatchReader(_Options(self.options), schema)

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return PcapStreamReader(_Options(self.options), schema)
