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
large_string, string_view      StringType                  string
large_binary, fixed binary     BinaryType                  binary
dictionary<_, v>               the type of ``v``           decoded
=============================  ==========================  ================================
"""

from __future__ import annotations

import json
import re
from typing import Any, List, Optional, Sequence, Tuple

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import types as T

__all__ = ["spark_type", "spark_schema", "arrow_type", "arrow_schema", "conform", "parse_schema"]


def spark_type(t: pa.DataType) -> T.DataType:
    """The Spark type an Arrow type is shown as (see the module table).

    Example:
        >>> import pyarrow as pa
        >>> spark_type(pa.uint16()), spark_type(pa.timestamp("ns", "UTC"))
        (IntegerType(), TimestampType())
    """
    if pa.types.is_dictionary(t):
        return spark_type(t.value_type)
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_int8(t):
        return T.ByteType()
    if pa.types.is_int16(t) or pa.types.is_uint8(t):
        return T.ShortType()
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return T.IntegerType()
    if pa.types.is_integer(t):
        return T.LongType()
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return T.FloatType()
    if pa.types.is_float64(t):
        return T.DoubleType()
    if pa.types.is_decimal(t):
        return T.DecimalType(t.precision, t.scale)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_view(t, "string_view"):
        return T.StringType()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return T.BinaryType()
    if _is_view(t, "binary_view"):
        return T.BinaryType()
    if pa.types.is_timestamp(t):
        return T.TimestampType() if t.tz is not None else T.TimestampNTZType()
    if pa.types.is_date(t):
        return T.DateType()
    if pa.types.is_duration(t):
        return T.LongType()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return T.ArrayType(spark_type(t.value_type), True)
    if pa.types.is_map(t):
        return T.MapType(spark_type(t.key_type), spark_type(t.item_type), True)
    if pa.types.is_struct(t):
        return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in t])
    if pa.types.is_null(t):
        return T.StringType()
    raise TypeError(f"no Spark type for Arrow type {t}")


def spark_schema(schema: pa.Schema) -> T.StructType:
    """The Spark schema of an Arrow schema: every field nullable, types as in the module table.

    Example:
        >>> import pyarrow as pa
        >>> spark_schema(pa.schema({"ip_proto": pa.uint8()})).simpleString()
        'struct<ip_proto:smallint>'
    """
    return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in schema])


def arrow_type(t: T.DataType) -> pa.DataType:
    """The Arrow type Spark expects in a batch for a Spark type.

    Example:
        >>> arrow_type(T.TimestampType())
        TimestampType(timestamp[us, tz=UTC])
    """
    simple = {
        T.BooleanType: pa.bool_(),
        T.ByteType: pa.int8(),
        T.ShortType: pa.int16(),
        T.IntegerType: pa.int32(),
        T.LongType: pa.int64(),
        T.FloatType: pa.float32(),
        T.DoubleType: pa.float64(),
        T.StringType: pa.string(),
        T.BinaryType: pa.binary(),
        T.DateType: pa.date32(),
        T.TimestampType: pa.timestamp("us", "UTC"),
        T.TimestampNTZType: pa.timestamp("us"),
        T.NullType: pa.null(),
    }
    for cls, at in simple.items():
        if type(t) is cls:
            return at
    if isinstance(t, (T.CharType, T.VarcharType)):
        return pa.string()
    if isinstance(t, T.DecimalType):
        return pa.decimal128(t.precision, t.scale)
    if isinstance(t, T.ArrayType):
        return pa.list_(pa.field("element", arrow_type(t.elementType), True))
    if isinstance(t, T.MapType):
        return pa.map_(arrow_type(t.keyType), arrow_type(t.valueType))
    if isinstance(t, T.StructType):
        return pa.struct([pa.field(f.name, arrow_type(f.dataType), True) for f in t.fields])
    raise TypeError(f"no Arrow type for Spark type {t.simpleString()}")


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

_TOKEN = re.compile(r"\s*(?:(`(?:[^`]|``)*`)|([A-Za-z_][A-Za-z0-9_]*)|(\d+)|(.))")

_NAMED = {
    "boolean": T.BooleanType,
    "bool": T.BooleanType,
    "tinyint": T.ByteType,
    "byte": T.ByteType,
    "smallint": T.ShortType,
    "short": T.ShortType,
    "int": T.IntegerType,
    "integer": T.IntegerType,
    "bigint": T.LongType,
    "long": T.LongType,
    "float": T.FloatType,
    "real": T.FloatType,
    "double": T.DoubleType,
    "string": T.StringType,
    "binary": T.BinaryType,
    "date": T.DateType,
    "timestamp": T.TimestampType,
    "timestamp_ltz": T.TimestampType,
    "timestamp_ntz": T.TimestampNTZType,
}


def parse_schema(text: str) -> T.StructType:
    """Parses the ``schema`` option: Spark's JSON (``StructType.json()``) or a DDL string.

    Works without a running Spark session (data sources parse their options in Python workers).
    The DDL covers Spark's usual types, ``decimal(p, s)``, ``array<...>``, ``map<k, v>`` and
    ``struct<name: type, ...>``, backquoted names, and ``NOT NULL`` / ``COMMENT '...'`` (ignored:
    every field is nullable).

    Example:
        >>> parse_schema("branch STRING, amount DOUBLE, at TIMESTAMP").simpleString()
        'struct<branch:string,amount:double,at:timestamp>'
        >>> parse_schema('{"type":"struct","fields":[{"name":"a","type":"long","nullable":true,'
        ...              '"metadata":{}}]}').simpleString()
        'struct<a:bigint>'
    """
    text = text.strip()
    if text.startswith("{"):
        parsed = T.StructType.fromJson(json.loads(text))
        return T.StructType([T.StructField(f.name, f.dataType, True) for f in parsed.fields])
    tokens = _tokens(text)
    fields, pos = _fields(tokens, 0, end=None)
    if pos != len(tokens):
        raise ValueError(f"cannot parse schema {text!r} near {''.join(tokens[pos:pos + 3])!r}")
    return T.StructType(fields)


def _tokens(text: str) -> List[str]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        tok = m.group(0).strip()
        if tok.startswith("'"):  # a COMMENT string: skip to its closing quote
            close = text.find("'", m.end())
            if close < 0:
                raise ValueError(f"unterminated string in schema {text!r}")
            out.append(text[m.start():close + 1].strip())
            pos = close + 1
            continue
        if tok:
            out.append(tok)
        pos = m.end()
    return out


def _fields(tokens: Sequence[str], pos: int, end: Optional[str]) -> Tuple[List[T.StructField], int]:
    fields = []
    while pos < len(tokens) and tokens[pos] != end:
        name = tokens[pos]
        if name.startswith("`"):
            name = name[1:-1].replace("``", "`")
        pos += 1
        if pos < len(tokens) and tokens[pos] == ":":
            pos += 1
        dtype, pos = _type(tokens, pos)
        while pos < len(tokens) and tokens[pos].lower() in ("not", "null", "comment") or (
            pos < len(tokens) and tokens[pos].startswith("'")
        ):
            pos += 1
        fields.append(T.StructField(name, dtype, True))
        if pos < len(tokens) and tokens[pos] == ",":
            pos += 1
    return fields, pos


def _type(tokens: Sequence[str], pos: int) -> Tuple[T.DataType, int]:
    if pos >= len(tokens):
        raise ValueError("schema ends where a type was expected")
    word = tokens[pos].lower()
    pos += 1
    if word in _NAMED:
        return _NAMED[word](), pos
    if word in ("decimal", "dec", "numeric"):
        precision, scale = 10, 0
        if pos < len(tokens) and tokens[pos] == "(":
            precision = int(tokens[pos + 1])
            pos += 2
            if tokens[pos] == ",":
                scale = int(tokens[pos + 1])
                pos += 2
            pos += 1  # ")"
        return T.DecimalType(precision, scale), pos
    if word in ("char", "varchar"):
        return T.StringType(), pos + 3 if pos < len(tokens) and tokens[pos] == "(" else pos
    if word == "array":
        element, pos = _type(tokens, pos + 1)
        return T.ArrayType(element, True), pos + 1
    if word == "map":
        key, pos = _type(tokens, pos + 1)
        value, pos = _type(tokens, pos + 1)
        return T.MapType(key, value, True), pos + 1
    if word == "struct":
        fields, pos = _fields(tokens, pos + 1, end=">")
        return T.StructType(fields), pos + 1
    raise ValueError(f"unknown type {word!r} in schema")


def describe(schema: Any) -> str:
    """A schema's one-line description for error messages."""
    return schema.simpleString() if hasattr(schema, "simpleString") else str(schema)
