"""The ``pktstream`` sink: DataFrame rows to a Kafka topic through pktstream's native producer.

``df.write.format("pktstream")`` and ``df.writeStream.format("pktstream")`` hand each Spark task's
rows to :func:`pktstream.produce` as Arrow record batches (PySpark's Arrow writer API: no Python
object per row), encoded as ``json`` (one object per row), ``csv`` (one line per row) or ``arrow``
(IPC streams of up to ``rowsPerMessage`` rows). The message key is the ``key`` option's column, or
a column named ``key`` when there is one; ``kafka.*`` options are librdkafka settings (Java client
keys translated as for the source), over the producer's defaults (idempotent, ``acks=all``).

**Delivery is at-least-once.** A task returns only after librdkafka acknowledged every message it
queued, and fails if any could not be delivered. Spark then re-runs the task, and a streaming query
restarted from its checkpoint re-runs an uncommitted micro-batch: both write their rows again, and
messages already acknowledged by the first attempt stay in the topic (Kafka cannot take them back;
Spark's own Kafka sink gives the same guarantee). Consumers that must not count a row twice
deduplicate on a key of their own (e.g. an event id column).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import chain
from typing import Iterator, List, Mapping, Optional, Tuple, cast

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSourceArrowWriter,
    DataSourceStreamArrowWriter,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

from .._types import ProduceFormat, TimestampUnit
from ._decode import column_list
from ._java_config import redacted, translate

__all__ = ["SinkOptions", "KafkaArrowWriter", "KafkaStreamArrowWriter", "Delivered", "SINK_FORMATS"]

log = logging.getLogger("pktstream.spark")

#: The value formats the sink writes.
SINK_FORMATS = ("json", "csv", "arrow")

_SINK_OPTIONS = {"topic", "format", "key", "columns", "rowspermessage", "csvdelimiter", "timestampunit",
                 "timeoutms", "includeheaders", "path", "checkpointlocation"}


@dataclass(frozen=True)
class SinkOptions:
    """The sink's options, checked on the driver (picklable; ``config`` hidden from ``repr``).

    Example:
        >>> o = SinkOptions.parse({"kafka.bootstrap.servers": "127.0.0.1:9092", "topic": "t",
        ...                        "kafka.sasl.password": "hunter2"}, ["key", "n"])
        >>> o.key, o.format, "hunter2" in repr(o)
        ('key', 'json', False)
    """

    bootstrap_servers: str
    topic: str
    format: ProduceFormat = "json"
    key: Optional[str] = None
    columns: Optional[Tuple[str, ...]] = None
    rows_per_message: int = 10_000
    csv_delimiter: str = ","
    timestamp_unit: TimestampUnit = "us"
    timeout: float = 30.0
    config: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__dataclass_fields__ if k != "config")
        return f"SinkOptions({shown}, config={redacted(self.config)!r})"

    @classmethod
    def parse(cls, options: Mapping[str, str], names: List[str]) -> "SinkOptions":
        """Checks the writer's options against the DataFrame's column ``names``."""
        opts = {k.lower(): str(v) for k, v in options.items()}
        for k in opts:
            if not k.startswith("kafka.") and k not in _SINK_OPTIONS:
                raise ValueError(f"pktstream sink: unknown option {k!r} (see docs/spark.md; librdkafka settings "
                                 "take the prefix kafka.)")
        if opts.get("includeheaders", "false").strip().lower() != "false":
            raise ValueError("pktstream sink: includeHeaders is not supported (the native producer writes no "
                             "custom headers)")
        if opts.get("path"):
            raise ValueError("pktstream sink: give the topic with .option('topic', ...), not as a path")
        servers = opts.get("kafka.bootstrap.servers")
        if not servers:
            raise ValueError("the pktstream sink needs option kafka.bootstrap.servers")
        topic = opts.get("topic", "").strip()
        if not topic:
            raise ValueError("the pktstream sink needs option topic (one topic; it must exist)")
        fmt = opts.get("format", "json").lower()
        if fmt not in SINK_FORMATS:
            raise ValueError(f"pktstream sink: format must be one of {', '.join(SINK_FORMATS)}, not {fmt!r}")
        key = opts.get("key") or ("key" if "key" in names else None)
        if key is not None and key not in names:
            raise ValueError(f"pktstream sink: key column {key!r} is not among the columns {names}")
        cols = column_list(opts.get("columns"))
        unknown = [c for c in cols or [] if c not in names]
        if unknown:
            raise ValueError(f"pktstream sink: columns {unknown} are not among the DataFrame's columns {names}")
        config = {k[len("kafka."):]: v for k, v in options.items() if k.lower().startswith("kafka.")}
        config = translate({k: v for k, v in config.items() if k.lower() != "bootstrap.servers"})
        return cls(
            bootstrap_servers=servers,
            topic=topic,
            format=cast(ProduceFormat, fmt),  # checked above
            key=key,
            columns=tuple(cols) if cols else None,
            rows_per_message=int(opts.get("rowspermessage", 10_000)),
            csv_delimiter=opts.get("csvdelimiter", ","),
            timestamp_unit=cast(TimestampUnit, opts.get("timestampunit", "us")),  # checked by the producer
            timeout=int(opts.get("timeoutms", 30_000)) / 1000.0,
            config=config,
        )

    def produce(self, batches: Iterator[pa.RecordBatch]) -> "Delivered":
        """Sends ``batches`` (one Spark task's rows) and waits for every acknowledgement."""
        import pktstream

        it = iter(batches)
        first = next(it, None)
        while first is not None and first.num_rows == 0:
            first = next(it, None)
        if first is None:
            return Delivered()
        reader = pa.RecordBatchReader.from_batches(first.schema, chain([first], it))
        report = pktstream.produce(
            reader,
            self.topic,
            bootstrap_servers=self.bootstrap_servers,
            format=self.format,
            key=self.key,
            columns=list(self.columns) if self.columns else None,
            config=dict(self.config),
            progress=False,
            timestamp_unit=self.timestamp_unit,
            rows_per_message=self.rows_per_message,
            csv_delimiter=self.csv_delimiter,
            connect_timeout=self.timeout,
            raise_on_failure=True,
        )
        return Delivered(rows=report.rows, messages=report.delivered, bytes=report.bytes)


@dataclass
class Delivered(WriterCommitMessage):
    """What one task delivered (all acknowledged)."""

    rows: int = 0
    messages: int = 0
    bytes: int = 0


def _totals(messages: List[Optional[WriterCommitMessage]]) -> Tuple[int, int, int]:
    done = [m for m in messages if isinstance(m, Delivered)]
    return sum(m.rows for m in done), sum(m.messages for m in done), len(messages) - len(done)


class KafkaArrowWriter(DataSourceArrowWriter):
    """``df.write.format("pktstream")``: each task produces its rows; see the module docs."""

    def __init__(self, opts: SinkOptions) -> None:
        self.opts = opts

    def write(self, iterator: Iterator[pa.RecordBatch]) -> Delivered:  # type: ignore[override]
        return self.opts.produce(iterator)

    def commit(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        rows, sent, _ = _totals(messages)
        log.info("pktstream sink: %d rows as %d messages delivered to %s", rows, sent, self.opts.topic)

    def abort(self, messages: List[Optional[WriterCommitMessage]]) -> None:
        rows, sent, failed = _totals(messages)
        log.warning("pktstream sink: write to %s failed in %d task(s); %d messages (%d rows) of the tasks that "
                    "succeeded stay in the topic (at-least-once)", self.opts.topic, failed, sent, rows)


class KafkaStreamArrowWriter(DataSourceStreamArrowWriter):
    """``df.writeStream.format("pktstream")``: each micro-batch's tasks produce their rows; a
    re-run batch writes its rows again (at-least-once)."""

    def __init__(self, opts: SinkOptions) -> None:
        self.opts = opts

    def write(self, iterator: Iterator[pa.RecordBatch]) -> Delivered:  # type: ignore[override]
        return self.opts.produce(iterator)

    def commit(self, messages: List[Optional[WriterCommitMessage]], batchId: int) -> None:
        rows, sent, _ = _totals(messages)
        log.info("pktstream sink: batch %d: %d rows as %d messages delivered to %s", batchId, rows, sent,
                 self.opts.topic)

    def abort(self, messages: List[Optional[WriterCommitMessage]], batchId: int) -> None:
        rows, sent, failed = _totals(messages)
        log.warning("pktstream sink: batch %d to %s failed in %d task(s); %d messages (%d rows) already delivered "
                    "stay in the topic and the batch's rows are written again when it re-runs (at-least-once)",
                    batchId, self.opts.topic, failed, sent, rows)


def writer_options(options: Mapping[str, str], schema: StructType, overwrite: bool) -> SinkOptions:
    """The sink's options for a write of ``schema``; ``overwrite`` is refused (a topic is append-only)."""
    if overwrite:
        raise ValueError("pktstream sink: a Kafka topic cannot be overwritten; use mode('append')")
    return SinkOptions.parse(options, [f.name for f in schema.fields])
