"""Secured clusters: TLS and SASL_SSL (SCRAM, PLAIN) against the session's Apache Kafka.

The fixture's SSL listener presents a server certificate for ``IP:127.0.0.1`` signed by a CA made
for the run; its SASL_SSL listener takes SCRAM-SHA-512/256 and PLAIN users made at format time.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pktstream
import pyarrow as pa
import pytest
from pktstream.broker import make_ca
from pktstream.testing import synth

COLUMNS = ["frame_number", "src_ip", "dst_ip", "ip_proto"]


def _topic(kafka, partitions: int = 2) -> str:
    name = f"pktstream-test-secure-{uuid.uuid4().hex[:8]}"
    pktstream.create_topic(name, partitions=partitions, bootstrap_servers=kafka.bootstrap_servers)
    return name


@pytest.fixture(scope="module")
def pcap2k(tmp_path_factory):
    path = tmp_path_factory.mktemp("secure") / "2k.pcap"
    synth.write_pcap(str(path), 2000, seed=11)
    return path


def _frames(table: pa.Table) -> list[int]:
    return sorted(table["frame_number"].to_pylist())


@pytest.mark.parametrize(
    "listener,mechanism",
    [("SSL", None), ("SASL_SSL", "SCRAM-SHA-512"), ("SASL_SSL", "SCRAM-SHA-256"), ("SASL_SSL", "PLAIN")],
)
def test_produce_pcap_and_consume_over_a_secured_listener(secure_kafka, pcap2k, listener, mechanism):
    conf = secure_kafka.client_config(listener)
    if mechanism:
        conf["sasl.mechanisms"] = mechanism
    servers = conf.pop("bootstrap.servers")
    topic = _topic(secure_kafka)
    report = pktstream.produce_pcap(pcap2k, topic, bootstrap_servers=servers, config=conf, columns=COLUMNS)
    assert (report.rows, report.delivered, report.failed) == (2000, 2000, 0)
    got = pktstream.consume(topic, bootstrap_servers=servers, config=conf,
                            schema=pa.schema({"frame_number": pa.uint64()}))
    assert _frames(got) == list(range(1, 2001))
    assert got["_error"].null_count == got.num_rows


def test_produce_and_consumer_over_sasl_ssl(secure_kafka):
    conf = secure_kafka.client_config("SASL_SSL")
    servers = conf.pop("bootstrap.servers")
    topic = _topic(secure_kafka, partitions=3)
    table = pa.table({"n": pa.array(range(5000), pa.int64()), "s": [f"row {i}" for i in range(5000)]})
    report = pktstream.produce(table, topic, bootstrap_servers=servers, config=conf, format="arrow")
    assert report.delivered == report.messages and report.failed == 0
    rows = []
    with pktstream.Consumer(topic, bootstrap_servers=servers, config=conf, format="arrow",
                            group_id=f"g-{uuid.uuid4().hex[:8]}") as consumer:
        for _ in range(60):
            batch = consumer.read_batch(timeout=1.0)
            rows += batch.column("n").to_pylist()
            if len(rows) >= 5000:
                break
        consumer.commit()
        assert "pktstream-secret" not in repr(consumer)
        assert "pktstream-secret" not in str(consumer.config)
    assert sorted(rows) == list(range(5000))


def test_wrong_ca_is_a_typed_tls_error(secure_kafka, tmp_path):
    other_ca, _ = make_ca(tmp_path, "someone-else")
    conf = secure_kafka.client_config("SSL")
    conf["ssl.ca.location"] = str(other_ca)
    servers = conf.pop("bootstrap.servers")
    with pytest.raises(pktstream.KafkaSSLError) as e:
        pktstream.create_topic("never", bootstrap_servers=servers, config=conf, timeout=10)
    assert e.value.code == "SSL" and "certificate verify failed" in str(e.value)
    with pytest.raises(pktstream.KafkaSSLError):
        pktstream.produce(pa.table({"a": [1]}), "never", bootstrap_servers=servers, config=conf)


def test_wrong_host_name_is_a_typed_tls_error(secure_kafka):
    # The certificate names IP:127.0.0.1 only; "localhost" reaches the same listener.
    conf = secure_kafka.client_config("SSL")
    conf.pop("bootstrap.servers")
    servers = f"localhost:{secure_kafka.ports['SSL']}"
    conf["broker.address.family"] = "v4"
    with pytest.raises(pktstream.KafkaSSLError) as e:
        pktstream.create_topic("never", bootstrap_servers=servers, config=conf, timeout=10)
    assert e.value.code == "SSL"


def test_wrong_password_is_a_typed_authentication_error_that_shows_no_secret(secure_kafka, pcap2k):
    conf = secure_kafka.client_config("SASL_SSL")
    conf["sasl.password"] = "not-the-Secret-42"
    servers = conf.pop("bootstrap.servers")
    topic = _topic(secure_kafka, partitions=1)
    with pytest.raises(pktstream.KafkaAuthenticationError) as e:
        pktstream.produce_pcap(pcap2k, topic, bootstrap_servers=servers, config=conf)
    assert e.value.code in ("AUTHENTICATION", "SASL_AUTHENTICATION_FAILED")
    assert isinstance(e.value, PermissionError)
    with pytest.raises(pktstream.KafkaAuthenticationError) as e2:
        pktstream.consume(topic, bootstrap_servers=servers, config=conf, timeout=10)
    for err in (e.value, e2.value):
        assert "not-the-Secret-42" not in str(err) and "not-the-Secret-42" not in repr(err)


def test_cli_never_echoes_a_password(secure_kafka, pcap2k):
    conf = secure_kafka.client_config("SASL_SSL")
    servers = conf.pop("bootstrap.servers")
    conf["sasl.password"] = "cli-Wrong-secret-7"
    args = [a for k, v in conf.items() for a in ("-X", f"{k}={v}")]
    r = subprocess.run(
        [sys.executable, "-m", "pktstream.cli", "produce", str(pcap2k), "--topic", "t", "-b", servers, *args],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode != 0
    assert "cli-Wrong-secret-7" not in r.stdout + r.stderr
    assert "authentication" in (r.stdout + r.stderr).lower()


def test_cli_takes_secrets_from_a_file_and_the_environment(secure_kafka, pcap2k, tmp_path):
    """-F FILE and PKTSTREAM_X_<KEY> carry the SASL settings, so no secret is on the command line."""
    import os

    conf = secure_kafka.client_config("SASL_SSL")
    servers = conf.pop("bootstrap.servers")
    password = conf.pop("sasl.password")
    props = tmp_path / "client.properties"
    props.write_text("# SASL_SSL client\n" + "".join(f"{k}={v}\n" for k, v in conf.items()))
    props.chmod(0o600)
    topic = _topic(secure_kafka)
    cli = [sys.executable, "-m", "pktstream.cli"]
    env = {**os.environ, "PKTSTREAM_X_SASL_PASSWORD": password}
    r = subprocess.run([*cli, "produce", str(pcap2k), "--topic", topic, "-b", servers, "-F", str(props)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    back = pktstream.consume(topic, bootstrap_servers=servers, config={**conf, "sasl.password": password},
                             columns=COLUMNS)
    assert _frames(back) == list(range(1, 2001))
    # -X wins over the file and the environment; a wrong password there fails, unechoed.
    r = subprocess.run([*cli, "produce", str(pcap2k), "--topic", topic, "-b", servers, "-F", str(props),
                        "-X", "sasl.password=cli-Wrong-secret-8"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode != 0 and "authentication" in (r.stdout + r.stderr).lower()
    assert "cli-Wrong-secret-8" not in r.stdout + r.stderr and password not in r.stdout + r.stderr
    # A malformed line names the place, never the text (it may hold a secret).
    props.write_text(f"sasl.password {password}\n")
    r = subprocess.run([*cli, "produce", str(pcap2k), "--topic", topic, "-b", servers, "-F", str(props)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and f"{props}:1" in r.stderr and password not in r.stderr


def test_gssapi_is_refused_with_a_clear_error(secure_kafka):
    conf = {"security.protocol": "SASL_SSL", "sasl.mechanisms": "GSSAPI"}
    with pytest.raises(pktstream.KafkaConfigError, match="GSSAPI"):
        pktstream.create_topic("never", bootstrap_servers=secure_kafka.bootstrap("SASL_SSL"), config=conf)


def test_sasl_scram_json_round_trip(secure_kafka, pcap2k):
    # JSON over SASL_SSL with SCRAM-SHA-512 (the README block runs in test_docs.py).
    topic = _topic(secure_kafka, partitions=1)
    user, password = next(iter(secure_kafka.users.items()))
    config = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": user,
        "sasl.password": password,
        "ssl.ca.location": str(secure_kafka.ca_file),
    }
    report = pktstream.produce_pcap(pcap2k, topic, bootstrap_servers=secure_kafka.bootstrap("SASL_SSL"),
                                    config=config, format="json")
    assert report.delivered == 2000
    table = pktstream.consume(topic, bootstrap_servers=secure_kafka.bootstrap("SASL_SSL"), config=config)
    assert table.num_rows == 2000


def test_spark_source_over_sasl_ssl(spark, secure_kafka, pcap2k):
    conf = secure_kafka.client_config("SASL_SSL")
    servers = conf.pop("bootstrap.servers")
    topic = _topic(secure_kafka, partitions=2)
    pktstream.produce_pcap(pcap2k, topic, bootstrap_servers=servers, config=conf, columns=COLUMNS)
    reader = spark.read.format("pktstream").option("kafka.bootstrap.servers", servers).option("subscribe", topic)
    for k, v in conf.items():
        reader = reader.option(f"kafka.{k}", v)
    df = reader.option("schema", "frame_number bigint").load()
    frames = sorted(r.frame_number for r in df.select("frame_number").collect())
    assert frames == list(range(1, 2001))
    assert "pktstream-secret" not in df._jdf.queryExecution().toString()


def test_the_brokers_secrets_are_private_to_the_user(secure_kafka):
    """The data directory 0700; the keys, the keystore and the users' passwords 0600."""
    import os
    import stat

    def mode(p):
        return stat.S_IMODE(os.stat(p).st_mode)

    data = secure_kafka.data_dir
    assert mode(data) == 0o700 and mode(data / "tls") == 0o700
    secrets = [data / "users", *(data / "tls").glob("*.key"), data / "tls" / "server-keystore.pem"]
    assert len(secrets) >= 4 and {mode(p) for p in secrets} == {0o600}
