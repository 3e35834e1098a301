#!/usr/bin/env bash
# Installs the durable (sqlite-backed) Tansu 0.6.0 broker that pktstream's Kafka tests run against,
# into ${PKTSTREAM_CACHE:-~/.cache/pktstream}/tansu-0.6.0/bin/tansu. Idempotent: does nothing when
# that binary exists and runs. Tansu is a Kafka-compatible broker written in Rust (Apache-2.0); see
# docs/broker.md. Needs cargo; installs cmake with apt-get when missing.
set -euo pipefail

VERSION=0.6.0
CACHE="${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}"
ROOT="$CACHE/tansu-$VERSION"
BIN="$ROOT/bin/tansu"

log() { printf '\n== %s\n' "$*" >&2; }

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "tansu $VERSION (durable, sqlite) already installed: $BIN" >&2
  exit 0
fi

command -v cargo >/dev/null 2>&1 || { echo "install_tansu: cargo is required and not on PATH" >&2; exit 1; }

if ! command -v cmake >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  log "apt-get install cmake (needed to build Tansu's libsql storage)"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends cmake >/dev/null
fi

log "cargo install tansu $VERSION --features libsql into $ROOT (a one-time build: ~8-10 min)"
mkdir -p "$CACHE"
cargo install tansu --version "$VERSION" --locked --features libsql --root "$ROOT"
"$BIN" --version
