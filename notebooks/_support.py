"""Helpers shared by the notebooks: a local broker and a private PostgreSQL server that never outlive
the kernel, and waiting for a streaming query.

Everything here listens on loopback only and cleans up after itself. The notebooks import it
with ``import _support`` (their working directory is ``notebooks/``, or the test suite puts that
directory on ``sys.path``).
"""

from __future__ import annotations

import atexit
import glob
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

__all__ = ["free_port", "postgres_bin", "start_broker", "start_postgres", "wait_for_rows"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_rows(count: Callable[[], int], expected: int, query: Any = None, timeout: float = 90.0) -> int:
    """Polls ``count()`` until it reaches ``expected`` or the timeout; returns the last count.
    With a streaming ``query``, raises its exception as soon as it fails."""
    deadline = time.monotonic() + timeout
    n = count()
    while n < expected and time.monotonic() < deadline:
        if query is not None and not query.isActive:
            error = query.exception()
            raise RuntimeError(f"the streaming query stopped: {error}")
        time.sleep(0.5)
        n = count()
    return n


def _when_gone(command: str) -> None:
    """Runs a shell ``command`` once this process has exited, however it exits (a killed kernel
    runs no ``atexit`` handlers)."""
    script = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; done; {command}"
    subprocess.Popen(["sh", "-c", script], start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class _SharedBroker:
    """A broker someone else runs (``$PKTSTREAM_NOTEBOOK_BOOTSTRAP``): ``stop()`` leaves it running."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers

    def stop(self) -> None:
        pass


def start_broker() -> Any:
    """A Kafka broker for the notebook, on loopback.

    * ``$PKTSTREAM_NOTEBOOK_BOOTSTRAP`` set (the test suite passes its Apache Kafka): that one;
      ``stop()`` leaves it running.
    * Apache Kafka installed (``bash scripts/install_kafka.sh``, Java 17+): a private one
      (:class:`pktstream.broker.ApacheKafka`, free ports, temporary data).
    * Otherwise the in-memory Tansu (:class:`pktstream.broker.Broker`; ``pip install "pktstream[broker]"``).

    ``broker.stop()`` ends a private broker; if the kernel dies first, a watchdog ends it.
    """
    shared = os.environ.get("PKTSTREAM_NOTEBOOK_BOOTSTRAP")
    if shared:
        return _SharedBroker(shared)
    from pktstream.broker import ApacheKafka, Broker, KafkaServerError

    try:
        broker: Any = ApacheKafka(security=False).start()
    except KafkaServerError:
        broker = Broker().start()
    data = shlex.quote(str(broker.data_dir))
    # Only if that pid is still this broker (running in its data directory), not a reused pid.
    _when_gone(f'[ "$(readlink /proc/{broker.pid}/cwd)" = {data} ] && kill {broker.pid}; sleep 2; rm -rf {data}')
    return broker


# --------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bin() -> Optional[Path]:
    """The directory of PostgreSQL's server programs (``initdb``, ``pg_ctl``), or None."""
    env = os.environ.get("PKTSTREAM_PG_BIN")
    if env:
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _postgres_cmd(cmd: list) -> list:
    # The server refuses to run as root: when we are root, run its programs as `postgres`.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _as_postgres(cmd: list, **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(_postgres_cmd(cmd), check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


def start_postgres(port: Optional[int] = None, timeout: float = 60.0) -> Tuple[str, Callable[[], None]]:
    """Starts a private, throw-away PostgreSQL server on 127.0.0.1, data in a temporary directory.
    Returns ``(uri, stop)``; ``stop()`` shuts it down and deletes the data.

    TCP takes only a password (SCRAM-SHA-256; a random one made for this server, in the returned
    URI); ``trust`` is kept for the Unix socket, which lives in the private directory (0700).

    Needs the server installed (``bash scripts/install_postgres.sh``).
    """
    bindir = postgres_bin()
    if bindir is None or not (bindir / "initdb").exists():
        raise RuntimeError("PostgreSQL is not installed: run `bash scripts/install_postgres.sh`")
    port = port or free_port()
    root = Path(tempfile.mkdtemp(prefix="pktstream-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    password = secrets.token_urlsafe(18)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    _as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale"])
    pwfile.unlink()
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w",
                  "-t", str(int(timeout)), "start"])

    def stop() -> None:
        if data.exists():
            try:
                _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)  # a notebook that fails half-way still leaves nothing running
    # ... and if the kernel is killed (no atexit), a watchdog stops the server once it is gone.
    pg_ctl = " ".join(shlex.quote(a) for a in _postgres_cmd([str(bindir / "pg_ctl"), "-D", str(data),
                                                              "-m", "fast", "-w", "stop"]))
    _when_gone(f"[ -d {shlex.quote(str(data))} ] && {pg_ctl}; rm -rf {shlex.quote(str(root))}")
    return f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres", stop
