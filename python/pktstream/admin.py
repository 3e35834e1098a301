"""Topics and consumer groups: what ``kafka-topics`` and ``kafka-consumer-groups`` show, from Python.

Every call goes through librdkafka (the client pktstream produces and consumes with), so it takes
the same ``config`` dict of librdkafka keys and works over TLS and SASL wherever producing does. A
``bootstrap.servers`` entry in ``config`` wins over the ``bootstrap_servers`` argument.

Example:
    >>> from pktstream import admin
    >>> servers = "127.0.0.1:9092"
    >>> admin.create_topic("flows", partitions=3, bootstrap_servers=servers)  # doctest: +SKIP
    True
    >>> "flows" in admin.list_topics(bootstrap_servers=servers)  # doctest: +SKIP
    True
    >>> print(admin.describe_topic("flows", bootstrap_servers=servers))  # doctest: +SKIP
    Topic: flows  PartitionCount: 3  ReplicationFactor: 1  Messages: 0
        Partition: 0  Leader: 1  Replicas: 1  Isr: 1  Offsets: 0..0
        ...
    >>> admin.group_lag("analytics", bootstrap_servers=servers).to_pylist()[0]  # doctest: +SKIP
    {'topic': 'flows', 'partition': 0, 'committed': 40, 'end': 100, 'lag': 60}

Command line: ``pktstream topics --list | --describe T | --create T --partitions N | --delete T``
and ``pktstream groups --list | --describe G`` (both take ``-b`` and ``-X key=value``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pyarrow as pa

from . import _native
from ._kafka import DEFAULT_BOOTSTRAP, Config, _config, create_topic

__all__ = [
    "GroupInfo",
    "TopicDescription",
    "create_topic",
    "delete_topic",
    "describe_topic",
    "group_lag",
    "list_groups",
    "list_topics",
    "topic_partitions",
]

#: The schema of :func:`group_lag`'s table.
LAG_SCHEMA = pa.schema(
    [
        pa.field("topic", pa.string(), nullable=False),
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("committed", pa.int64()),
        pa.field("end", pa.int64(), nullable=False),
        pa.field("lag", pa.int64()),
    ]
)

#: The schema of :attr:`TopicDescription.partitions`.
PARTITION_SCHEMA = pa.schema(
    [
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("leader", pa.int32(), nullable=False),
        pa.field("replicas", pa.list_(pa.int32()), nullable=False),
        pa.field("isr", pa.list_(pa.int32()), nullable=False),
        pa.field("low", pa.int64(), nullable=False),
        pa.field("high", pa.int64(), nullable=False),
    ]
)


def list_topics(
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    config: Config = None,
    internal: bool = False,
    timeout: float = 10.0,
) -> list[str]:
    """The cluster's topic names, sorted (``kafka-topics --list``).

    Args:
        bootstrap_servers: ``host:port[,...]``.
        config: librdkafka settings (``security.protocol``, ``sasl.*``, ``ssl.*``, ...).
        internal: Include internal topics such as ``__consumer_offsets``.
        timeout: Seconds to wait for the cluster.

    Raises:
        pktstream.KafkaTimeoutError: No broker answered.

    Example:
        >>> list_topics(bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        ['flows', 'packets']
    """
    names = _native.list_topics(bootstrap_servers=bootstrap_servers, config=_config(config), timeout=timeout)
    return [name for name, _ in names if internal or not name.startswith("__")]


def topic_partitions(
    topic: str, *, bootstrap_servers: str = DEFAULT_BOOTSTRAP, config: Config = None, timeout: float = 10.0
) -> Optional[int]:
    """The number of partitions of ``topic``, or None if it does not exist.

    Example:
        >>> topic_partitions("flows", bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        3
    """
    found = _native.list_topics(bootstrap_servers=bootstrap_servers, config=_config(config), topic=topic,
                                timeout=timeout)
    return next((n for name, n in found if name == topic), None)


@dataclass(frozen=True)
class TopicDescription:
    """A topic's partitions and configuration (``kafka-topics --describe``).

    Attributes:
        name: The topic.
        partitions: One row per partition: ``partition``, ``leader`` (broker id; -1 without one),
            ``replicas``, ``isr`` (in-sync replicas), ``low`` and ``high`` (the first stored
            offset and the end offset: ``high - low`` messages are stored).
        configs: Every topic setting (``retention.ms``, ``compression.type``, ...); sensitive
            values are None.
        overrides: The settings made on this topic (what ``kafka-topics --describe`` lists as
            ``Configs``), as opposed to the broker's configuration and defaults.
    """

    name: str
    partitions: pa.Table
    configs: dict[str, Optional[str]] = field(default_factory=dict)
    overrides: dict[str, Optional[str]] = field(default_factory=dict)

    @property
    def partition_count(self) -> int:
        return self.partitions.num_rows

    @property
    def replication_factor(self) -> int:
        replicas = self.partitions["replicas"].to_pylist()
        return len(replicas[0]) if replicas else 0

    @property
    def messages(self) -> int:
        """Messages stored now (sum of ``high - low``)."""
        return sum(h - lo for lo, h in zip(self.partitions["low"].to_pylist(), self.partitions["high"].to_pylist()))

    def __str__(self) -> str:
        overrides = ",".join(f"{k}={v}" for k, v in sorted(self.overrides.items()))
        lines = [
            f"Topic: {self.name}  PartitionCount: {self.partition_count}  "
            f"ReplicationFactor: {self.replication_factor}  Messages: {self.messages}"
            + (f"  Configs: {overrides}" if overrides else "")
        ]
        for p in self.partitions.to_pylist():
            lines.append(
                f"    Partition: {p['partition']}  Leader: {p['leader']}  "
                f"Replicas: {','.join(map(str, p['replicas']))}  Isr: {','.join(map(str, p['isr']))}  "
                f"Offsets: {p['low']}..{p['high']}"
            )
        return "\n".join(lines)


def describe_topic(
    topic: str, *, bootstrap_servers: str = DEFAULT_BOOTSTRAP, config: Config = None, timeout: float = 10.0
) -> TopicDescription:
    """Partitions (leader, replicas, in-sync replicas, low and high watermarks) and configuration.

    Raises:
        pktstream.UnknownTopicError: The topic does not exist.
        pktstream.KafkaTimeoutError: No broker answered.

    Example:
        >>> d = describe_topic("flows", bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        >>> d.partition_count, d.configs["cleanup.policy"], d.messages  # doctest: +SKIP
        (3, 'delete', 600)
    """
    partitions, configs = _native.describe_topic(
        topic, bootstrap_servers=bootstrap_servers, config=_config(config), timeout=timeout
    )
    table = pa.Table.from_pylist(
        [dict(zip(PARTITION_SCHEMA.names, p)) for p in partitions], schema=PARTITION_SCHEMA
    )
    return TopicDescription(
        name=topic,
        partitions=table,
        configs={name: value for name, value, _, _ in configs},
        overrides={name: value for name, value, source, _ in configs if source == "topic"},
    )


def delete_topic(
    topic: str, *, bootstrap_servers: str = DEFAULT_BOOTSTRAP, config: Config = None, timeout: float = 10.0
) -> bool:
    """Deletes a topic and its messages; returns ``False`` if it did not exist.

    Example:
        >>> delete_topic("flows", bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        True
    """
    return bool(
        _native.delete_topic(topic, bootstrap_servers=bootstrap_servers, config=_config(config), timeout=timeout)
    )


@dataclass(frozen=True)
class GroupInfo:
    """A consumer group as the cluster lists it.

    Attributes:
        name: The group id.
        state: ``"Stable"``, ``"Empty"`` (no members; offsets kept), ``"PreparingRebalance"``, ...
        protocol_type: ``"consumer"`` for Kafka consumers.
        members: Members now.
    """

    name: str
    state: str
    protocol_type: str
    members: int


def list_groups(
    *, bootstrap_servers: str = DEFAULT_BOOTSTRAP, config: Config = None, timeout: float = 10.0
) -> list[GroupInfo]:
    """The cluster's consumer groups, by name (``kafka-consumer-groups --list``).

    Example:
        >>> [g.name for g in list_groups(bootstrap_servers="127.0.0.1:9092")]  # doctest: +SKIP
        ['analytics']
    """
    groups = _native.list_groups(bootstrap_servers=bootstrap_servers, config=_config(config), timeout=timeout)
    return [GroupInfo(*g) for g in groups]


def group_lag(
    group: str,
    *,
    topics: Optional[Sequence[str]] = None,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP,
    config: Config = None,
    timeout: float = 10.0,
) -> pa.Table:
    """How far behind ``group`` is (``kafka-consumer-groups --describe --group``).

    Args:
        group: The consumer group id. Its offsets are read without joining it.
        topics: The topics to report (every partition of each); None: the topics the group has
            committed offsets on.

    Returns:
        One row per partition: ``topic``, ``partition``, ``committed`` (the next offset the group
        reads; null where it never committed), ``end`` (the offset the next message gets) and
        ``lag`` (``end - committed``; null without a commit).

    Raises:
        pktstream.UnknownTopicError: One of ``topics`` does not exist.

    Example:
        >>> lag = group_lag("analytics", bootstrap_servers="127.0.0.1:9092")  # doctest: +SKIP
        >>> pa.compute.sum(lag["lag"]).as_py()  # doctest: +SKIP
        60
    """
    rows = _native.group_offsets(
        group,
        bootstrap_servers=bootstrap_servers,
        topics=list(topics) if topics is not None else None,
        config=_config(config),
        timeout=timeout,
    )
    out: list[Mapping[str, Any]] = [
        {
            "topic": topic,
            "partition": partition,
            "committed": committed,
            "end": high,
            "lag": None if committed is None else max(0, high - max(committed, low)),
        }
        for topic, partition, committed, low, high in rows
    ]
    return pa.Table.from_pylist(out, schema=LAG_SCHEMA)
