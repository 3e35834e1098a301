"""The ``pcap`` data source: capture files (pcap, pcapng, gzipped) as a Spark DataFrame.

``spark.read.format("pcap").load(path)`` reads a file, a directory (its files) or a glob, one
Spark partition per file, each with :func:`pktstream.iter_batches`. As a streaming source over a
directory or glob, each micro-batch reads the files that appeared since the previous one; the
offset is the sorted list of files already read, so it lives in Spark's checkpoint. Files must
be complete when they appear (write elsewhere, then rename into the directory); files modified
within the last ``minFileAgeMs`` (default 1000) wait for the next batch. Paths are local to the
machine (every executor must see them).
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceReader, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from ._decode import column_list
from ._schema import arrow_schema, conform, spark_schema

try:  # Spark 4.2+
    from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxFiles, SupportsTriggerAvailableNow
except ImportError:  # Spark 4.0 / 4.1
    ReadAllAvailable = ReadMaxFiles = None  # type: ignore[assignment,misc]

    class SupportsTriggerAvailableNow:  # type: ignore[no-redef]
        """Stand-in on Spark < 4.2."""


__all__ = ["PcapDataSource", "list_files"]


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
        self.paths = [p[len("file:"):] if p.startswith("file:") else p for p in self.paths]
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


def _read_file(opts: _Options, path: str, target: pa.Schema) -> Iterator[pa.RecordBatch]:
    import pktstream

    with pktstream.iter_batches(
        path, columns=opts.columns, batch_size=opts.batch_size, addresses=opts.addresses, strict=opts.strict
    ) as reader:
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

    Options: ``columns`` (a comma list: a projection of the packet schema), ``addresses``
    (``string`` | ``binary``), ``batchSize``, ``strict`` (raise on a cut file instead of reading up
    to the cut), ``includePath`` (add a ``path`` column); streaming: ``maxFilesPerTrigger``,
    ``minFileAgeMs``.

    Example:
        >>> df = spark.read.format("pcap").load("captures/*.pcap.gz")  # doctest: +SKIP
        >>> df.groupBy("ip_proto").count().show()  # doctest: +SKIP
    """

    @classmethod
    def name(cls) -> str:
        return "pcap"

    def schema(self) -> StructType:
        import pktstream

        opts = _Options(self.options)
        arrow = pktstream.schema(opts.columns, addresses=opts.addresses)  # type: ignore[arg-type]
        if opts.include_path:
            arrow = arrow.append(pa.field("path", pa.string()))
        return spark_schema(arrow)

    def reader(self, schema: StructType) -> DataSourceReader:
        return PcapBatchReader(_Options(self.options), schema)

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return PcapStreamReader(_Options(self.options), schema)
