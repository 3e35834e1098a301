#!/usr/bin/env bash
# Coverage-guided fuzzing of pktstream with cargo-fuzz / libFuzzer.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 30)
#
# For each target in fuzz/fuzz_targets/: replays every saved crash in fuzz/regressions/<target>/
# (they must no longer crash), then fuzzes for SECONDS_PER_TARGET starting from the seeds in
# fuzz/seeds/<target>/ (copied into the gitignored scratch corpus fuzz/corpus/<target>/, which
# keeps growing across local runs). libFuzzer's output goes to fuzz/logs/<target>.log; one summary
# line per target is printed. Exits non-zero if anything crashed, hung, ran out of memory or failed
# to build; new crashing inputs are left in fuzz/artifacts/<target>/.
#
# Environment:
#   FUZZ_TARGETS     space-separated targets to run (default: all)
#   FUZZ_SANITIZER   address (default) | none | memory | thread | leak
#   FUZZ_RSS_MB      libFuzzer -rss_limit_mb (default 512: a crafted length that makes the reader
#                    allocate hundreds of MB counts as a bug)
#   FUZZ_FRESH=1     start from the seeds only (drop the accumulated scratch corpus)
#
# Only the stable toolchain is needed: cargo-fuzz asks for nightly-only flags (-Zsanitizer=...),
# which RUSTC_BOOTSTRAP=1 unlocks on stable.
set -uo pipefail

SECS="${1:-30}"
if ! [[ "$SECS" =~ ^[0-9]+$ ]] || [ "$SECS" -lt 1 ]; then
    echo "usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
    exit 2
fi
SANITIZER="${FUZZ_SANITIZER:-address}"
RSS_MB="${FUZZ_RSS_MB:-512}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
# Panic backtraces yes (RUST_BACKTRACE), but not cargo-fuzz's own anyhow backtrace on exit.
export RUST_LIB_BACKTRACE=0
# Debug assertions on: integer overflow in length arithmetic is a bug worth a crash report.
FUZZ_FLAGS=(--sanitizer "$SANITIZER" --debug-assertions)
# cc-rs passes the sanitizer on to the C dependencies it builds (zstd-sys, ...); librdkafka's
# configure then links its probe programs against those instrumented archives and, without the
# sanitizer's runtime on its link line, finds no zstd and fails. Give its probes the runtime too.
case "$SANITIZER" in
    address | memory | thread | leak) export LDFLAGS="${LDFLAGS:-} -fsanitize=$SANITIZER" ;;
esac
# Builds outside the checkout when scripts/test.sh set CARGO_TARGET_DIR (a clean clone reuses them).
if [ -n "${CARGO_TARGET_DIR:-}" ]; then FUZZ_FLAGS+=(--target-dir "$CARGO_TARGET_DIR/fuzz"); fi
LOGS="fuzz/logs"
mkdir -p "$LOGS"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    if ! cargo install cargo-fuzz --locked >"$LOGS/install.log" 2>&1; then
        echo "fuzz: FAILED to install cargo-fuzz:" >&2
        tail -n 30 "$LOGS/install.log" >&2
        exit 1
    fi
fi

if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a TARGETS <<<"$FUZZ_TARGETS"
else
    mapfile -t TARGETS < <(cd fuzz/fuzz_targets && ls -1 -- *.rs | sed 's/\.rs$//')
fi

# Build once, up front, so a build failure is reported as such (and not as a crash).
: >"$LOGS/build.log"
for t in "${TARGETS[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
        echo "fuzz: no such target: $t" >&2
        exit 2
    fi
    # One retry: a first cold build was once seen to fail without a reason and pass when rerun.
    if ! cargo fuzz build "${FUZZ_FLAGS[@]}" "$t" >>"$LOGS/build.log" 2>&1 &&
        ! { echo "fuzz: build of $t failed once; retrying" >&2; cargo fuzz build "${FUZZ_FLAGS[@]}" "$t" >>"$LOGS/build.log" 2>&1; }; then
        echo "fuzz: FAILED to build fuzz target $t (sanitizer: $SANITIZER):" >&2
        tail -n 40 "$LOGS/build.log" >&2
        exit 1
    fi
done

# What went wrong, from a libFuzzer log.
classify() {
    local log="$1"
    if grep -q "panicked at" "$log"; then
        echo "panic: $(grep -m1 -A1 "panicked at" "$log" | tr '\n' ' ' | cut -c1-200)"
    elif grep -q "ERROR: libFuzzer: timeout" "$log"; then
        echo "timeout (hang)"
    elif grep -q "ERROR: libFuzzer: out-of-memory\|ERROR: libFuzzer: malloc" "$log"; then
        echo "out-of-memory: $(grep -m1 "ERROR: libFuzzer: out-of-memory\|ERROR: libFuzzer: malloc" "$log" | cut -c1-160)"
    elif grep -q "ERROR: AddressSanitizer" "$log"; then
        echo "$(grep -m1 "ERROR: AddressSanitizer" "$log" | cut -c1-160)"
    elif grep -q "ERROR: libFuzzer" "$log"; then
        echo "$(grep -m1 "ERROR: libFuzzer" "$log" | cut -c1-160)"
    else
        echo "failed (see $log)"
    fi
}

show_failure() { # the first error report of a log (panic message + top of the stack), and the input
    local log="$1" first
    first=$(grep -n -m1 "panicked at\|ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|ERROR: libFuzzer" "$log" | cut -d: -f1)
    echo "----- $log -----"
    if [ -n "$first" ]; then
        sed -n "${first},$((first + 35))p" "$log"
        echo "[...]"
        grep "Test unit written to\|^Running: " "$log" | head -n 5
    else
        tail -n 40 "$log"
    fi
    echo "-----"
}

stat_of() { # stat_of LOG NAME -> value of libFuzzer's final "stat::NAME:" line
    grep -m1 "^stat::$2:" "$1" | awk '{print $2}'
}

FAILED=0
for t in "${TARGETS[@]}"; do
    log="$LOGS/$t.log"
    : >"$log"

    # 1. Replay saved regressions (each file is run once; a still-crashing one fails the run).
    reg="fuzz/regressions/$t"
    if [ -d "$reg" ] && [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
        nreg=$(find "$reg" -maxdepth 1 -type f | wc -l)
        mapfile -t regfiles < <(find "$reg" -maxdepth 1 -type f | sort)
        if timeout 600 cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "${regfiles[@]}" -- \
            -rss_limit_mb="$RSS_MB" -timeout=10 -runs=1 >"$LOGS/$t.regressions.log" 2>&1; then
            echo "fuzz: $t: $nreg regression input(s) replayed: ok"
        else
            echo "fuzz: $t: regression replay FAILED: $(classify "$LOGS/$t.regressions.log")"
            show_failure "$LOGS/$t.regressions.log"
            FAILED=1
        fi
    fi

    # 2. Fuzz from the seeds (+ whatever the scratch corpus accumulated).
    corpus="fuzz/corpus/$t"
    [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    if [ -d "fuzz/seeds/$t" ]; then
        cp -f fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    fi
    start=$(date +%s)
    timeout $((SECS * 2 + 300)) cargo fuzz run "${FUZZ_FLAGS[@]}" "$t" "$corpus" -- \
        -max_total_time="$SECS" -rss_limit_mb="$RSS_MB" -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(stat_of "$log" number_of_executed_units)
    eps=$(stat_of "$log" average_exec_per_sec)
    rss=$(stat_of "$log" peak_rss_mb)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
    corp=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        result="ok"
    elif [ "$rc" -eq 124 ]; then
        result="HUNG (killed by the outer timeout)"
    else
        result="FAILED: $(classify "$log")"
    fi
    printf 'fuzz: %-13s %3ss  execs=%s  exec/s=%s  cov=%s  ft=%s  corpus=%s  peak_rss=%sMB  %s\n' \
        "$t" "$took" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$corp" "${rss:-?}" "$result"
    if [ "$rc" -ne 0 ]; then
        FAILED=1
        show_failure "$log"
        art=$(ls -t fuzz/artifacts/"$t"/ 2>/dev/null | head -n 1)
        if [ -n "$art" ]; then
            echo "fuzz: crashing input: fuzz/artifacts/$t/$art (copy it to fuzz/regressions/$t/ once triaged)"
        fi
    fi
done
exit "$FAILED"
