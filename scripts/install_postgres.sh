#!/usr/bin/env bash
# Installs the PostgreSQL server (Debian package `postgresql`) that notebooks/03 writes to, and
# checks that a private cluster starts on loopback. Idempotent. Nothing is left running: each
# notebook starts its own throw-away server (notebooks/_support.py: start_postgres()), as the
# `postgres` user when run as root (the server refuses to run as root).
#
#   bash scripts/install_postgres.sh          # install if missing, then a start/stop self-check
#   bash scripts/install_postgres.sh --no-check
set -euo pipefail

log() { printf '\n== %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

find_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; fi
}

BINDIR=$(find_bindir)
if [ -z "$BINDIR" ]; then
  log "apt-get install postgresql"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  BINDIR=$(find_bindir)
  [ -n "$BINDIR" ] || { echo "install_postgres: initdb not found after installing postgresql" >&2; exit 1; }
  # The Debian package may start its default cluster; the notebooks don't use it.
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for c in $(pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1"/"$2}'); do
      $SUDO pg_ctlcluster "${c%/*}" "${c#*/}" stop || true
    done
  fi
fi
echo "postgresql server programs: $BINDIR ($("$BINDIR/postgres" --version))" >&2

[ "${1:-}" = "--no-check" ] && exit 0

# Self-check: a private cluster in a temporary directory on 127.0.0.1, started and stopped.
RUN=()
if [ "$(id -u)" = 0 ]; then RUN=(runuser -u postgres --); fi
TMP=$(mktemp -d /tmp/pktstream-pg-check.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres:postgres "$TMP"
cleanup() {
  "${RUN[@]}" "$BINDIR/pg_ctl" -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${RUN[@]}" "$BINDIR/initdb" -D "$TMP/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
"${RUN[@]}" "$BINDIR/pg_ctl" -D "$TMP/data" -l "$TMP/log" -w \
  -o "-p $PORT -k $TMP -c listen_addresses=127.0.0.1" start >/dev/null
"$BINDIR/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atc 'select 1' >/dev/null
echo "postgresql: a private cluster starts and answers on 127.0.0.1 (check passed)" >&2
