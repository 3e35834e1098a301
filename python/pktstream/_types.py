"""The option types of the public API, as ``Literal`` types (checked by mypy, shown by IDEs).

Example:
    >>> from typing import get_args
    >>> from pktstream._types import AddressFormat, TimestampUnit
    >>> get_args(AddressFormat), get_args(TimestampUnit)
    (('string', 'binary'), ('s', 'ms', 'us', 'ns'))
"""

from __future__ import annotations

from typing import Literal

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
