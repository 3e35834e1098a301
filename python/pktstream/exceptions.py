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

import errno
from typing import Any, Optional

__all__ = [
    "PktstreamError",
    "FormatError",
    "CaptureError",
    "CaptureWarning",
    "TruncatedCaptureWarning",
    "KafkaError",
    "KafkaConfigError",
    "KafkaTimeoutError",
    "KafkaSSLError",
    "KafkaAuthenticationError",
    "UnknownTopicError",
    "DeliveryError",
]


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


class CaptureError(PktstreamError, OSError):
    """A live capture could not start or failed; the message is libpcap's.

    Attributes:
        interface: The interface.
        kind: ``"no_such_device"``, ``"permission"`` (capturing needs root or the ``CAP_NET_RAW``
            capability), ``"filter"`` (the BPF expression does not compile) or ``"other"``.

    Example:
        >>> e = CaptureError("no such interface", "eth9", "no_such_device")
        >>> (e.interface, e.kind, e.errno == errno.ENODEV)
        ('eth9', 'no_such_device', True)
    """

    def __init__(self, message: str, interface: Optional[str] = None, kind: str = "other") -> None:
        super().__init__(message)
        self.interface = interface
        self.kind = kind
        self.errno = {"no_such_device": errno.ENODEV, "permission": errno.EPERM}.get(kind)  # type: ignore[assignment]

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CaptureWarning(UserWarning):
    """Base class of pktstream's warnings about capture files."""


class TruncatedCaptureWarning(CaptureWarning):
    """The capture ended early (cut short, or corrupt after some packets).

    Every packet before the problem was delivered; pass ``strict=True`` to raise
    :class:`FormatError` instead.
    """


class KafkaError(PktstreamError):
    """An error from Kafka (librdkafka or the broker).

    Attributes:
        code: librdkafka's error name, e.g. ``"MSG_SIZE_TOO_LARGE"`` or ``"UNKNOWN_TOPIC_OR_PART"``
            (the names confluent-kafka's ``KafkaError`` constants use).
        retriable: Whether trying again later may succeed (the broker was briefly unavailable).
        fatal: Whether the client is unusable (e.g. the idempotent producer lost its guarantees).
        report: For produce calls, the :class:`pktstream.ProduceReport` of what was delivered.

    Example:
        >>> e = KafkaError("delivery failed", "MSG_SIZE_TOO_LARGE", False, False)
        >>> (e.code, e.retriable, e.fatal)
        ('MSG_SIZE_TOO_LARGE', False, False)
    """

    def __init__(self, message: str, code: str = "FAIL", retriable: bool = False, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retriable = retriable
        self.fatal = fatal
        self.report: Any = None


class KafkaConfigError(KafkaError, ValueError):
    """A configuration key or value librdkafka rejects (the value is never shown: it may be a secret)."""


class KafkaTimeoutError(KafkaError, TimeoutError):
    """No broker answered in time: it is unreachable or down."""


class KafkaSSLError(KafkaError, ConnectionError):
    """The TLS handshake with a broker failed: its certificate is not signed by a trusted CA
    (``ssl.ca.location``), does not name the host connected to, or the listener does not speak TLS.
    ``code`` is ``"SSL"``; the message is OpenSSL's reason, as librdkafka reported it."""


class KafkaAuthenticationError(KafkaError, PermissionError):
    """The broker refused the SASL login: wrong user or password, or a mechanism it does not enable.
    ``code`` is ``"AUTHENTICATION"`` (or the broker's ``"SASL_AUTHENTICATION_FAILED"``); no secret
    is ever part of the message."""


class UnknownTopicError(KafkaError, LookupError):
    """The topic does not exist (create it with :func:`pktstream.create_topic`)."""


class DeliveryError(KafkaError):
    """Some messages could not be delivered; ``report`` says how many and ``code`` why (first error)."""
