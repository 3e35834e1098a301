"""Kafka message values to Spark columns: the value schema, the output layout, and :func:`decode`.

Both the ``pktstream`` streaming source and :func:`decode` (for DataFrames read with Spark's own
Kafka source) decode with :func:`pktstream.decode_values` / the native consumer, so a value turns
into the same columns whichever way it reached Spark.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Iterator, List, Optional, Sequence, Union

import pyarrow as pa

from ._schema import arrow_schema, conform, parse_schema, spark_schema

__all__ = ["FORMATS", "KAFKA_COLUMNS", "value_schema", "output_schema", "decode"]

#: Value formats the Spark integration decodes.
FORMATS = ("json", "raw", "arrow")

#: The Kafka columns the ``pktstream`` source adds after the decoded ones (Spark's Kafka names).
KAFKA_COLUMNS = pa.schema(
    [
        pa.field("key", pa.binary()),
        pa.field("topic", pa.string()),
        pa.field("partition", pa.int32()),
        pa.field("offset", pa.int64()),
        pa.field("timestamp", pa.timestamp("us", "UTC")),
        pa.field("_error", pa.string()),
    ]
)

SchemaArg = Union[None, str, pa.Schema, Any]


def value_schema(
    format: str, schema: SchemaArg = None, columns: Optional[Sequence[str]] = None, addresses: str = "string"
) -> Optional[pa.Schema]:
    """The Arrow schema values decode into: ``schema`` for ``json`` (default: the packet schema), the
    packet schema for ``raw``; for ``arrow`` ``schema`` or ``None`` (known once a message is read).

    ``schema`` may be a :class:`pyarrow.Schema`, a Spark ``StructType``, a DDL string
    (``"branch STRING, amount DOUBLE"``) or Spark's schema JSON.

    A DDL string is parsed by Spark (an active session is needed: :func:`decode` runs on the
    driver; the ``pktstream`` source lets Spark parse its ``schema`` option instead).

    Example:
        >>> value_schema("json", "branch STRING, amount DOUBLE")  # doctest: +SKIP
        branch: string
        amount: double
        >>> value_schema("json", '{"type": "struct", "fields": [{"name": "amount", "type": "double", '
        ...                      '"nullable": true, "metadata": {}}]}')
        amount: double
        >>> value_schema("raw", columns=["ts", "ip_proto"]).names
        ['ts', 'ip_proto']
    """
    import pktstream

    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if format == "raw":
        if schema is not None:
            raise ValueError("format 'raw' decodes frames into the packet schema: use `columns`, not `schema`")
        return pktstream.schema(columns, addresses=addresses)  # type: ignore[arg-type]
    if schema is None:
        return pktstream.schema(columns, addresses=addresses) if format == "json" else None  # type: ignore[arg-type]
    if isinstance(schema, pa.Schema):
        return schema
    if isinstance(schema, str):
        schema = parse_schema(schema)
    return arrow_schema(schema)


def output_schema(values: pa.Schema, kafka: pa.Schema = KAFKA_COLUMNS) -> pa.Schema:
    """The decoded columns (as Spark takes them), then the Kafka columns. A Kafka column whose name
    a decoded column already has is renamed ``kafka_<name>``.

    Example:
        >>> import pyarrow as pa
        >>> output_schema(pa.schema({"amount": pa.float64(), "timestamp": pa.string()})).names
        ['amount', 'timestamp', 'key', 'topic', 'partition', 'offset', 'kafka_timestamp', '_error']
    """
    decoded = arrow_schema(spark_schema(values))
    taken = set(decoded.names)
    fields = list(decoded)
    for f in kafka:
        fields.append(f.with_name(f"kafka_{f.name}") if f.name in taken else f)
    return pa.schema(fields)


def kafka_batch(batch: pa.RecordBatch, value_names: AbstractSet[str], target: pa.Schema) -> pa.RecordBatch:
    """A native consumer batch (value columns + ``_topic``, ``_partition``, ... ) laid out as
    ``target`` (see :func:`output_schema`)."""
    renamed = {"_key": "key", "_topic": "topic", "_partition": "partition", "_offset": "offset",
               "_timestamp": "timestamp"}
    arrays, names = [], []
    for name, column in zip(batch.schema.names, batch.columns):
        out = renamed.get(name, name)
        if name in renamed and out in value_names:
            out = f"kafka_{out}"
        arrays.append(column)
        names.append(out)
    return conform(pa.RecordBatch.from_arrays(arrays, names=names), target)


def decode(
    df: Any,
    format: str = "json",
    schema: SchemaArg = None,
    *,
    columns: Optional[Sequence[str]] = None,
    addresses: str = "string",
    timestamp_unit: str = "us",
) -> Any:
    """Decodes the ``value`` column of a DataFrame read with Spark's Kafka source into columns.

    Runs :func:`pktstream.decode_values` over whole Arrow batches with ``mapInArrow`` (no Python per
    row). The result has the decoded columns, then the DataFrame's other columns (``key``,
    ``topic``, ``partition``, ``offset``, ``timestamp``, ``timestampType`` from Spark's Kafka
    source; a name clash gets the prefix ``kafka_``), then ``_error`` (null, or why the value could
    not be decoded: its value columns are then null). ``value`` itself is dropped. An ``arrow``
    value holds many rows: its Kafka columns repeat on each. Works on streaming and batch
    DataFrames.

    Args:
        df: A DataFrame with a binary ``value`` column (and optionally ``key``, ``timestamp``...).
        format: ``"json"``, ``"raw"`` (frames; timestamps from the 8-byte ``key``) or ``"arrow"``.
        schema: The ``json`` value schema (DDL string, ``StructType``, pyarrow schema; default: the
            packet schema); required for ``arrow``.
        columns: Packet columns for ``raw`` (and the default ``json`` schema).

    Example:
        >>> raw = (spark.readStream.format("kafka")
        ...        .option("kafka.bootstrap.servers", "broker:9092")
        ...        .option("subscribe", "packets").load())  # doctest: +SKIP
        >>> packets = pktstream.spark.decode(raw, format="json")  # doctest: +SKIP
        >>> packets.groupBy("ip_proto").count()  # doctest: +SKIP
    """
    import pktstream

    from ._schema import spark_schema as to_spark

    values = value_schema(format, schema, columns, addresses)
    if values is None:
        raise ValueError("format 'arrow' needs the `schema` of the Arrow messages")
    if "value" not in df.columns:
        raise ValueError(f"decode() needs a `value` column; the DataFrame has {df.columns}")
    rest = [pa.field(f.name, _arrow_of(f.dataType), True) for f in df.schema.fields if f.name != "value"]
    target = output_schema(values, pa.schema(rest + [pa.field("_error", pa.string())]))
    value_names = set(values.names)
    rest_names = [f.name for f in rest]
    schema_arg = None if format == "raw" else values

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            names = batch.schema.names
            keys = batch.column(names.index("key")) if "key" in names else None
            ts = None
            if "timestamp" in names:
                ts = batch.column(names.index("timestamp")).cast(pa.timestamp("ms", "UTC")).cast(pa.int64())
            decoded = pktstream.decode_values(
                batch.column(names.index("value")),
                format=format,
                schema=schema_arg,
                columns=columns,
                addresses=addresses,
                timestamp_unit=timestamp_unit,
                keys=keys,
                timestamps_ms=ts,
            )
            index = decoded.column("_message")
            arrays = [decoded.column(n) for n in values.names]
            names_out = list(values.names)
            for n in rest_names:
                column = batch.column(names.index(n))
                arrays.append(column if format != "arrow" else column.take(index))
                names_out.append(f"kafka_{n}" if n in value_names else n)
            arrays.append(decoded.column("_error"))
            names_out.append("_error")
            yield conform(pa.RecordBatch.from_arrays(arrays, names=names_out), target)

    return df.mapInArrow(run, to_spark(target))


def _arrow_of(t: Any) -> pa.DataType:
    from ._schema import arrow_type

    return arrow_type(t)


def column_list(option: Optional[str]) -> Optional[List[str]]:
    """``"a, b"`` -> ``["a", "b"]``; empty or missing -> ``None``."""
    if not option:
        return None
    return [c.strip() for c in option.split(",") if c.strip()]
