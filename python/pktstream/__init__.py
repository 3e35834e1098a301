"""pktstream: network packets into Apache Arrow, fast.

Example:
    >>> import pktstream
    >>> table = pktstream.read_pcap("tests/data/sample.pcap")
    >>> table.num_rows > 0
    True
"""

from typing import Any

from ._build import build_info
from ._flows import (
    FlowMeter,
    FlowProduceReport,
    FlowReader,
    flow_schema,
    flows,
    iter_flows,
    produce_flows,
    suricata_events,
)
from ._kafka import Consumer, ProduceReport, consume, create_topic, decode_values, produce, produce_pcap
from ._live import LiveProduceReport, LiveReader, capture, produce_live
from ._native import __version__
from ._reader import PacketReader, iter_batches, read_pcap, schema
from ._sink import PcapWriter, write_pcap
from .exceptions import (
    CaptureError,
    CaptureWarning,
    DeliveryError,
    FormatError,
    KafkaAuthenticationError,
    KafkaConfigError,
    KafkaError,
    KafkaSSLError,
    KafkaTimeoutError,
    PktstreamError,
    TruncatedCaptureWarning,
    UnknownTopicError,
)


def __getattr__(name: str) -> Any:
    # `pktstream.distance` pulls in numpy (~0.2 s); importing it on first use keeps `import
    # pktstream` quick, which every Spark Python worker pays once per query.
    if name == "distance":
        import importlib

        module = importlib.import_module(".distance", __name__)
        globals()["distance"] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "build_info",
    "read_pcap",
    "iter_batches",
    "schema",
    "PacketReader",
    "PcapWriter",
    "write_pcap",
    "flows",
    "iter_flows",
    "flow_schema",
    "FlowReader",
    "FlowMeter",
    "produce_flows",
    "FlowProduceReport",
    "suricata_events",
    "capture", "produce_live", "LiveReader", "LiveProduceReport", "CaptureError",
    "produce_pcap",
    "produce",
    "create_topic",
    "Consumer",
    "consume",
    "decode_values",
    "ProduceReport",
    "distance",
    "PktstreamError",
    "FormatError",
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
