"""The pktstream exception hierarchy.

Every error pktstream raises on purpose derives from :class:`PktstreamError`, and also from the
built-in type whose meaning matches (a corrupt capture is a ``ValueError``), so both
``except pktstream.PktstreamError`` and ``except ValueError`` work. A missing file raises the
built-in ``FileNotFoundError``.

Example:
    >>> import pktstream
    >>> try:
    ...     pktstream.read_pcap(__file__)
    ... except pktstream.FormatError as e:
    ...     print(e.offset)
    0
"""

from __future__ import annotations

from typing import Optional

__all__ = ["PktstreamError", "FormatError", "CaptureWarning", "TruncatedCaptureWarning"]


class PktstreamError(Exception):
    """Base class of every pktstream error."""


class FormatError(PktstreamError, ValueError):
    """The file is not a capture, or its structure is corrupt.

    Attributes:
        path: The file.
        offset: Byte offset of the problem (in decompressed bytes for gzip input).
        record: 1-based number of the packet record where it was found, if known.
    """

    def __init__(
        self,
        message: str,
        path: Optional[str] = None,
        offset: Optional[int] = None,
        record: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset
        self.record = record


class CaptureWarning(UserWarning):
    """Base class of pktstream's warnings about capture files."""


class TruncatedCaptureWarning(CaptureWarning):
    """The capture ended early (cut short, or corrupt after some packets).

    Every packet before the problem was delivered; pass ``strict=True`` to raise
    :class:`FormatError` instead.
    """
