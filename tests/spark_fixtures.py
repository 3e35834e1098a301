"""Spark fixtures: one local session for the whole test run.

``tests/conftest.py`` imports them (``from spark_fixtures import spark``). The session is
``local[2]`` on the loopback interface (``pktstream.spark.local_session``), started once (10-25 s)
and stopped at the end of the run. Each test uses its own checkpoint directories and topics.

The session carries Spark's Kafka connector and the PostgreSQL JDBC driver (``spark.jars``, from
``scripts/install_spark_kafka.sh``'s cache) so tests can compare pktstream with what users run:
``format("kafka")`` and ``format("jdbc")``. A missing connector fails with the install command.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["spark"]


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The session's SparkSession, with the ``pktstream`` and ``pcap`` data sources registered."""
    from pktstream.spark import local_session

    try:
        session = local_session("pktstream-tests", kafka_connector=True)
    except FileNotFoundError as e:
        pytest.fail(f"the Spark tests need Spark's Kafka connector: {e}", pytrace=False)
    try:
        yield session
    finally:
        for q in session.streams.active:
            q.stop()
        session.stop()
