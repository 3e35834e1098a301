"""Kafka fixtures: one broker for the session, uniquely named topics, private brokers for crash tests.

``tests/conftest.py`` imports them (``from kafka_fixtures import ...``).

The session broker is a durable Tansu (sqlite storage, ``scripts/install_tansu.sh``) started on a
free loopback port in a temporary directory. Set ``PKTSTREAM_TEST_BOOTSTRAP=host:port`` to run the
suite against a Kafka of your own instead (plaintext listener): the tests then create topics named
``pktstream-test-<test>-<random>`` there, never delete or write to any other topic, and leave
theirs behind. Crash tests (``restartable_broker``) always start a private local broker, because
they kill it.

A missing broker fails the Kafka tests with the install command: they never skip silently.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from pktstream.broker import Broker, BrokerError, create_topic

__all__ = [
    "EXTERNAL_ENV",
    "ExternalKafka",
    "bootstrap",
    "consumer_config",
    "kafka_broker",
    "restartable_broker",
    "topic_factory",
]

#: Names the external Kafka to test against, instead of a local Tansu.
EXTERNAL_ENV = "PKTSTREAM_TEST_BOOTSTRAP"


@dataclass(frozen=True)
class ExternalKafka:
    """The broker named by ``$PKTSTREAM_TEST_BOOTSTRAP`` (not started or stopped by the tests)."""

    bootstrap_servers: str
    durable: bool = True


def consumer_config(bootstrap_servers: str, group: str | None = None, **extra: object) -> dict[str, object]:
    """A confluent-kafka consumer config that reads a topic from the start, in a fresh group.

    ``session.timeout.ms`` is 6 s because Tansu makes a brand-new group wait about half of it
    before assigning partitions (librdkafka's default of 45 s would make that ~22 s).
    """
    config: dict[str, object] = {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group or f"pktstream-test-{uuid.uuid4().hex[:12]}",
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "enable.auto.commit": False,
    }
    config.update(extra)
    return config


def _private_broker(data_dir: Path) -> Broker:
    try:
        return Broker(data_dir=data_dir, storage="sqlite").start()
    except BrokerError as e:
        pytest.fail(f"the Kafka tests need a durable Tansu broker: {e}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker | ExternalKafka]:
    """The session's broker: ``$PKTSTREAM_TEST_BOOTSTRAP`` if set, else a local durable Tansu."""
    external = os.environ.get(EXTERNAL_ENV)
    if external:
        yield ExternalKafka(external)
        return
    broker = _private_broker(tmp_path_factory.mktemp("kafka-broker"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def bootstrap(kafka_broker: Broker | ExternalKafka) -> str:
    """``bootstrap.servers`` of the session's broker."""
    return kafka_broker.bootstrap_servers


@pytest.fixture
def topic_factory(bootstrap: str, request: pytest.FixtureRequest) -> Callable[..., str]:
    """``make(partitions=1) -> name``: creates a new, uniquely named topic on the session's broker."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:80].strip("-")

    def make(partitions: int = 1) -> str:
        name = f"pktstream-test-{stem}-{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, name, partitions)
        return name

    return make


@pytest.fixture
def restartable_broker(tmp_path: Path) -> Iterator[Broker]:
    """A private durable broker for this test alone, free to ``kill()`` and ``restart()``.

    Always local (even with ``$PKTSTREAM_TEST_BOOTSTRAP`` set): crash tests must own the process.
    """
    broker = _private_broker(tmp_path / "broker")
    try:
        yield broker
    finally:
        broker.stop()
