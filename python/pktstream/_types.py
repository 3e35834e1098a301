"""The option types of the public API, as ``Literal`` types (checked by mypy, shown by IDEs).

Example:
    >>> from typing import get_args
    >>> from pktstream._types import AddressFormat, TimestampUnit
    >>> get_args(AddressFormat), get_args(TimestampUnit)
    (('string', 'binary'), ('s', 'ms', 'us', 'ns'))
"""

from __future__ import annotations

from typing import Literal, Optional, Protocol, Tuple

#: How addresses are returned: dotted/RFC 5952 text, or 4/16 raw bytes.
AddressFormat = Literal["string", "binary"]
#: The unit of timestamp keys (Apache Metron's layout).
TimestampUnit = Literal["s", "ms", "us", "ns"]
#: What a producer writes into each message.
ProduceFormat = Literal["json", "csv", "raw", "arrow"]
#: How a consumer decodes each message.
ConsumeFormat = Literal["json", "raw", "arrow", "binary"]
#: The formats :func:`pktstream.decode_values` (and Spark's ``decode``) read: a consumer's, and CSV.
DecodeFormat = Literal["json", "csv", "raw", "arrow", "binary"]
#: The distance metrics, by their scipy names.
Metric = Literal["euclidean", "sqeuclidean", "cityblock", "chebyshev", "cosine"]


# The Arrow PyCapsule interface (https://arrow.apache.org/docs/format/CDataInterface/PyCapsuleInterface.html):
# what the native module accepts wherever it takes Arrow data, from pyarrow, polars, arro3, nanoarrow,
# DuckDB... without depending on any of them (the names are arro3's).


class ArrowSchemaExportable(Protocol):
    """An Arrow schema or field (``pyarrow.Schema``, ``pyarrow.Field``, ...)."""

    def __arrow_c_schema__(self) -> object: ...


class ArrowArrayExportable(Protocol):
    """An Arrow array or record batch (``pyarrow.Array``, ``pyarrow.RecordBatch``, ...)."""

    def __arrow_c_array__(self, requested_schema: Optional[object] = None) -> Tuple[object, object]: ...


class ArrowStreamExportable(Protocol):
    """A stream of Arrow record batches (``pyarrow.Table``, ``pyarrow.RecordBatchReader``,
    ``polars.DataFrame``, pktstream's readers, ...)."""

    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...
