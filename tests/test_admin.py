"""pktstream.admin and ``pktstream topics`` / ``pktstream groups``: topics and consumer groups
through librdkafka's admin API, against the session's Apache Kafka (plaintext and SASL_SSL)."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

import pktstream
import pyarrow as pa
import pytest
from pktstream import admin
from pktstream.cli import main


def _name(what: str) -> str:
    return f"pktstream-test-admin-{what}-{uuid.uuid4().hex[:8]}"


def _eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Metadata catches up with a create or delete shortly after it returns."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _rows(n: int) -> pa.Table:
    return pa.table({"n": pa.array(range(n), pa.int64()), "k": [f"key-{i % 11}" for i in range(n)]})


def test_create_list_describe_delete(bootstrap: str) -> None:
    topic = _name("cycle")
    settings = {"retention.ms": 3_600_000, "compression.type": "zstd"}
    assert admin.create_topic(topic, partitions=3, bootstrap_servers=bootstrap, topic_config=settings)
    assert not admin.create_topic(topic, partitions=3, bootstrap_servers=bootstrap), "it exists now"
    assert topic in admin.list_topics(bootstrap_servers=bootstrap)
    assert "__consumer_offsets" not in admin.list_topics(bootstrap_servers=bootstrap)
    assert admin.topic_partitions(topic, bootstrap_servers=bootstrap) == 3

    report = pktstream.produce(_rows(90), topic, bootstrap_servers=bootstrap, key="k")
    assert report.delivered == 90
    d = admin.describe_topic(topic, bootstrap_servers=bootstrap)
    assert d.partitions["partition"].to_pylist() == [0, 1, 2]
    assert d.partition_count == 3 and d.replication_factor == 1
    assert all(leader >= 0 for leader in d.partitions["leader"].to_pylist())
    assert d.partitions["isr"].to_pylist() == d.partitions["replicas"].to_pylist()
    assert d.partitions["low"].to_pylist() == [0, 0, 0]
    assert d.messages == 90 == sum(d.partitions["high"].to_pylist())
    assert d.configs["retention.ms"] == "3600000" and d.configs["compression.type"] == "zstd"
    assert d.configs["cleanup.policy"] == "delete"
    assert d.overrides == {"retention.ms": "3600000", "compression.type": "zstd"}
    text = str(d)
    assert text.startswith(f"Topic: {topic}  PartitionCount: 3  ReplicationFactor: 1  Messages: 90")
    assert "compression.type=zstd" in text and "    Partition: 2  Leader: " in text

    assert admin.delete_topic(topic, bootstrap_servers=bootstrap)
    assert _eventually(lambda: topic not in admin.list_topics(bootstrap_servers=bootstrap))
    assert admin.topic_partitions(topic, bootstrap_servers=bootstrap) is None
    assert _eventually(lambda: admin.delete_topic(topic, bootstrap_servers=bootstrap) is False), "already gone"


def test_describing_a_missing_topic_raises_unknown_topic(bootstrap: str) -> None:
    with pytest.raises(pktstream.UnknownTopicError) as e:
        admin.describe_topic(_name("absent"), bootstrap_servers=bootstrap)
    assert isinstance(e.value, LookupError) and "does not exist" in str(e.value)
    with pytest.raises(pktstream.UnknownTopicError):
        admin.group_lag("anyone", topics=[_name("absent")], bootstrap_servers=bootstrap)


def test_an_unreachable_cluster_is_a_timeout() -> None:
    with pytest.raises(pktstream.KafkaTimeoutError, match="127.0.0.1:9"):
        admin.list_topics(bootstrap_servers="127.0.0.1:9", timeout=0.5)


def test_group_lag_after_a_consumer_commits_part_of_a_topic(bootstrap: str, topic_factory) -> None:
    topic = topic_factory(partitions=2)
    pktstream.produce(_rows(100), topic, bootstrap_servers=bootstrap, key="k")
    group = _name("group")
    read = pktstream.consume(topic, bootstrap_servers=bootstrap, group_id=group, max_rows=40, format="json",
                             schema=pa.schema({"n": pa.int64()}))
    assert read.num_rows == 40
    lag = admin.group_lag(group, bootstrap_servers=bootstrap)
    assert lag.schema == admin.LAG_SCHEMA
    rows = lag.to_pylist()
    assert [(r["topic"], r["partition"]) for r in rows] == [(topic, 0), (topic, 1)]
    ends = dict(zip(*[admin.describe_topic(topic, bootstrap_servers=bootstrap).partitions[c].to_pylist()
                      for c in ("partition", "high")]))
    for r in rows:
        assert r["end"] == ends[r["partition"]]
        committed = r["committed"] or 0
        assert r["lag"] == (r["end"] - committed if r["committed"] is not None else None)
    assert sum(r["committed"] or 0 for r in rows) == 40
    assert sum(r["end"] for r in rows) == 100
    unread = sum(r["lag"] if r["committed"] is not None else r["end"] for r in rows)
    assert unread == 60
    assert admin.group_lag(group, topics=[topic], bootstrap_servers=bootstrap).equals(lag)
    groups = {g.name: g for g in admin.list_groups(bootstrap_servers=bootstrap)}
    assert group in groups and groups[group].members == 0 and groups[group].protocol_type == "consumer"
    assert admin.group_lag(_name("never"), bootstrap_servers=bootstrap).num_rows == 0


def test_cli_topics_and_groups(bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    topic = _name("cli")
    b = ["-b", bootstrap]
    assert main(["topics", "--create", topic, "--partitions", "2", "--config", "retention.ms=60000", *b]) == 0
    assert f"Created topic {topic} (2 partitions)." in capsys.readouterr().out
    assert main(["topics", "--create", topic, "--partitions", "2", *b]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["topics", "--create", topic, "--partitions", "2", "--if-not-exists", *b]) == 0
    capsys.readouterr()
    assert main(["topics", *b]) == 0
    assert topic in capsys.readouterr().out.splitlines()
    assert main(["topics", "--list", "--internal", *b]) == 0
    assert "__consumer_offsets" in capsys.readouterr().out.splitlines()

    pktstream.produce(_rows(10), topic, bootstrap_servers=bootstrap, key="k")
    assert main(["topics", "--describe", topic, *b]) == 0
    out = capsys.readouterr().out
    assert f"Topic: {topic}  PartitionCount: 2" in out and "Messages: 10" in out and "retention.ms=60000" in out

    group = _name("cli-group")
    pktstream.consume(topic, bootstrap_servers=bootstrap, group_id=group, max_rows=4, format="binary")
    assert main(["groups", *b]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["GROUP", "STATE", "MEMBERS"] and group in out
    assert main(["groups", "--describe", group, *b]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"]
    assert len(lines) == 3 and all(line.split()[:2] == [group, topic] for line in lines[1:])
    assert sum(int(line.split()[-1]) for line in lines[1:] if line.split()[-1] != "-") <= 6
    assert main(["groups", "--describe", _name("nobody"), *b]) == 1

    assert main(["topics", "--delete", topic, *b]) == 0
    assert f"Deleted topic {topic}." in capsys.readouterr().out
    assert main(["topics", "--create", topic, *b]) == 2
    assert "--partitions" in capsys.readouterr().err


def test_cli_rejects_bad_config_without_echoing_values(bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topics", "-b", bootstrap, "-X", "no.such.key=Secret-1", "-X", "sasl.password=Secret-2"]) == 2
    err = capsys.readouterr().err
    assert "no.such.key" in err and "Secret-1" not in err and "Secret-2" not in err


def test_admin_over_sasl_ssl(secure_kafka) -> None:
    conf = secure_kafka.client_config("SASL_SSL")  # bootstrap.servers included
    topic = _name("secure")
    assert admin.create_topic(topic, partitions=2, config=conf)
    assert topic in admin.list_topics(config=conf)
    pktstream.produce(_rows(20), topic, bootstrap_servers=conf["bootstrap.servers"], config=conf, key="k")
    assert admin.describe_topic(topic, config=conf).messages == 20
    group = _name("secure-group")
    pktstream.consume(topic, bootstrap_servers=conf["bootstrap.servers"], config=conf, group_id=group,
                      max_rows=5, format="binary")
    lag = admin.group_lag(group, config=conf)
    assert sum(lag["committed"].fill_null(0).to_pylist()) == 5
    assert pa.compute.sum(lag["end"]).as_py() == 20
    assert group in [g.name for g in admin.list_groups(config=conf)]
    assert admin.delete_topic(topic, config=conf)


def test_cli_over_sasl_ssl_never_echoes_the_password(secure_kafka, capsys: pytest.CaptureFixture[str]) -> None:
    conf = secure_kafka.client_config("SASL_SSL")
    servers = conf.pop("bootstrap.servers")
    x = [a for k, v in conf.items() for a in ("-X", f"{k}={v}")]
    topic = _name("secure-cli")
    assert main(["topics", "--create", topic, "--partitions", "1", "-b", servers, *x]) == 0
    assert main(["topics", "--describe", topic, "-b", servers, *x]) == 0
    out = capsys.readouterr()
    assert f"Topic: {topic}" in out.out
    assert conf["sasl.password"] not in out.out + out.err
    conf["sasl.password"] = "Wrong-admin-secret-9"
    x = [a for k, v in conf.items() for a in ("-X", f"{k}={v}")]
    assert main(["topics", "--list", "-b", servers, "--timeout", "3", *x]) == 2
    out = capsys.readouterr()
    assert "Wrong-admin-secret-9" not in out.out + out.err
