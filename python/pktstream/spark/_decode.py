"""Kafka message values to Spark columns: the value schema, the output layout, and :func:`decode`.

Both the ``pktstream`` streaming source and :func:`decode` (for DataFrames read with Spark's own
Kafka source) decode with :func:`pktstream.decode_values` / the native consumer, so a value turns
into the same columns whichever way it reached Spark.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Iterator, List, Optional, Sequence, Union

import pyarrow as pa

from .._types import AddressFormat, DecodeFormat, TimestampUnit
from ._schema import arrow_schema, conform, parse_schema, spark_schema

__all__ = ["FORMATS", "KAFKA_COLUMNS", "HEADERS", "kafka_columns", "value_schema", "output_schema", "decode"]

#: Value formats the Spark integration decodes (the ``pktstream`` source: all but ``csv``).
FORMATS = ("json", "raw", "arrow")

#: Value formats :func:`decode` takes: ``csv`` lines are parsed in Python with pyarrow's CSV reader.
DECODE_FORMATS = FORMATS + ("csv",)

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

#: ``includeHeaders=true``: Spark's ``headers`` column, every header of the message in order
#: (null when it has none). A key that is not UTF-8 arrives with U+FFFD for each invalid sequence,
#: as Kafka's Java client decodes it; values are the bytes sent.
HEADERS = pa.field("headers", pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.binary())])))


def kafka_columns(include_headers: bool = False) -> pa.Schema:
    """The Kafka columns, with ``headers`` before ``_error`` when asked for (``includeHeaders``).

    Example:
        >>> kafka_columns(True).names
        ['key', 'topic', 'partition', 'offset', 'timestamp', 'headers', '_error']
    """
    if not include_headers:
        return KAFKA_COLUMNS
    return KAFKA_COLUMNS.insert(KAFKA_COLUMNS.get_field_index("_error"), HEADERS)


SchemaArg = Union[None, str, pa.Schema, Any]


def value_schema(
    format: str,
    schema: SchemaArg = None,
    columns: Optional[Sequence[str]] = None,
    addresses: str = "string",
    formats: Sequence[str] = FORMATS,
) -> Optional[pa.Schema]:
    """The Arrow schema values decode into: ``schema`` for ``json`` (default: the packet schema), the
    packet schema for ``raw``; for ``arrow`` ``schema`` or ``None`` (known once a message is read).

    ``schema`` may be a :class:`pyarrow.Schema`, a Spark ``StructType``, a DDL string
    (``"branch STRING, amount DOUBLE"``) or Spark's schema JSON. ``formats`` are the ones the
    caller takes (:func:`decode` adds ``csv``, which reads like ``json``).

    A DDL string is parsed by Spark (an active session is needed: :func:`decode` runs on the
    driver; the ``pktstream`` source lets Spark parse its ``schema`` option instead).

    Example:
        >>> value_schema("json", "branch STRING, amount DOUBLE")  # DDL: parsed by the running Spark
        branch: string
        amount: double
        >>> value_schema("json", '{"type": "struct", "fields": [{"name": "amount", "type": "double", '
        ...                      '"nullable": true, "metadata": {}}]}')
        amount: double
        >>> value_schema("raw", columns=["ts", "ip_proto"]).names
        ['ts', 'ip_proto']
    """
    import pktstream

    if format not in formats:
        raise ValueError(f"format must be one of {', '.join(formats)}, not {format!r}")
    if format == "csv":
        if schema is None and columns is None:
            raise ValueError("format 'csv' lines carry no names: give `columns` (packet columns, in order) "
                             "or a `schema`")
        format = "json"
    if format == "raw":
        if schema is not None:
            raise ValueError("format 'raw' decodes frames into the packet schema: use `columns`, not `schema`")
        return pktstream.schema(columns, addresses=addresses)  # type: ignore[arg-type]
    if schema is None:
        return pktstream.schema(columns, addresses=addresses) if format == "json" else None  # type: ignore[arg-type]
    if isinstance(schema, str):
        schema = parse_schema(schema)
    values = schema if isinstance(schema, pa.Schema) else arrow_schema(schema)
    return select_columns(values, columns) if format == "arrow" else values


def select_columns(values: Optional[pa.Schema], columns: Optional[Sequence[str]]) -> Optional[pa.Schema]:
    """``values`` narrowed to ``columns`` (in that order), for ``arrow`` topics: messages are then
    read by column name and only those columns are decoded.

    Example:
        >>> import pyarrow as pa
        >>> select_columns(pa.schema({"a": pa.int8(), "b": pa.string()}), ["b"]).names
        ['b']
    """
    if values is None or columns is None:
        return values
    missing = [c for c in columns if c not in values.names]
    if missing:
        raise ValueError(f"columns {missing} are not in the arrow messages' schema {values.names}")
    return pa.schema([values.field(c) for c in columns])


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
               "_timestamp": "timestamp", "_headers": "headers"}
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
    format: DecodeFormat = "json",
    schema: SchemaArg = None,
    *,
    columns: Optional[Sequence[str]] = None,
    addresses: AddressFormat = "string",
    timestamp_unit: TimestampUnit = "us",
    csv_delimiter: str = ",",
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
        format: ``"json"``, ``"csv"`` (lines as ``produce_pcap(format="csv")`` writes them: no
            header, so ``columns`` or ``schema`` names them in order), ``"raw"`` (frames;
            timestamps from the 8-byte ``key``; with Spark's ``includeHeaders=true`` the
            ``link_type`` and ``wirelen`` headers are honoured) or ``"arrow"``.
        schema: The ``json``/``csv`` value schema (DDL string, ``StructType``, pyarrow schema;
            default: the packet schema); required for ``arrow``.
        columns: Packet columns for ``raw`` (and the default ``json``/``csv`` schema); for
            ``arrow``, the columns of ``schema`` to keep: only those are decoded.
        csv_delimiter: The ``csv`` field delimiter.

    Example:
        >>> raw = (spark.readStream.format("kafka")
        ...        .option("kafka.bootstrap.servers", "broker:9092")
        ...        .option("subscribe", "packets").load())  # doctest: +SKIP
        >>> packets = pktstream.spark.decode(raw, format="json")  # doctest: +SKIP

        The same on a batch DataFrame, one value not JSON:

        >>> import pktstream.spark
        >>> raw = spark.createDataFrame([(b'{"ip_proto": 6, "dst_port": 443}',), (b"oops",)], "value BINARY")
        >>> decoded = pktstream.spark.decode(raw, format="json", schema="ip_proto INT, dst_port INT")
        >>> decoded.columns
        ['ip_proto', 'dst_port', '_error']
        >>> [tuple(r) for r in decoded.collect()]
        [(6, 443, None), (None, None, 'expected one JSON object per message, found bytes that are not JSON')]
    """
    import pktstream

    from ._schema import spark_schema as to_spark

    values = value_schema(format, schema, columns, addresses, DECODE_FORMATS)
    if values is None:
        raise ValueError("format 'arrow' needs the `schema` of the Arrow messages")
    if "value" not in df.columns:
        raise ValueError(f"decode() needs a `value` column; the DataFrame has {df.columns}")
    rest = [pa.field(f.name, _arrow_of(f.dataType), True) for f in df.schema.fields if f.name != "value"]
    target = output_schema(values, pa.schema(rest + [pa.field("_error", pa.string())]))
    value_names = set(values.names)
    rest_names = [f.name for f in rest]
    schema_arg = None if format == "raw" else values
    has_headers = format == "raw" and "headers" in df.columns

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            names = batch.schema.names
            keys = batch.column(names.index("key")) if "key" in names else None
            ts = None
            if "timestamp" in names:
                ts = batch.column(names.index("timestamp")).cast(pa.timestamp("ms", "UTC")).cast(pa.int64())
            if format == "csv":
                decoded = decode_csv(batch.column(names.index("value")), values, csv_delimiter)
            else:
                decoded = pktstream.decode_values(
                    batch.column(names.index("value")),
                    format=format,
                    schema=schema_arg,
                    columns=None if format == "arrow" else columns,  # arrow: already in `values`
                    addresses=addresses,
                    timestamp_unit=timestamp_unit,
                    keys=keys,
                    timestamps_ms=ts,
                )
            if has_headers:
                from ._frames import apply_headers

                decoded = apply_headers(decoded, batch.column(names.index("value")),
                                        batch.column(names.index("headers")), columns, addresses)
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


def decode_csv(values: pa.Array, schema: pa.Schema, delimiter: str = ",") -> pa.RecordBatch:
    """CSV lines (one value each, no header, nulls empty, RFC 4180 quoting) into ``schema``, with
    ``_error`` and ``_message`` as :func:`pktstream.decode_values` gives them.

    The whole batch is parsed at once; if that fails (a malformed line, a quoted newline), each
    value is parsed alone and a bad one becomes a row of nulls with its ``_error``.

    Example:
        >>> import pyarrow as pa
        >>> b = decode_csv(pa.array([b"1,tcp", b"2,"]), pa.schema({"n": pa.int64(), "p": pa.string()}))
        >>> b.column("n").to_pylist(), b.column("p").to_pylist()
        ([1, 2], ['tcp', None])
    """
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(column_names=schema.names, use_threads=False)
    parse = pcsv.ParseOptions(delimiter=delimiter)
    convert = pcsv.ConvertOptions(column_types=schema, strings_can_be_null=True,
                                  quoted_strings_can_be_null=False)

    def parse_all(data: bytes) -> pa.Table:
        return pcsv.read_csv(pa.py_buffer(data), read_options=read, parse_options=parse,
                             convert_options=convert).cast(schema)

    lines = [v if v is not None else b"" for v in values.cast(pa.binary()).to_pylist()]
    n = len(lines)
    errors: List[Optional[str]] = [None] * n
    try:
        table = parse_all(b"\n".join(lines) + b"\n")
        if table.num_rows != n:
            raise ValueError(f"{table.num_rows} rows from {n} lines")
    except (pa.ArrowInvalid, ValueError):
        parts = []
        for i, line in enumerate(lines):
            try:
                one = parse_all(line + b"\n")
                if one.num_rows != 1:
                    raise ValueError(f"{one.num_rows} rows in one value")
            except (pa.ArrowInvalid, ValueError) as e:
                one = pa.table({f.name: pa.nulls(1, f.type) for f in schema}, schema=schema)
                errors[i] = f"csv: {e}"
            parts.append(one)
        table = pa.concat_tables(parts) if parts else schema.empty_table()
    table = table.combine_chunks()
    return pa.RecordBatch.from_arrays(
        [table.column(k).combine_chunks() for k in range(table.num_columns)]
        + [pa.array(errors, pa.string()), pa.array(range(n), pa.int64())],
        names=schema.names + ["_error", "_message"],
    )


def _arrow_of(t: Any) -> pa.DataType:
    from ._schema import arrow_type

    return arrow_type(t)


def column_list(option: Optional[str]) -> Optional[List[str]]:
    """``"a, b"`` -> ``["a", "b"]``; empty or missing -> ``None``."""
    if not option:
        return None
    return [c.strip() for c in option.split(",") if c.strip()]
