"""Arrow schemas to Spark schemas, and Arrow batches cast to exactly what Spark declared.

Spark has no unsigned integers, no nanosecond timestamps and no ``large_string``; Spark 4.2+ also
checks that the Arrow batches a Python data source yields match the declared schema exactly
(nullable fields, ``string``, ``timestamp[us, tz=UTC]``). The casts, in one place:

=============================  ==========================  ================================
Arrow                          Spark                       Arrow handed to Spark
=============================  ==========================  ================================
uint8                          ShortType                   int16
uint16                         IntegerType                 int32
uint32, uint64                 LongType                    int64 (uint64 > 2**63-1 raises)
timestamp[any unit, tz]        TimestampType               timestamp[us, tz=UTC] (truncates)
timestamp[any unit] (no tz)    TimestampNTZType            timestamp[us]
duration[unit]                 LongType                    int64: a count of the unit (flows: ns)
large_string, string_view      StringType                  string
large_binary, fixed binary     BinaryType                  binary
dictionary<_, v>               the type of ``v``           decoded
=============================  ==========================  ================================
"""

from __future__ import annotations

import json
import re
from typing import Any, List

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import types as T

__all__ = [
    "spark_type", "spark_compatible", "spark_schema", "arrow_type", "arrow_schema", "conform", "parse_schema",
    "ddl_names",
]


def spark_compatible(t: pa.DataType) -> pa.DataType:
    """``t`` with what Spark has no type for cast away (the module table's left column to what
    PySpark's own :func:`~pyspark.sql.pandas.types.from_arrow_type` maps): unsigned integers
    widened, dictionaries decoded, ``float16``/view/duration/null types replaced, nested fields
    nullable.

    Example:
        >>> import pyarrow as pa
        >>> spark_compatible(pa.struct([("port", pa.uint16()), ("n", pa.uint64())]))
        StructType(struct<port: int32, n: int64>)
    """
    if pa.types.is_dictionary(t):
        return spark_compatible(t.value_type)
    if pa.types.is_uint8(t):
        return pa.int16()
    if pa.types.is_uint16(t):
        return pa.int32()
    if pa.types.is_uint32(t) or pa.types.is_uint64(t) or pa.types.is_duration(t):
        return pa.int64()
    if pa.types.is_float16(t):
        return pa.float32()
    if _is_view(t, "string_view") or pa.types.is_null(t):
        return pa.string()
    if _is_view(t, "binary_view"):
        return pa.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(pa.field("element", spark_compatible(t.value_type), True))
    if pa.types.is_map(t):
        return pa.map_(spark_compatible(t.key_type), spark_compatible(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, spark_compatible(f.type), True) for f in t])
    return t


def spark_type(t: pa.DataType) -> T.DataType:
    """The Spark type an Arrow type is shown as (see the module table): PySpark's own mapping
    (:func:`~pyspark.sql.pandas.types.from_arrow_type`) of :func:`spark_compatible` ``(t)``.

    Example:
        >>> import pyarrow as pa
        >>> spark_type(pa.uint16()), spark_type(pa.timestamp("ns", "UTC")), spark_type(pa.duration("ns"))
        (IntegerType(), TimestampType(), LongType())
    """
    from pyspark.sql.pandas.types import from_arrow_type

    try:
        return from_arrow_type(spark_compatible(t), prefer_timestamp_ntz=True)
    except Exception as e:  # PySparkTypeError: an Arrow type Spark has no counterpart for
        raise TypeError(f"no Spark type for Arrow type {t}: {e}") from e


def spark_schema(schema: pa.Schema) -> T.StructType:
    """The Spark schema of an Arrow schema: every field nullable, types as in the module table.

    Example:
        >>> import pyarrow as pa
        >>> spark_schema(pa.schema({"ip_proto": pa.uint8()})).simpleString()
        'struct<ip_proto:smallint>'
    """
    return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in schema])


def arrow_type(t: T.DataType) -> pa.DataType:
    """The Arrow type Spark expects in a batch for a Spark type (PySpark's own
    :func:`~pyspark.sql.pandas.types.to_arrow_type`, timestamps in UTC).

    Example:
        >>> arrow_type(T.TimestampType())
        TimestampType(timestamp[us, tz=UTC])
    """
    from pyspark.sql.pandas.types import to_arrow_type

    if isinstance(t, (T.CharType, T.VarcharType)):
        return pa.string()
    return to_arrow_type(t, timezone="UTC")


def arrow_schema(schema: T.StructType) -> pa.Schema:
    """The Arrow schema of the batches Spark accepts for ``schema`` (all fields nullable).

    Example:
        >>> arrow_schema(T.StructType([T.StructField("n", T.LongType())]))
        n: int64
    """
    return pa.schema([pa.field(f.name, arrow_type(f.dataType), True) for f in schema.fields])


def conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """``batch`` cast to ``target`` exactly: columns picked by name (missing ones all null),
    unsigned integers widened, timestamps truncated to microseconds in UTC, nullable fields.

    Example:
        >>> import pyarrow as pa
        >>> b = pa.record_batch({"ts": pa.array([1_500], pa.timestamp("ns", "UTC")),
        ...                      "port": pa.array([443], pa.uint16())})
        >>> out = conform(b, pa.schema({"port": pa.int32(), "ts": pa.timestamp("us", "UTC")}))
        >>> out.schema.types, out.column("ts").cast("int64").to_pylist()
        ([DataType(int32), TimestampType(timestamp[us, tz=UTC])], [1])
    """
    names = batch.schema.names
    columns = []
    for field in target:
        if field.name in names:
            columns.append(_cast(batch.column(names.index(field.name)), field.type))
        else:
            columns.append(pa.nulls(batch.num_rows, field.type))
    return pa.RecordBatch.from_arrays(columns, schema=target)


def _cast(a: pa.Array, t: pa.DataType) -> pa.Array:
    if a.type == t:
        return a
    if pa.types.is_dictionary(a.type):
        a = a.dictionary_decode()
    if pa.types.is_timestamp(a.type) and pa.types.is_timestamp(t):
        # ns -> us drops the sub-microsecond digits; that is the documented truncation.
        return pc.cast(a, t, safe=False)
    if pa.types.is_duration(a.type) and pa.types.is_integer(t):
        return pc.cast(a.cast(pa.int64()), t)
    if pa.types.is_struct(a.type) and pa.types.is_struct(t):
        arrays = [
            _cast(a.field(f.name), f.type) if a.type.get_field_index(f.name) >= 0 else pa.nulls(len(a), f.type)
            for f in t
        ]
        return pa.StructArray.from_arrays(arrays, fields=list(t), mask=a.is_null() if a.null_count else None)
    return pc.cast(a, t)


def _is_view(t: pa.DataType, name: str) -> bool:
    check = getattr(pa.types, f"is_{name}", None)
    return bool(check and check(t))


# --- the `schema` option: a DDL string or Spark's JSON ---------------------------------------------


def is_ddl(text: str) -> bool:
    """True for a DDL string (``"a INT, b STRING"``), False for Spark's schema JSON."""
    return not text.strip().startswith("{")


def parse_schema(text: str) -> T.StructType:
    """Parses the ``schema`` option: Spark's JSON (``StructType.json()``, anywhere) or a DDL string
    (parsed by Spark itself, so it needs an active Spark session: the ``pktstream`` source hands
    DDL to Spark through ``DataSource.schema()`` instead and never calls this on a worker).

    Example:
        >>> parse_schema('{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,'
        ...              '"metadata":{}}]}').simpleString()
        'struct<a:bigint>'
        >>> parse_schema("branch STRING, amount DOUBLE, at TIMESTAMP").simpleString()  # needs a session
        'struct<branch:string,amount:double,at:timestamp>'
    """
    if not is_ddl(text):
        parsed = T.StructType.fromJson(json.loads(text))
        return T.StructType([T.StructField(f.name, f.dataType, True) for f in parsed.fields])
    from pyspark import SparkContext

    if SparkContext._active_spark_context is None:
        raise ValueError(f"parsing the DDL schema {text!r} needs an active Spark session (or give Spark's schema JSON)")
    ddl = T._parse_datatype_string(text)
    if not isinstance(ddl, T.StructType):
        raise ValueError(f"schema {text!r} is not a list of columns")
    parsed = ddl
    return T.StructType([T.StructField(f.name, f.dataType, True) for f in parsed.fields])


def ddl_names(text: str) -> List[str]:
    """The top-level column names of a DDL string, without parsing its types (Spark does that).

    Example:
        >>> ddl_names("a INT, `b c` MAP<STRING, INT>, d: STRUCT<x: INT, y: DECIMAL(5, 2)> COMMENT 'p, q'")
        ['a', 'b c', 'd']
    """
    names, depth, field, quote = [], 0, "", None
    for ch in text + ",":
        if quote:
            field += ch
            if ch == quote:
                quote = None
            continue
        if ch in "`'\"":
            quote = ch
        elif ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            field = field.strip()
            if field:
                m = re.match(r"`((?:[^`]|``)*)`|([^\s:]+)", field)
                if m is None:
                    raise ValueError(f"cannot read a column name in schema {text!r}")
                names.append(m.group(1).replace("``", "`") if m.group(1) is not None else m.group(2))
            field = ""
            continue
        field += ch
    return names


def describe(schema: Any) -> str:
    """A schema's one-line description for error messages."""
    return schema.simpleString() if hasattr(schema, "simpleString") else str(schema)
