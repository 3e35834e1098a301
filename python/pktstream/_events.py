"""The netflow event layout: what the distance pipeline decodes, what ``suricata_events`` and
``produce_flows(layout="suricata")`` write, and what :mod:`pktstream.testing.netflow` generates.

Defined once here (not in the pipeline, which imports numpy, nor in the test tooling) so that
``import pktstream`` stays light and every producer and consumer of the events agrees on it.

Example:
    >>> from pktstream._events import NETFLOW_SCHEMA
    >>> NETFLOW_SCHEMA.field("@timestamp").type
    TimestampType(timestamp[us, tz=UTC])
"""

import pyarrow as pa

__all__ = ["NETFLOW_SCHEMA"]

#: The netflow event columns and types.
NETFLOW_SCHEMA = pa.schema(
    [
        ("eventid", pa.string()),
        ("src_ip4", pa.string()),
        ("dst_ip4", pa.string()),
        ("dst_port", pa.int32()),
        ("src_port", pa.int32()),
        ("duration", pa.float64()),
        ("in_bytes", pa.int64()),
        ("in_packets", pa.int64()),
        ("out_bytes", pa.int64()),
        ("out_packets", pa.int64()),
        ("@timestamp", pa.timestamp("us", tz="UTC")),
    ]
)
