"""Kafka fixtures: one Apache Kafka for the session, uniquely named topics, private brokers for
crash tests.

``tests/conftest.py`` imports them (``from kafka_fixtures import ...``).

The session broker is Apache Kafka (``scripts/install_kafka.sh``; :class:`pktstream.broker.ApacheKafka`):
one KRaft broker+controller on free loopback ports, in a temporary directory, with three
listeners: PLAINTEXT, SSL (a CA and server certificate made for the run) and SASL_SSL (SCRAM
users made at format time). Its start-up time is printed.

Set ``PKTSTREAM_TEST_BOOTSTRAP=host:port`` to run the suite against a Kafka of your own instead
(plaintext listener): the tests then create topics named ``pktstream-test-<test>-<random>`` there,
never delete or write to any other topic, and leave theirs behind. The TLS/SASL tests
(``secure_kafka``) and crash tests (``restartable_broker``) always start a private local Apache
Kafka, because they need its certificates and users, or kill it.

A missing Kafka install fails the Kafka tests with the install command: they never skip silently.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pktstream
import pytest
from pktstream.broker import ApacheKafka

__all__ = [
    "EXTERNAL_ENV",
    "ExternalKafka",
    "bootstrap",
    "consumer_config",
    "kafka_broker",
    "restartable_broker",
    "secure_kafka",
    "topic_factory",
]

#: Names the external Kafka to test against, instead of the local Apache Kafka.
EXTERNAL_ENV = "PKTSTREAM_TEST_BOOTSTRAP"


@dataclass(frozen=True)
class ExternalKafka:
    """The broker named by ``$PKTSTREAM_TEST_BOOTSTRAP`` (not started or stopped by the tests)."""

    bootstrap_servers: str
    durable: bool = True


def consumer_config(bootstrap_servers: str, group: Optional[str] = None, **extra: object) -> dict[str, object]:
    """A confluent-kafka consumer config that reads a topic from the start, in a fresh group."""
    config: dict[str, object] = {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group or f"pktstream-test-{uuid.uuid4().hex[:12]}",
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "enable.auto.commit": False,
    }
    config.update(extra)
    return config


def _start(data_dir: Path, *, security: bool) -> ApacheKafka:
    try:
        kafka = ApacheKafka(data_dir, security=security).start()
    except pktstream.PktstreamError as e:
        pytest.fail(f"the Kafka tests need Apache Kafka: {e}", pytrace=False)
    print(
        f"\nApache Kafka {kafka.version} started in {kafka.startup_seconds:.1f} s at {kafka.bootstrap_servers}",
        file=sys.stderr,
    )
    return kafka


class RawKey(str):
    """A header key whose bytes on the wire are ``raw``, UTF-8 or not.

    kafka-python writes a header key as ``key.encode("utf-8")``; this ``str`` answers with its
    raw bytes. (confluent-kafka cannot send such keys: it turns a ``bytes`` key into its ``repr``
    and crashes on a ``str`` of lone surrogates.)
    """

    raw: bytes

    def __new__(cls, raw: bytes) -> "RawKey":
        k = super().__new__(cls, raw.decode("latin-1"))
        k.raw = raw
        return k

    def encode(self, *args: object, **kwargs: object) -> bytes:  # type: ignore[override]
        return self.raw


def produce_timed(bootstrap: str, topic: str, partition: int, times: Sequence[int],
                  headers: Optional[list] = None, values: Optional[Sequence[bytes]] = None) -> None:
    """Messages with these Kafka timestamps (ms) and headers, through kafka-python (pktstream's
    producer sets neither); values default to ``b"<partition>:<i>"``."""
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for i, ts in enumerate(times):
            p.send(topic, value=values[i] if values is not None else f"{partition}:{i}".encode(), partition=partition, timestamp_ms=ts,
                   headers=headers if headers is not None else [])
        p.flush(30)
    finally:
        p.close()


@pytest.fixture(scope="session")
def _local_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """The session's own Apache Kafka with PLAINTEXT, SSL and SASL_SSL listeners (started on first use)."""
    kafka = _start(tmp_path_factory.mktemp("apache-kafka"), security=True)
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest) -> ApacheKafka | ExternalKafka:
    """The session's broker: ``$PKTSTREAM_TEST_BOOTSTRAP`` if set, else the local Apache Kafka."""
    external = os.environ.get(EXTERNAL_ENV)
    if external:
        return ExternalKafka(external)
    return request.getfixturevalue("_local_kafka")


@pytest.fixture(scope="session")
def secure_kafka(_local_kafka: ApacheKafka) -> ApacheKafka:
    """A local Apache Kafka with SSL and SASL_SSL listeners: ``client_config("SSL")`` etc."""
    return _local_kafka


@pytest.fixture(scope="session")
def bootstrap(kafka_broker: ApacheKafka | ExternalKafka) -> str:
    """``bootstrap.servers`` of the session's broker."""
    return kafka_broker.bootstrap_servers


@pytest.fixture
def topic_factory(bootstrap: str, request: pytest.FixtureRequest) -> Callable[..., str]:
    """``make(partitions=1, config=None) -> name``: a new, uniquely named topic on the session's broker."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:80].strip("-")

    def make(partitions: int = 1) -> str:
        name = f"pktstream-test-{stem}-{uuid.uuid4().hex[:8]}"
        pktstream.create_topic(name, partitions=partitions, bootstrap_servers=bootstrap)
        return name

    return make


@pytest.fixture
def restartable_broker(tmp_path: Path) -> Iterator[ApacheKafka]:
    """A private Apache Kafka for this test alone, free to ``kill()`` and ``restart()``.

    Always local (even with ``$PKTSTREAM_TEST_BOOTSTRAP`` set): crash tests must own the process.
    """
    kafka = _start(tmp_path / "kafka", security=False)
    try:
        yield kafka
    finally:
        kafka.stop()
