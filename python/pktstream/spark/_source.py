"""The ``pktstream`` data source: Kafka topics as decoded packet columns, for Spark.

Offsets are Spark's: the end offsets of each micro-batch go to the query's checkpoint before the
batch runs, so a restarted query resumes exactly after the last committed batch and a failed batch
is re-read with the same ``[start, end)`` range (``foreachBatch`` sinks must be idempotent per
``batch_id``). Nothing is committed to Kafka. An offset is ``{"topic": {"partition": next}}``.

Each Spark partition reads one range of one Kafka partition with its own native consumer, opened
inside :meth:`KafkaStreamReader.read` (readers are pickled to Python workers and hold only options
and offsets). Ranges longer than ``maxRecordsPerPartition`` are split.

A range ends when the consumer's *position* reaches its end, not when a message at ``end - 1``
is seen: the last offsets of a range may hold no message for the reader (transaction markers,
aborted transactions' records, records removed by compaction), and librdkafka's position moves
past them. A range whose start was removed by retention is data loss: with ``failOnDataLoss``
(default true, as in Spark's Kafka source) the query fails; otherwise a warning is logged and the
range is read from the earliest offset still available.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import replace
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql.datasource import (
    DataSource,
    DataSourceReader,
    DataSourceStreamReader,
    DataSourceStreamWriter,
    DataSourceWriter,
    InputPartition,
)
from pyspark.sql.types import StructType

from ._decode import (
    HEADERS,
    KAFKA_COLUMNS,
    kafka_batch,
    kafka_columns,
    output_schema,
    select_columns,
    value_schema,
)
from ._options import KafkaOptions, Offsets
from ._schema import arrow_schema, ddl_names, is_ddl, parse_schema, spark_schema
from ._sink import KafkaArrowWriter, KafkaStreamArrowWriter, SinkOptions, writer_options

try:  # Spark 4.2+: read limits and Trigger.AvailableNow
    from pyspark.sql.streaming.datasource import (
        ReadAllAvailable,
        ReadMaxRows,
        ReadMinRows,
        SupportsTriggerAvailableNow,
    )
except ImportError:  # Spark 4.0 / 4.1: Spark calls latestOffset() without arguments
    ReadAllAvailable = ReadMaxRows = ReadMinRows = None  # type: ignore[assignment,misc]

    class SupportsTriggerAvailableNow:  # type: ignore[no-redef]
        """Stand-in on Spark < 4.2 (which wraps sources itself for ``availableNow``)."""


__all__ = ["KafkaDataSource", "KafkaStreamReader", "KafkaRange", "KafkaOptions"]

log = logging.getLogger("pktstream.spark")


class KafkaRange(InputPartition):
    """``[start, end)`` of one Kafka partition: one Spark task."""

    def __init__(self, topic: str, partition: int, start: int, end: int) -> None:
        super().__init__((topic, partition, start, end))
        self.topic, self.partition, self.start, self.end = topic, partition, start, end

    def __repr__(self) -> str:
        return f"KafkaRange({self.topic}[{self.partition}] {self.start}..{self.end})"


def plan(opts: KafkaOptions, start: Offsets, end: Offsets) -> List[KafkaRange]:
    """The Spark partitions for a micro-batch: one per Kafka partition range, long ranges split."""
    ranges = []
    for topic, ps in end.items():
        for p, e in ps.items():
            s = int(start.get(topic, {}).get(p, 0))
            if e > s:
                ranges.append((topic, int(p), s, int(e)))
    total = sum(e - s for _, _, s, e in ranges)
    step = opts.max_records_per_partition
    if opts.min_partitions and total:
        step = max(1, min(step, -(-total // opts.min_partitions)))
    out = []
    for topic, part, first, end_ in ranges:
        for lo in range(first, end_, step):
            out.append(KafkaRange(topic, part, lo, min(end_, lo + step)))
    return out


def check_retention(opts: KafkaOptions, ranges: List[KafkaRange]) -> List[KafkaRange]:
    """On the driver: ranges starting at offsets removed by retention fail the query
    (``failOnDataLoss``) or, with a warning in the driver's log, start at the earliest offset left.
    Tasks check again when they start (retention may run in between)."""
    lows = opts.lows(sorted({(r.topic, r.partition) for r in ranges}))
    out = []
    for r in ranges:
        start = data_loss(opts, r, lows.get((r.topic, r.partition), 0))
        if start < r.end:
            out.append(r if start == r.start else KafkaRange(r.topic, r.partition, start, r.end))
    return out


def cap(start: Offsets, latest: Offsets, max_rows: int) -> Offsets:
    """``latest`` limited to ``max_rows`` offsets past ``start`` in all, shared by lag (as Spark's
    Kafka source does). Partitions new since ``start`` start at 0."""
    lags = []
    for t, ps in latest.items():
        for p, e in ps.items():
            s = int(start.get(t, {}).get(p, 0))
            lags.append((t, p, s, max(0, e - s)))
    total = sum(lag for *_, lag in lags)
    out: Offsets = {t: {} for t in latest}
    if total <= max_rows:
        return {t: dict(ps) for t, ps in latest.items()} if total else _merge(start, latest)
    share = [max_rows * lag // total for *_, lag in lags]
    left = max_rows - sum(share)
    for i in sorted(range(len(lags)), key=lambda i: -lags[i][3]):
        if left <= 0:
            break
        if share[i] < lags[i][3]:
            share[i] += 1
            left -= 1
    for (t, p, s, _), n in zip(lags, share):
        out[t][p] = s + n
    return out


def _merge(start: Offsets, latest: Offsets) -> Offsets:
    """``start`` with partitions new in ``latest`` at 0 (nothing to read)."""
    return {t: {p: int(start.get(t, {}).get(p, 0)) for p in ps} for t, ps in latest.items()}


def data_loss(opts: KafkaOptions, r: KafkaRange, low: int) -> int:
    """Where to start ``r`` when offsets before ``low`` are gone: fails (``failOnDataLoss``) or
    warns and returns ``low``."""
    if r.start >= low:
        return r.start
    lost = min(low, r.end) - r.start
    message = (
        f"pktstream: offsets {r.start}..{min(low, r.end)} of {r.topic} [{r.partition}] ({lost:,} offsets) were "
        f"removed (retention or deletion) before they were read; the earliest available offset is {low}"
    )
    if opts.fail_on_data_loss:
        from pktstream.exceptions import KafkaError

        raise KafkaError(
            message + ". Set the option failOnDataLoss=false to go on from there with a warning.",
            "OFFSET_OUT_OF_RANGE",
        )
    log.warning("%s; going on from there (failOnDataLoss=false)", message)
    return low


def read_range(opts: KafkaOptions, r: KafkaRange, target: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Every message of ``r``, decoded and cast to ``target``, each exactly once.

    The native consumer is assigned exactly ``r.partition`` at ``r.start`` and reads until its
    position reaches ``r.end`` (positions move past transaction markers, aborted records and
    compacted gaps); rows at or past ``r.end`` (and, defensively, any offset already handed out)
    are dropped. ``enable.partition.eof`` ends each read at the partition's end at once.
    """
    consumer = opts.native(**{
        "enable.partition.eof": "true",
        # Offsets deleted while reading: an error, or (failOnDataLoss=false) the earliest.
        "auto.offset.reset": "error" if opts.fail_on_data_loss else "earliest",
    })
    try:
        low, _ = consumer.watermarks(r.topic, r.partition, opts.timeout)
        start = data_loss(opts, r, low)
        if start >= r.end:
            return
        consumer.assign([(r.topic, r.partition, start)], opts.timeout)
        values = _value_names(target)
        seen = start - 1  # the highest offset handed out (or known to be before the range)
        deadline = time.monotonic() + opts.poll_timeout
        per_message = opts.format != "arrow"
        while seen < r.end - 1:
            position = consumer.position(r.topic, r.partition)
            if position is not None and position >= r.end:
                break
            want = min(65_536, r.end - 1 - seen) if per_message else 65_536
            batch = pa.record_batch(consumer.read_batch(want, 1.0))
            if batch.num_rows == 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"pktstream: {r.topic} [{r.partition}] stayed at position {position} short of the end "
                        f"{r.end} of its range {r.start}..{r.end} for pollTimeoutMs={int(opts.poll_timeout * 1000)} "
                        "(an open transaction, or the broker unreachable?)"
                    )
                continue
            deadline = time.monotonic() + opts.poll_timeout
            keep, seen = _select(batch, r, seen, per_message)
            if keep is not None:
                out = _take(batch, keep)
                if out.num_rows:
                    yield kafka_batch(out, values, target)
    finally:
        _close_soon(consumer)


def read_ahead(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """``batches``, produced on a thread up to ``depth`` ahead: while Spark's worker sends one batch
    to the JVM, the next one is read and decoded (the native read releases the GIL), so decoding
    overlaps the hand-off instead of alternating with it. Errors reach the caller in order; closing
    the iterator early stops the thread (and with it the range's consumer)."""
    q: "queue.Queue[Tuple[str, Any]]" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for b in batches:
                if not put(("batch", b)):
                    break
        except BaseException as e:  # noqa: BLE001 - handed to the consumer of the iterator
            put(("error", e))
            return
        finally:
            if stop.is_set():
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
        put(("end", None))

    thread = threading.Thread(target=run, name="pktstream-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def _close_soon(consumer: Any) -> None:
    """Closes a range's consumer on a daemon thread: librdkafka's close takes ~0.1 s (its threads
    wind down) that the task need not wait for. The consumer has no group, so nothing is lost if
    the worker exits first. (``close`` releases the GIL.)"""
    threading.Thread(target=consumer.close, name="pktstream-close", daemon=True).start()


def _select(batch: pa.RecordBatch, r: KafkaRange, seen: int, per_message: bool) -> Tuple[Optional[np.ndarray], int]:
    """The rows of ``r`` not handed out yet (mask), and the new highest offset seen."""
    part = batch.column("_partition").to_numpy(zero_copy_only=False)
    offs = batch.column("_offset").to_numpy(zero_copy_only=False)
    mine = part == r.partition
    if batch.schema.get_field_index("_topic") >= 0 and len(set(batch.column("_topic").unique().to_pylist())) > 1:
        mine &= pc.equal(batch.column("_topic"), r.topic).to_numpy(zero_copy_only=False)
    idx = np.nonzero(mine)[0]
    if idx.size == 0:
        return None, seen
    o = offs[idx]
    # Highest offset before each row (a message's rows share its offset with `arrow`).
    before = np.empty_like(o)
    before[0] = seen
    if o.size > 1:
        before[1:] = np.maximum(np.maximum.accumulate(o[:-1]), seen)
    if per_message:
        fresh = o > before
    else:
        first = np.ones(o.size, dtype=bool)
        first[1:] = o[1:] != o[:-1]
        start_ok = o > before
        # a row belongs to a fresh message if the first row of its run was fresh
        run = np.cumsum(first) - 1
        fresh = start_ok[first][run]
    ok = fresh & (o >= r.start) & (o < r.end)
    mask = np.zeros(batch.num_rows, dtype=bool)
    mask[idx[ok]] = True
    return mask, max(seen, int(o.max()))


def _take(batch: pa.RecordBatch, mask: np.ndarray) -> pa.RecordBatch:
    """The rows of ``batch`` where ``mask`` holds. Usually that is every row, or one run of rows
    (a range's first or last batch): a slice then, without the copy of every column a filter makes
    (the filter was ~40% of reading an arrow range)."""
    kept = np.flatnonzero(mask)
    if kept.size == 0:
        return batch.slice(0, 0)
    first, last = int(kept[0]), int(kept[-1])
    if last - first + 1 == kept.size:
        return batch.slice(first, kept.size)
    return batch.filter(pa.array(mask))


def _value_names(target: pa.Schema) -> set:
    kafka = set(KAFKA_COLUMNS.names) | {HEADERS.name}
    names = {n for n in target.names if n not in kafka}
    names |= {n[len("kafka_"):] for n in target.names if n.startswith("kafka_") and n[len("kafka_"):] in kafka}
    return names


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Micro-batch reader; see the module docs. Holds options and offsets only."""

    def __init__(self, opts: KafkaOptions, schema: StructType) -> None:
        self.opts = opts
        self.target = arrow_schema(schema)
        self._until: Optional[Offsets] = None  # Trigger.AvailableNow: never read past these
        self._last: Optional[Offsets] = None  # the last end returned (Spark < 4.2 read limits)
        self._last_trigger: Optional[float] = None  # monotonic time of the last batch (minOffsetsPerTrigger)

    def initialOffset(self) -> Offsets:
        latest = self.opts.watermarks()
        start = self.opts.starting(latest, self.opts.earliest(latest))
        self._last = start
        return start

    def getDefaultReadLimit(self) -> Any:
        """``ReadMaxRows(maxOffsetsPerTrigger)``, else ``ReadMinRows(minOffsetsPerTrigger)``, else all.
        PySpark has no composite limit: with both options the minimum (and ``maxTriggerDelay``,
        which PySpark's ``ReadMinRows`` does not carry) is applied here in :meth:`latestOffset`."""
        if ReadMaxRows is None:
            return None
        if self.opts.max_offsets_per_trigger:
            return ReadMaxRows(self.opts.max_offsets_per_trigger)
        if self.opts.min_offsets_per_trigger:
            return ReadMinRows(self.opts.min_offsets_per_trigger)
        return ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._until = self.opts.watermarks()

    def latestOffset(self, start: Optional[Offsets] = None, limit: Any = None) -> Offsets:
        """The end of the next micro-batch. Spark 4.2+ passes ``start`` and a read limit; Spark
        4.0/4.1 pass neither, and the options' limits then apply from the previous end returned by
        this reader (the first batch after a restart reads all that is available).

        ``minOffsetsPerTrigger``: while fewer new offsets than that are available and less than
        ``maxTriggerDelay`` passed since the last batch, the batch is skipped (``start`` comes
        back), as in Spark's Kafka source; the first batch of a run never waits. ``availableNow``
        and ``ReadAllAvailable`` read everything, whatever the options say."""
        if self._until is not None:
            # availableNow: the end offsets fixed at query start bound every batch; end offsets only
            # grow, so min(now, until) is `until` and no broker round trip is needed per batch.
            latest = {t: dict(ps) for t, ps in self._until.items()}
        else:
            latest = self.opts.watermarks()
        max_rows = min_rows = None
        if start is None:  # Spark 4.0 / 4.1
            start = self._last
            if start is not None:
                max_rows, min_rows = self.opts.max_offsets_per_trigger, self.opts.min_offsets_per_trigger
        elif ReadMaxRows is not None and isinstance(limit, ReadMaxRows):
            max_rows, min_rows = limit.max_rows, self.opts.min_offsets_per_trigger
        elif ReadMinRows is not None and isinstance(limit, ReadMinRows):
            min_rows = limit.min_rows
        if start is not None:
            # Never move backwards (a partition's end offset read from a lagging replica).
            latest = {t: {p: max(e, int(start.get(t, {}).get(p, 0))) for p, e in ps.items()} for t, ps in latest.items()}
            if min_rows and self._until is None and self._delay(start, latest, min_rows):
                return start
        end = cap(start, latest, max_rows) if (max_rows and start is not None) else latest
        self._last = end
        return end

    def _delay(self, start: Offsets, latest: Offsets, min_rows: int) -> bool:
        """Whether to skip this trigger (fewer than ``min_rows`` new offsets, ``maxTriggerDelay``
        not over); Spark's ``KafkaMicroBatchStream.delayBatch``."""
        now = time.monotonic()
        if self._last_trigger is None or now - self._last_trigger >= self.opts.max_trigger_delay:
            self._last_trigger = now
            return False
        new = sum(max(0, e - int(start.get(t, {}).get(p, 0))) for t, ps in latest.items() for p, e in ps.items())
        if new < min_rows:
            return True
        self._last_trigger = now
        return False

    def partitions(self, start: Offsets, end: Offsets) -> Sequence[InputPartition]:
        return check_retention(self.opts, plan(self.opts, start, end))

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        assert isinstance(partition, KafkaRange)
        return read_ahead(read_range(self.opts, partition, self.target))

    def commit(self, end: Offsets) -> None:
        """Nothing to do: offsets live in Spark's checkpoint, not in Kafka."""


class KafkaBatchReader(DataSourceReader):
    """``spark.read.format("pktstream")``: ``startingOffsets`` (default earliest; or by time) to
    ``endingOffsets`` (default latest, as of planning; or by time)."""

    def __init__(self, opts: KafkaOptions, schema: StructType) -> None:
        self.opts = opts
        self.target = arrow_schema(schema)

    def partitions(self) -> Sequence[InputPartition]:
        latest = self.opts.watermarks()
        earliest = self.opts.earliest(latest)
        start = self.opts.starting(latest, earliest)
        end = self.opts.ending(latest, earliest)
        return check_retention(self.opts, plan(self.opts, start, end))

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:  # type: ignore[override]
        assert isinstance(partition, KafkaRange)
        return read_ahead(read_range(self.opts, partition, self.target))


class KafkaDataSource(DataSource):
    """``spark.readStream.format("pktstream")`` and ``df.write(Stream).format("pktstream")``: see
    ``docs/spark.md`` for the options. Reading, the options are Spark's Kafka source's; writing,
    ``topic``, ``format`` (json, csv, arrow) and ``key`` (a column).

    Example:
        >>> packets = (spark.readStream.format("pktstream")
        ...            .option("kafka.bootstrap.servers", "127.0.0.1:9092")
        ...            .option("subscribe", "packets")
        ...            .option("startingOffsets", "earliest")
        ...            .load())   # nothing is read before a query starts
        >>> packets.columns[-6:]
        ['key', 'topic', 'partition', 'offset', 'timestamp', '_error']
    """

    @classmethod
    def name(cls) -> str:
        return "pktstream"

    def schema(self) -> Union[StructType, str]:
        """The output schema. A DDL ``schema`` option goes to Spark as DDL (value columns, then the
        Kafka columns): Spark parses it and hands the readers the parsed ``StructType``."""
        opts = KafkaOptions.parse(self.options, streaming=None)
        if opts.schema and is_ddl(opts.schema) and opts.format != "raw":
            return _output_ddl(opts.schema, opts.include_headers)
        values = value_schema(opts.format, opts.schema, opts.columns, opts.addresses)
        if values is None:
            # `arrow` without a `schema` option: learnt from the topic once. Spark pickles this
            # instance after calling schema(), so the driver's stream runner and the planning
            # worker (which call streamReader -> _check_user_schema) reuse it instead of reading
            # the topic again (~0.1-0.5 s each).
            cached = self.__dict__.get("_sniffed")
            if cached is None:
                sniffed = select_columns(_sniff_arrow_schema(opts), opts.columns)
                cached = self.__dict__["_sniffed"] = spark_schema(
                    output_schema(sniffed, kafka_columns(opts.include_headers)))
            return cached
        return spark_schema(output_schema(values, kafka_columns(opts.include_headers)))

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        schema = self._check_user_schema(schema)
        return KafkaStreamReader(self._with_values(KafkaOptions.parse(self.options), schema), schema)

    def reader(self, schema: StructType) -> DataSourceReader:
        schema = self._check_user_schema(schema)
        return KafkaBatchReader(self._with_values(KafkaOptions.parse(self.options, streaming=False), schema), schema)

    @staticmethod
    def _with_values(opts: KafkaOptions, schema: StructType) -> KafkaOptions:
        """``opts`` with the value schema Spark parsed from a DDL ``schema`` option (the fields
        before the Kafka columns), so workers never parse DDL themselves."""
        # `json` and `arrow` values decode straight into Spark's types (the native consumer casts
        # each message without the GIL; pyarrow casts on the worker were ~45% of reading an arrow
        # range once the rows were sliced instead of filtered), and with `columns` only those
        # columns (arrow-ipc skips the others' buffers). `raw` frames decode into the packet schema.
        if opts.format == "raw":
            return opts
        values = StructType(schema.fields[: len(schema.fields) - len(kafka_columns(opts.include_headers))])
        return replace(opts, values=arrow_schema(values))

    def writer(self, schema: StructType, overwrite: bool) -> DataSourceWriter:
        """``df.write.format("pktstream")``: rows to the ``topic`` option (see ``_sink``)."""
        return KafkaArrowWriter(writer_options(self.options, schema, overwrite))

    def streamWriter(self, schema: StructType, overwrite: bool) -> DataSourceStreamWriter:
        """``df.writeStream.format("pktstream")``; ``complete`` output mode writes the whole result
        each micro-batch (as Spark's Kafka sink does)."""
        return KafkaStreamArrowWriter(SinkOptions.parse(self.options, [f.name for f in schema.fields]))

    def _check_user_schema(self, schema: Union[StructType, str]) -> StructType:
        """``.schema(...)`` on the reader cannot change how values decode: refuse it clearly
        instead of yielding null columns (the value schema is the ``schema`` option). Returns the
        schema (parsed, when a caller outside Spark passes :meth:`schema`'s DDL)."""
        expected = self.schema()
        if isinstance(schema, str):
            schema = parse_schema(schema)
        if isinstance(expected, str):
            names = ddl_names(expected)
            same = [f.name for f in schema.fields] == names
        else:
            same = schema == expected
        if not same:
            raise ValueError(
                "pktstream: the value schema is set with .option('schema', 'a INT, b STRING') (a DDL or "
                "Spark JSON string), not with .schema(...); the output schema then follows from it"
            )
        return schema


#: Spark DDL types of the Kafka columns (see ``KAFKA_COLUMNS``).
_KAFKA_DDL = {"key": "BINARY", "topic": "STRING", "partition": "INT", "offset": "BIGINT", "timestamp": "TIMESTAMP",
              "headers": "ARRAY<STRUCT<key: STRING, value: BINARY>>", "_error": "STRING"}


def _output_ddl(values_ddl: str, include_headers: bool = False) -> str:
    """The output schema as DDL: the value columns, then the Kafka columns (``kafka_<name>`` where
    a value column has the name).

    Example:
        >>> _output_ddl("amount DOUBLE, timestamp STRING")
        'amount DOUBLE, timestamp STRING, `key` BINARY, `topic` STRING, `partition` INT, `offset` BIGINT, `kafka_timestamp` TIMESTAMP, `_error` STRING'
    """
    taken = set(ddl_names(values_ddl))
    names = kafka_columns(include_headers).names
    kafka = [f"`{'kafka_' + n if n in taken else n}` {_KAFKA_DDL[n]}" for n in names]
    return ", ".join([values_ddl.strip().rstrip(",")] + kafka)


def _sniff_arrow_schema(opts: KafkaOptions) -> pa.Schema:
    """The schema of the first ``arrow`` message of the topics (the ``schema`` option skips this)."""
    topics = list(opts.current_topics())
    consumer = opts.native()
    try:
        ends = consumer.assign_all(topics, opts.timeout) if topics else []
        if not any(end > 0 for *_, end in ends):
            raise ValueError(f"format 'arrow': topics {topics} are empty, so give the value `schema` option")
        deadline = time.monotonic() + opts.timeout
        while time.monotonic() < deadline:
            batch = pa.record_batch(consumer.read_batch(1, 1.0))
            if batch.num_rows:
                return pa.schema([f for f in batch.schema if not f.name.startswith("_")])
        raise TimeoutError(f"format 'arrow': no message read from {topics} to learn the schema")
    finally:
        consumer.close()
