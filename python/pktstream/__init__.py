"""pktstream: network packets into Apache Arrow, fast.

Example:
    >>> import pktstream
    >>> table = pktstream.read_pcap("tests/data/sample.pcap")
    >>> table.num_rows > 0
    True
"""

from . import distance
from ._native import __version__
from ._reader import PacketReader, iter_batches, read_pcap, schema
from .exceptions import CaptureWarning, FormatError, PktstreamError, TruncatedCaptureWarning

__all__ = [
    "__version__",
    "read_pcap",
    "iter_batches",
    "schema",
    "PacketReader",
    "distance",
    "PktstreamError",
    "FormatError",
    "CaptureWarning",
    "TruncatedCaptureWarning",
]
