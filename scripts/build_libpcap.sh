#!/usr/bin/env bash
# Builds a static libpcap for the wheel: Debian's upstream tarball (libpcap_<ver>.orig.tar.gz from
# the Debian archive, checked against its SHA-256), compiled by zig for glibc 2.17 (manylinux2014)
# without D-Bus, RDMA, Bluetooth, USB or netlink, so the wheel links libpcap in and needs no
# libpcap on the user's machine. Prints the directory holding libpcap.a. Cached; idempotent.
# Needs: curl, make, flex, bison, and the ziglang package in the Python given as $1.
set -euo pipefail
PY="${1:?usage: build_libpcap.sh PYTHON_WITH_ZIGLANG}"
VER=1.10.3
SHA256=2a8885c403516cf7b0933ed4b14d6caa30e02052489ebd414dc75ac52e7559e6
GLIBC=2.17
CACHE="${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}"
OUT="$CACHE/libpcap-$VER-glibc$GLIBC"
if [ -f "$OUT/.complete" ] && [ -f "$OUT/libpcap.so" ]; then echo "$OUT"; exit 0; fi

mkdir -p "$CACHE/src"
tarball="$CACHE/src/libpcap_$VER.orig.tar.gz"
if [ ! -f "$tarball" ]; then
  curl -sSfL -o "$tarball.tmp" "http://deb.debian.org/debian/pool/main/libp/libpcap/libpcap_$VER.orig.tar.gz"
  mv "$tarball.tmp" "$tarball"
fi
echo "$SHA256  $tarball" | sha256sum -c --quiet - >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar xzf "$tarball" -C "$work"
# zig's C compiler for the manylinux2014 glibc; configure and make take it through CC and AR.
printf '#!/bin/sh\nexec "%s" -m ziglang cc -target x86_64-linux-gnu.%s "$@"\n' "$PY" "$GLIBC" >"$work/cc"
printf '#!/bin/sh\nexec "%s" -m ziglang ar "$@"\n' "$PY" >"$work/ar"
chmod +x "$work/cc" "$work/ar"
(
  cd "$work/libpcap-$VER"
  CC="$work/cc" AR="$work/ar" CFLAGS="-O2 -fPIC" ./configure --disable-shared --disable-dbus \
    --disable-rdma --disable-bluetooth --disable-usb --disable-netmap --without-libnl --without-dpdk \
    --disable-remote --with-pcap=linux >"$work/configure.log" 2>&1 || { tail -30 "$work/configure.log" >&2; exit 1; }
  make -j"$(nproc)" libpcap.a >"$work/make.log" 2>&1 || { tail -30 "$work/make.log" >&2; exit 1; }
  rm -rf "$OUT" && mkdir -p "$OUT"
  cp libpcap.a "$OUT/"
)
echo "$VER" >"$OUT/VERSION"
# The pcap crate asks for `-lpcap` as a dynamic library, and zig's linker then takes only a .so:
# a one-line linker script under that name hands it the static archive.
echo "INPUT($OUT/libpcap.a)" >"$OUT/libpcap.so"
touch "$OUT/.complete"
echo "$OUT"
