#!/usr/bin/env bash
# The test command (README): lint, Rust unit/property tests, a short fuzz run, then the Python suite
# (last, so its summary line closes the output).
# Run scripts/setup.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same build cache as scripts/setup.sh: outside the checkout, reused by the next clean clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${PKTSTREAM_CACHE:-$HOME/.cache/pktstream}/target}"

echo "== lint (clippy, ruff)"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked --features python -- -D warnings
.venv/bin/python -m ruff check python tests benches fuzz/seeds

echo "== cargo test (core, without the Python layer)"
cargo test --locked

if [ -x scripts/fuzz.sh ] && [ "${PKTSTREAM_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz (short run: no crash allowed)"
  bash scripts/fuzz.sh "${PKTSTREAM_FUZZ_SECONDS:-20}"
fi

if [ "${PKTSTREAM_SKIP_WHEEL:-0}" != 1 ]; then
  echo "== wheel: build (manylinux2014, cached), then install and test it in a bare Debian root"
  bash scripts/build_wheel.sh
  bash scripts/check_wheel.sh
fi

echo "== pytest"
# The corpus must be there on CI: without it the corpus tests would run on tests/data alone.
PKTSTREAM_REQUIRE_CORPUS="${PKTSTREAM_REQUIRE_CORPUS:-1}" .venv/bin/python -m pytest "$@"
