#!/usr/bin/env bash
# Proves the wheel on a machine with no Rust, no compiler and no -dev packages:
#   1. a minimal Debian bookworm root made with debootstrap (cached in ~/.cache/pktstream/wheel-root)
#      holding only runtime packages: python3 + venv, Java 17 (JRE, for Apache Kafka and PySpark),
#      tshark and tcpdump (the decoding and filtering oracles), iproute2 (veth pairs for live capture), openssl (the test CA);
#   2. a new venv inside it, where pip installs the wheel with only what pip pulls from PyPI;
#   3. the tests, copied outside any checkout (no python/ beside them), run by pytest with
#      --import-mode=importlib against the installed package: decoding the corpus against tshark,
#      Kafka (plain, TLS, SASL) against Apache Kafka, live capture on a veth pair, the CLI, Spark;
#   4. on the host (Rust and the -dev packages of docs/install.md), the sdist builds with pip into a
#      wheel that installs and decodes.
# The root is entered with chroot (same kernel and loopback as the host; tests reach only 127.0.0.1).
# Usage: scripts/check_wheel.sh [WHEEL]   (default: the one wheel in dist/). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
CACHE="${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}"
ROOT="$CACHE/wheel-root"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
PACKAGES=(python3 python3-venv ca-certificates iproute2 openssl procps tshark tcpdump openjdk-17-jre-headless)

log() { printf '\n== %s\n' "$*" >&2; }

wheel="${1:-$(ls dist/pktstream-*.whl 2>/dev/null | head -1)}"
[ -f "$wheel" ] || { echo "check_wheel: no wheel (run scripts/build_wheel.sh)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "check_wheel: needs root (debootstrap, chroot, network namespaces)" >&2; exit 1; }
command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

mounted() { findmnt -rn -o TARGET | grep -q "^$ROOT"; }
unmount_all() {
  # Deepest first; namespaces a killed test left behind too. Nothing mounted is success: this runs
  # as the EXIT trap, whose status under `set -e -o pipefail` would become the script's.
  findmnt -rn -o TARGET | { grep "^$ROOT" || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
mount_all() {
  # The root as a mount point of its own: `ip netns exec` remounts / as a slave, which fails on a
  # plain directory.
  mount --bind "$ROOT" "$ROOT"
  mount -t proc proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys" && mount --make-rslave "$ROOT/sys"
  mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev"
  mkdir -p "$ROOT/run/netns" "$ROOT/root/.cache/pip" "$ROOT/opt/kafka-libs" "$ROOT/opt/shared/pcaps"
  mount -t tmpfs tmpfs "$ROOT/run/netns"
  # pip's HTTP and wheel cache from the host (PySpark is a 430 MB sdist that pip builds once).
  mkdir -p "$HOME/.cache/pip" && mount --bind "$HOME/.cache/pip" "$ROOT/root/.cache/pip"
  # Apache Kafka's jars (the suite's broker, run inside the root by the fixtures) and the corpus.
  mount --bind -o ro "$kafka_dir" "$ROOT/opt/kafka-libs"
  # Spark's Kafka connector jars (the Spark session of the suite loads them).
  for d in "$CACHE"/spark-kafka-*/; do
    [ -f "$d/.complete" ] || continue
    mkdir -p "$ROOT/root/.cache/pktstream/$(basename "$d")"
    mount --bind -o ro "$d" "$ROOT/root/.cache/pktstream/$(basename "$d")"
  done
  if [ -d "$REPO/../shared/pcaps" ]; then mount --bind -o ro "$REPO/../shared/pcaps" "$ROOT/opt/shared/pcaps"; fi
}
trap 'unmount_all' EXIT

bash scripts/install_kafka.sh >&2
bash scripts/install_spark_kafka.sh >&2
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)"
kafka_dir="$CACHE/kafka-$kafka_version/libs"

if [ ! -f "$ROOT/.complete" ]; then
  mounted && { echo "check_wheel: $ROOT has mounts; not touching it" >&2; exit 1; }
  rm -rf "$ROOT"
  log "debootstrap $SUITE (minbase) into $ROOT"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  touch "$ROOT/.complete"
fi

# The runtime packages, installed again whenever the list changes (the cached root records the
# list it has in .complete; a root from before this check has an empty one).
if [ "$(cat "$ROOT/.complete")" != "${PACKAGES[*]}" ]; then
  mounted && { echo "check_wheel: $ROOT has mounts; not touching it" >&2; exit 1; }
  mount_all
  log "runtime packages: ${PACKAGES[*]}"
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c "
    echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections &&
    apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]} >/dev/null" \
    || { unmount_all; echo "check_wheel: apt-get in the root failed" >&2; exit 1; }
  unmount_all
  echo "${PACKAGES[*]}" > "$ROOT/.complete"
fi

# The root must stay free of build tools: that is the point of the check.
for tool in cargo rustc cc gcc clang make; do
  if chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c "command -v $tool" >/dev/null; then
    echo "check_wheel: $tool is in the root; it must not be" >&2; exit 1
  fi
done
if chroot "$ROOT" dpkg-query -W -f '${Package}\n' | grep -E -- '-dev$'; then
  echo "check_wheel: -dev packages are in the root; they must not be" >&2; exit 1
fi

log "fresh venv, pip install $(basename "$wheel") from PyPI only"
cp /etc/resolv.conf /etc/hosts /etc/hostname "$ROOT/etc/"
# The host's CA bundle: it may hold a registry proxy's CA.
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/host-ca.crt"
rm -rf "$ROOT/opt/venv" "$ROOT/opt/check" "$ROOT/opt/wheel"
mkdir -p "$ROOT/opt/wheel" "$ROOT/opt/check"
cp "$wheel" "$ROOT/opt/wheel/"
# The tests and the two files they read from the repository root (README.md, Cargo.toml): no
# python/ beside them, so `import pktstream` can only find the installed package.
cp -r tests "$ROOT/opt/check/tests"
cp README.md Cargo.toml "$ROOT/opt/check/"
find "$ROOT/opt/check" -name __pycache__ -prune -exec rm -rf {} +
mount_all

inroot() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 \
    PKTSTREAM_KAFKA_LIBS=/opt/kafka-libs PKTSTREAM_PCAPS=/opt/shared/pcaps \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 "$@"
}

started=$(date +%s)
inroot python3 -m venv /opt/venv
# The extras the tests use: spark (PySpark) and test (pytest, the Kafka clients and scapy the tests
# compare with, mypy for the stub check, ...).
inroot pip install -q "$(ls "$ROOT"/opt/wheel/*.whl | sed "s|^$ROOT||")[spark,test]"
log "installed in $(($(date +%s) - started)) s"

inroot sh -c 'cd / && python - <<EOF
import time
t = time.perf_counter()
import pktstream
dt = time.perf_counter() - t
assert pktstream.__file__.startswith("/opt/venv/lib/"), pktstream.__file__
print(f"cold import pktstream: {dt * 1000:.0f} ms, from {pktstream.__file__}")
EOF'
inroot pktstream --version

log "pytest against the installed wheel"
inroot sh -c "cd /opt/check && python -m pytest -p no:cacheprovider --import-mode=importlib -q \
  tests/test_api.py tests/test_cli.py tests/test_corpus.py tests/test_oracle_tshark.py \
  tests/test_kafka.py tests/test_kafka_secure.py tests/test_live.py tests/test_spark.py"
log "the wheel passed on a bare Debian root in $(($(date +%s) - started)) s"
unmount_all

sdist="$(ls "$(dirname "$wheel")"/pktstream-*.tar.gz 2>/dev/null | head -1)"
[ -f "$sdist" ] || { echo "check_wheel: no sdist beside $wheel" >&2; exit 1; }
log "sdist $(basename "$sdist") -> wheel with pip on this machine (Rust, libpcap-dev)"
work="$(mktemp -d)"
python3 -m venv "$work/venv"
# cargo's build directory of scripts/setup.sh: the same crate and features, so this build is warm.
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}" "$work/venv/bin/pip" wheel -q --no-deps -w "$work/wheels" "$sdist"
"$work/venv/bin/pip" install -q "$work"/wheels/pktstream-*.whl
(cd "$work" && "$work/venv/bin/python" - "$REPO/tests/data/sample.pcap" <<'EOF'
import sys
import pktstream
assert pktstream.__file__.startswith(sys.prefix), pktstream.__file__
table = pktstream.read_pcap(sys.argv[1])
assert table.num_rows > 0 and "ip_proto" in table.column_names
print(f"sdist wheel: pktstream {pktstream.__version__} decoded {table.num_rows} packets")
EOF
)
rm -rf "$work"
