"""The notebooks' private PostgreSQL server: a password over TCP, ``trust`` only on its private socket."""

from __future__ import annotations

import stat
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
import _support  # noqa: E402


def test_tcp_needs_the_password_and_the_socket_stays_private():
    from adbc_driver_postgresql import dbapi

    if _support.postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: run `bash scripts/install_postgres.sh`", pytrace=False)
    uri, stop = _support.start_postgres()
    try:
        u = urlparse(uri)
        assert u.hostname == "127.0.0.1" and u.password and len(u.password) >= 20
        with dbapi.connect(uri) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        for wrong in (f"postgresql://postgres@127.0.0.1:{u.port}/postgres",
                      f"postgresql://postgres:not-it@127.0.0.1:{u.port}/postgres"):
            with pytest.raises(Exception, match="password"):
                with dbapi.connect(wrong) as conn, conn.cursor() as cur:
                    cur.execute("SELECT 1")
        sockets = list(Path(tempfile.gettempdir()).glob(f"pktstream-pg-*/.s.PGSQL.{u.port}"))
        assert len(sockets) == 1
        assert stat.S_IMODE(sockets[0].parent.stat().st_mode) == 0o700
        assert not (sockets[0].parent / "pwfile").exists()
    finally:
        stop()
