#!/usr/bin/env bash
# Builds every fuzz target once, then runs each for SECONDS (default 600), JOBS at a time (default 2), niced,
# with libFuzzer's memory and per-input time limits; logs to fuzz/logs/<target>.log, crashes to
# fuzz/artifacts/<target>/, new inputs to fuzz/work/<target>/ (the committed seeds in fuzz/corpus/<target>/ are
# read, never written). The last `#N ... cov: ... ft: ...` line of each log is what fuzz/RESULTS.md records.
#
#   fuzz/run.sh                 # every target, 600 s each
#   fuzz/run.sh 60 policy receipt
#   FORK=1 fuzz/run.sh 600      # keep going after a crash (libFuzzer -fork=1 -ignore_crashes=1 …)
#   NOBUILD=1 BIN=DIR fuzz/run.sh …   # run already-built binaries from DIR (e.g. a copy, while rebuilding)
#   fuzz/run.sh --min           # after a run: minimise each target's seeds plus new inputs into fuzz/corpus
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain (`rustup toolchain install
# nightly`); without nightly, stable works with RUSTC_BOOTSTRAP=1 (set here when `+nightly` is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL="policy sources ledger_import receipt manifest model_json audit_bundle server detect note import_file fideslang"
if cargo +nightly --version >/dev/null 2>&1; then CARGO=(cargo +nightly); else CARGO=(cargo); export RUSTC_BOOTSTRAP=1; fi
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" CARGO_INCREMENTAL=0
# No sanitizer by default: the workspace denies unsafe code, so ASan would mostly slow the run (set SANITIZER=address
# to check the C dependencies — SQLite, zstd — too). Debug assertions and overflow checks stay on.
SANITIZER="${SANITIZER:-none}"
BIN="${BIN:-fuzz/target/x86_64-unknown-linux-gnu/release}"

if [[ "${1:-}" == "--min" ]]; then
    shift
    for t in ${*:-$ALL}; do
        [[ -d fuzz/work/$t ]] || continue
        rm -rf "fuzz/work/$t.min" && mkdir -p "fuzz/work/$t.min"
        # Edges only (no hit counts): a smaller corpus that still reaches everything the run reached.
        nice -n 10 "$BIN/$t" -merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 "fuzz/work/$t.min" \
            "fuzz/corpus/$t" "fuzz/work/$t" >"fuzz/logs/$t.min.log" 2>&1
        # Over CAP_KB (default 3072) the largest inputs go: the corpus is committed (audit_bundle's inputs are whole
        # bundles of ~100 KB each).
        local_total=0
        for f in $(ls -Sr "fuzz/work/$t.min"); do
            local_total=$((local_total + $(stat -c %s "fuzz/work/$t.min/$f")))
            ((local_total <= ${CAP_KB:-3072} * 1024)) || rm "fuzz/work/$t.min/$f"
        done
        # Regression inputs of fixed crashes stay, whatever they add.
        cp fuzz/corpus/"$t"/regression-* "fuzz/work/$t.min/" 2>/dev/null || true
        rm -rf "fuzz/corpus/$t" && mv "fuzz/work/$t.min" "fuzz/corpus/$t"
        echo "$t: $(ls "fuzz/corpus/$t" | wc -l) inputs, $(du -sh "fuzz/corpus/$t" | cut -f1)"
    done
    exit 0
fi

SECONDS_EACH="${1:-600}"
shift || true
TARGETS="${*:-$ALL}"
JOBS="${JOBS:-2}"

[[ -n "${NOBUILD:-}" ]] || "${CARGO[@]}" fuzz build -s "$SANITIZER" --fuzz-dir fuzz

mkdir -p fuzz/logs
run() {
    local t=$1 dict=()
    mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t" "fuzz/corpus/$t"
    [[ -f fuzz/dict/$t.dict ]] && dict=(-dict="fuzz/dict/$t.dict")
    local fork=()
    [[ -n "${FORK:-}" ]] && fork=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    echo "$(date -u +%T) start $t (${SECONDS_EACH}s)"
    nice -n 10 "$BIN/$t" "${fork[@]}" "${dict[@]}" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" "fuzz/work/$t" "fuzz/corpus/$t" \
        >"fuzz/logs/$t.log" 2>&1 && status=ok || status="exit $?"
    echo "$(date -u +%T) done  $t: $status; $(grep -E '^#[0-9]+' "fuzz/logs/$t.log" | tail -1)"
}
running=0
for t in $TARGETS; do
    run "$t" &
    running=$((running + 1))
    if ((running >= JOBS)); then wait -n; running=$((running - 1)); fi
done
wait
