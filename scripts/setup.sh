#!/usr/bin/env bash
# Installs everything pktstream's build, tests and benchmarks need on a fresh Debian machine of
# this project's kind (Rust toolchain + CPython 3.9+ present), into ./.venv. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v tcpdump >/dev/null 2>&1 || need_apt+=(tcpdump)  # the oracle of BPF filters on files (tests/test_bpf.py)
[ -f /usr/include/pcap/pcap.h ] || need_apt+=(libpcap-dev)
command -v gzip >/dev/null 2>&1 || need_apt+=(gzip)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)  # live-capture tests: network namespaces + veth
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)  # Apache Kafka, PySpark
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)                     # Kafka's jars from Maven Central
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)               # test CA for Kafka's SSL listeners
command -v perl >/dev/null 2>&1 || need_apt+=(perl)                     # OpenSSL's build (rdkafka ssl-vendored)
command -v flex >/dev/null 2>&1 || need_apt+=(flex)                     # the wheel's static libpcap
command -v bison >/dev/null 2>&1 || need_apt+=(bison)                   #   (scripts/build_libpcap.sh)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)       # the bare root of scripts/check_wheel.sh
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # tshark asks whether non-root users may capture; answer "no" without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

command -v cargo >/dev/null 2>&1 || { echo "setup: cargo (Rust >= 1.85) is required and not on PATH" >&2; exit 1; }

# Apache Kafka, the broker of the test suite and the benchmarks: jars from Maven Central, cached in
# ~/.cache/pktstream/kafka-<version>.
bash scripts/install_kafka.sh
bash scripts/install_spark_kafka.sh  # Spark's Kafka connector + PostgreSQL JDBC jars (~/.cache/pktstream/spark-kafka-<version>)
bash scripts/install_postgres.sh   # PostgreSQL server for notebooks/03 (each run starts a private one)

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
# Cargo builds live outside the checkout (a clean clone reuses them): ~/.cache/pktstream/target.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}/target}"
log "pip install pktstream[test,bench,broker,spark] (builds the Rust extension in release mode; ~5 min cold)"
.venv/bin/python -m pip install -q -U pip
.venv/bin/python -m pip install -q -e ".[test,bench,broker,spark]"
.venv/bin/python -c 'import pktstream; print("pktstream", pktstream.__version__, "installed in .venv")'
