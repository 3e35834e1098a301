"""pktstream.broker.ApacheKafka: the broker of the test suite and ``pktstream broker --kafka``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pktstream
import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka_fixtures import consumer_config
from pktstream.broker import ApacheKafka, KafkaServerError, find_kafka
from test_broker import _consume, _produce, _refuses  # the same helpers as the Tansu tests


def test_session_broker_has_three_listeners(secure_kafka: ApacheKafka) -> None:
    k = secure_kafka
    assert k.running and k.durable and k.startup_seconds is not None
    assert set(k.ports) == {"CONTROLLER", "PLAINTEXT", "SSL", "SASL_SSL"}
    assert k.version.startswith("4.") and k.version in repr(k)
    conf = k.client_config("SASL_SSL")
    assert conf["security.protocol"] == "SASL_SSL" and Path(conf["ssl.ca.location"]).is_file()
    assert "Kafka Server started" in (k.data_dir / "server.log").read_text()
    # The users file holds the passwords; only its owner may read it.
    assert (k.data_dir / "users").stat().st_mode & 0o077 == 0


def test_stop_kill_restart_keep_data_and_committed_offsets(restartable_broker: ApacheKafka) -> None:
    b = restartable_broker
    bs = b.bootstrap_servers
    pktstream.create_topic("crash", partitions=3, bootstrap_servers=bs)
    sent = _produce(bs, "crash", 1000)
    group = "survivor"
    consumer = Consumer(consumer_config(bs, group))
    consumer.commit(offsets=[TopicPartition("crash", 0, 7)], asynchronous=False)
    consumer.close()
    pid = b.pid
    b.kill()  # SIGKILL: no chance to flush anything on the way out
    assert not b.running and b.pid is None and _refuses(bs)
    b.restart()
    assert b.running and b.pid != pid
    got = _consume(bs, "crash", 1000)
    assert len(got) == 1000 and sorted(got) == sorted(sent)
    consumer = Consumer(consumer_config(bs, group))
    try:
        (tp,) = consumer.committed([TopicPartition("crash", 0)], timeout=10)
    finally:
        consumer.close()
    assert tp.offset == 7
    b.stop()  # controlled shutdown
    assert not b.running and _refuses(bs)


def test_missing_install_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PKTSTREAM_KAFKA_LIBS", raising=False)
    monkeypatch.setenv("PKTSTREAM_CACHE", str(tmp_path))
    with pytest.raises(KafkaServerError, match="bash scripts/install_kafka.sh") as e:
        find_kafka()
    assert isinstance(e.value, pktstream.PktstreamError)
    monkeypatch.setenv("PKTSTREAM_KAFKA_LIBS", str(tmp_path))
    with pytest.raises(KafkaServerError, match="holds no kafka_2.13"):
        ApacheKafka()


def test_cli_broker_kafka_prints_listeners_and_stops_on_sigint(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "pktstream.cli", "broker", "--kafka", "--port", str(port),
            "--data-dir", str(tmp_path / "kafka"), "--topic", "t:3"]
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
    try:
        assert ready.wait(150) and proc.poll() is None, "".join(lines)
        out = "".join(lines)
        assert f"PLAINTEXT 127.0.0.1:{port}" in out and "SASL_SSL" in out and "topic t (3 partitions)" in out
        assert "pktstream-secret" not in out  # passwords are in the users file, never printed
        bs = f"127.0.0.1:{port}"
        report = pktstream.produce(__import__("pyarrow").table({"a": [1, 2, 3]}), "t", bootstrap_servers=bs)
        assert report.delivered == 3
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, "".join(lines)
    assert _refuses(f"127.0.0.1:{port}")
