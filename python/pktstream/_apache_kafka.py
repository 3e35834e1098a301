"""Apache Kafka on this machine: one KRaft broker+controller started and stopped from Python.

Apache Kafka is what users run, so it is the broker of pktstream's test suite and benchmarks, and
``pktstream broker --kafka`` starts it for local work. ``bash scripts/install_kafka.sh`` resolves
its jars from Maven Central once into ``~/.cache/pktstream/kafka-<version>/libs``; Java 17+ runs it.

:class:`ApacheKafka` formats a fresh KRaft storage directory (``kafka.tools.StorageTool format
--standalone``) and starts ``java -cp 'libs/*' kafka.Kafka server.properties`` with up to three
client listeners on free loopback ports:

* ``PLAINTEXT``;
* ``SSL``, with a CA and a server certificate (subject alternative name ``IP:127.0.0.1`` only)
  generated with the ``openssl`` command;
* ``SASL_SSL`` with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN users created at format time.

Example:
    >>> from pktstream.broker import ApacheKafka
    >>> with ApacheKafka(security=True) as kafka:            # doctest: +SKIP
    ...     conf = kafka.client_config("SASL_SSL")          # librdkafka keys, incl. the CA file
    ...     pktstream.create_topic("t", bootstrap_servers=kafka.bootstrap_servers)
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import weakref
from pathlib import Path
from typing import Literal, Optional

from .exceptions import PktstreamError

__all__ = ["ApacheKafka", "find_kafka", "make_ca", "make_server_cert"]

Listener = Literal["PLAINTEXT", "SSL", "SASL_SSL"]

#: Users of the SASL_SSL listener (name -> password), created at format time.
DEFAULT_USERS = {"pktstream": "pktstream-secret", "alice": "alice-secret"}

_INSTALL_HELP = """\
Apache Kafka needs Java 17+ and its jars:
  bash scripts/install_kafka.sh      (Maven Central -> ~/.cache/pktstream/kafka-<version>/libs)
or set PKTSTREAM_KAFKA_LIBS=/path/to/kafka/libs (a Kafka 4.x distribution's libs/ folder)."""


class KafkaServerError(PktstreamError, RuntimeError):
    """Apache Kafka could not be found or started (the message says why and how to fix it)."""


def _cache_root() -> Path:
    return Path(os.environ.get("PKTSTREAM_CACHE") or Path.home() / ".cache" / "pktstream")


def find_kafka() -> Path:
    """The ``libs`` folder of the Apache Kafka to run: ``$PKTSTREAM_KAFKA_LIBS``, else the newest
    complete install in the cache. Raises :class:`KafkaServerError` with the install command."""
    env = os.environ.get("PKTSTREAM_KAFKA_LIBS")
    if env:
        if not any(Path(env).glob("kafka_2.13-*.jar")):
            raise KafkaServerError(f"PKTSTREAM_KAFKA_LIBS={env} holds no kafka_2.13-*.jar")
        return Path(env)
    installs = sorted(
        (p for p in _cache_root().glob("kafka-*") if (p / ".complete").exists()),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.name.split("-", 1)[1].split(".")],
    )
    if not installs:
        raise KafkaServerError(f"Apache Kafka is not installed.\n{_INSTALL_HELP}")
    return installs[-1] / "libs"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        raise KafkaServerError(f"no `java` found (set JAVA_HOME or put java on PATH).\n{_INSTALL_HELP}")
    return java


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise KafkaServerError("the `openssl` command is needed to make test certificates (apt install openssl)")
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise KafkaServerError(f"openssl {args[0]} failed: {r.stderr.strip()}")


def make_ca(directory: Path, name: str = "pktstream-test-ca") -> tuple[Path, Path]:
    """A self-signed EC P-256 CA in ``directory`` (0700, the keys 0600): ``(ca.pem, ca.key)``."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "3650", "-subj", f"/CN={name}",
        cwd=directory,
    )  # fmt: skip
    (directory / f"{name}.key").chmod(0o600)
    return directory / f"{name}.pem", directory / f"{name}.key"


def make_server_cert(directory: Path, ca: tuple[Path, Path], san: str = "IP:127.0.0.1") -> Path:
    """A server key and certificate signed by ``ca``, as one PEM file (PKCS#8 key, then the chain):
    the layout Kafka's ``ssl.keystore.type=PEM`` reads."""
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=pktstream-test-broker",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(f"subjectAltName={san}\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
        "-out", "server.crt", "-days", "3650", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.key").chmod(0o600)
    keystore = directory / "server-keystore.pem"
    keystore.touch(mode=0o600)
    keystore.write_text(
        (directory / "server.key").read_text() + (directory / "server.crt").read_text() + ca[0].read_text()
    )
    return keystore


_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""

_started: "weakref.WeakSet[ApacheKafka]" = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for k in list(_started):
        k.kill()


class ApacheKafka:
    """One Apache Kafka KRaft node (broker + controller) on loopback.

    Args:
        data_dir: Where storage, configuration, certificates and ``server.log`` go; a temporary
            directory (deleted on :meth:`close`) when None.
        security: Also open the ``SSL`` and ``SASL_SSL`` listeners.
        users: SCRAM/PLAIN users of the ``SASL_SSL`` listener (name -> password).
        port: The PLAINTEXT port; None picks a free one (the others are always picked).
        heap: The JVM's ``-Xmx``.
        properties: Extra ``server.properties`` entries (they replace the defaults).
    """

    def __init__(
        self,
        data_dir: Optional[os.PathLike[str] | str] = None,
        *,
        security: bool = True,
        users: Optional[dict[str, str]] = None,
        port: Optional[int] = None,
        heap: str = "1g",
        properties: Optional[dict[str, str]] = None,
    ) -> None:
        self.libs = find_kafka()
        self.java = _java()
        self._tmp = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="pktstream-kafka-")).resolve()
        self.security = security
        self.users = dict(users or DEFAULT_USERS)
        self.heap = heap
        self.extra = dict(properties or {})
        ports = _free_ports(4)
        self.ports: dict[str, int] = {"CONTROLLER": ports[0], "PLAINTEXT": port or ports[1]}
        if security:
            self.ports.update(SSL=ports[2], SASL_SSL=ports[3])
        self.version = (self.libs.parent / "VERSION").read_text().strip() if (self.libs.parent / "VERSION").exists() else "?"
        self.ca_file: Optional[Path] = None
        self.startup_seconds: Optional[float] = None
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._formatted = False

    # --- addresses and client settings -----------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """The PLAINTEXT listener, ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.ports['PLAINTEXT']}"

    def bootstrap(self, listener: Listener = "PLAINTEXT") -> str:
        """``127.0.0.1:PORT`` of ``listener``."""
        if listener not in self.ports or listener == "CONTROLLER":
            raise ValueError(f"this broker has no {listener} listener (security={self.security})")
        return f"127.0.0.1:{self.ports[listener]}"

    def client_config(self, listener: Listener = "PLAINTEXT", user: Optional[str] = None) -> dict[str, str]:
        """librdkafka settings that reach ``listener``: bootstrap servers, protocol, CA file and,
        for ``SASL_SSL``, a SCRAM-SHA-512 user (the first one by default)."""
        conf = {"bootstrap.servers": self.bootstrap(listener), "security.protocol": listener}
        if listener != "PLAINTEXT":
            conf["ssl.ca.location"] = str(self.ca_file)
        if listener == "SASL_SSL":
            name = user or next(iter(self.users))
            conf.update({"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": name, "sasl.password": self.users[name]})
        return conf

    @property
    def durable(self) -> bool:
        """Always True: messages and committed offsets survive a ``kill -9``."""
        return True

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of ``server.log`` (and of the JVM's own output)."""
        out = []
        for name in ("server.log", "stdout.log"):
            p = self.data_dir / name
            if p.exists():
                out += p.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    # --- lifecycle -------------------------------------------------------------------------------

    def _write_config(self) -> Path:
        listeners = [f"{name}://127.0.0.1:{port}" for name, port in self.ports.items()]
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.ports['CONTROLLER']}",
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(x for x in listeners if not x.startswith("CONTROLLER")),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.check.interval.ms": "1000",
            "log.segment.delete.delay.ms": "1000",
        }
        if self.security:
            assert self.ca_file is not None
            keystore = self.data_dir / "tls" / "server-keystore.pem"
            jaas_plain = " ".join(f'user_{u}="{p}"' for u, p in self.users.items())
            props.update({
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": str(keystore),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": str(self.ca_file),
                "ssl.client.auth": "none",
                "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "listener.name.sasl_ssl.plain.sasl.jaas.config":
                    f"org.apache.kafka.common.security.plain.PlainLoginModule required {jaas_plain};",
            })  # fmt: skip
        props.update(self.extra)
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(log=self.data_dir / "server.log"))
        return path

    def _jvm(self, main: str, *args: str) -> list[str]:
        return [
            self.java, f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp", f"{self.libs}/*", main, *args,
        ]  # fmt: skip

    def _format(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # logs, keys and the users' passwords
        if self.security:
            tls = self.data_dir / "tls"
            ca = make_ca(tls)
            make_server_cert(tls, ca)
            self.ca_file = ca[0]
        config = self._write_config()
        if self.security:
            users = self.data_dir / "users"
            users.touch(mode=0o600)
            users.write_text("".join(f"{u} {p}\n" for u, p in self.users.items()))
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = self._jvm("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config), "--standalone")
        for user, password in self.users.items() if self.security else ():
            for mech in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
                cmd += ["--add-scram", f"{mech}=[name={user},password={password}]"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            # The command line holds passwords: never echo it, only the tool's answer.
            raise KafkaServerError(f"formatting Kafka storage failed: {(r.stderr or r.stdout).strip()[-2000:]}")
        self._formatted = True

    def start(self, timeout: float = 90.0) -> ApacheKafka:
        """Formats storage (first start only), starts the JVM and waits until the broker is
        serving; ``startup_seconds`` is how long that took."""
        if self.running:
            return self
        t0 = time.monotonic()
        if not self._formatted:
            self._format()
        log = self.data_dir / "server.log"
        seen = log.stat().st_size if log.exists() else 0
        with open(self.data_dir / "stdout.log", "ab") as out:
            self._proc = subprocess.Popen(
                self._jvm("kafka.Kafka", str(self.data_dir / "server.properties")),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=self.data_dir,
            )  # fmt: skip
        _started.add(self)
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise KafkaServerError(f"Apache Kafka exited with status {self._proc.returncode}:\n{self.log_tail()}")
            if log.exists():
                with open(log, "rb") as f:
                    f.seek(seen)
                    if b"Kafka Server started" in f.read():
                        self.startup_seconds = time.monotonic() - t0
                        return self
            time.sleep(0.1)
        self.kill()
        raise KafkaServerError(f"Apache Kafka did not start within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM); SIGKILL if it takes longer than ``timeout``."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """``kill -9``: no clean shutdown. :meth:`restart` brings the same node back."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self, timeout: float = 90.0) -> ApacheKafka:
        """Starts the node again on the same ports and storage."""
        self.kill()
        return self.start(timeout)

    def close(self) -> None:
        """Stops the node and deletes a temporary data directory."""
        self.stop()
        if self._tmp:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ApacheKafka({self.version}, {self.bootstrap_servers}, {state}, data_dir={str(self.data_dir)!r})"
