"""The versions and features of this build of pktstream and of the C libraries inside it."""

from __future__ import annotations

from typing import Dict, List, Optional, Union

from . import _native

__all__ = ["build_info", "version_text"]


def build_info() -> Dict[str, Union[str, List[str], None]]:
    """pktstream's version and the versions and features of the libraries linked into it.

    ``librdkafka_features`` is librdkafka's ``builtin.features``: the codecs and the TLS and SASL
    mechanisms this build can use. ``libpcap`` is None in a build without live capture.

    Example:
        >>> import pktstream
        >>> info = pktstream.build_info()
        >>> info["version"] == pktstream.__version__
        True
        >>> "ssl" in info["librdkafka_features"] and "zstd" in info["librdkafka_features"]
        True
    """
    return dict(_native.build_info())


def version_text() -> str:
    """The text of ``pktstream --version``: one line per component."""
    info = build_info()
    features = info["librdkafka_features"] or []
    pcap: Optional[str] = info["libpcap"]  # type: ignore[assignment]
    return "\n".join(
        [
            f"pktstream {info['version']}",
            f"librdkafka {info['librdkafka']} ({','.join(features)})",  # type: ignore[arg-type]
            pcap if pcap else "libpcap: not built in (no live capture)",
        ]
    )
