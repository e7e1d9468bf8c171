#!/usr/bin/env bash
# The audit's memory against the log's length (issue 20, item 2): two logs with the same members, the second with
# 10x the events per member (four signed heads each, one dataset of the members allowed at the end of the log and a
# live two-shard model over it, made by `crates/consentry-audit/examples/scale_log.rs`), each audited online
# (`consentry audit --data`) and offline (`consentry audit --offline` on an exported bundle) under /usr/bin/time -v.
# Prints peak RSS at both sizes and their ratio; the goal is a ratio near 1 (below 1.3).
#
#   bench/scale/audit.sh [ROOT]    (default ROOT: target/tmp/bench-audit)
#
# Env: MEMBERS (20000), EVENTS (5: events per member of the small log; the large one has 10x), CONSENTRY_BIN (a
# prebuilt binary to measure instead of building this tree's), KEEP=1 (reuse logs already made in ROOT).
# The audits may exit 1: the model is not in the lineage registry (`unregistered_model`); only memory is measured.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(realpath -m "${1:-target/tmp/bench-audit}")
MEMBERS=${MEMBERS:-20000}
EVENTS=${EVENTS:-5}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

if [ -z "${CONSENTRY_BIN:-}" ]; then
    cargo build --release -q -p consentry
    CONSENTRY_BIN=target/release/consentry
fi
cargo build --release -q -p consentry-audit --example scale_log
GEN=target/release/examples/scale_log
mkdir -p "$ROOT"

# peak KiB of a command run under /usr/bin/time -v, its output in $ROOT/$1.log
peak() {
    local name=$1
    shift
    /usr/bin/time -v -o "$ROOT/$name.time" "$@" > "$ROOT/$name.log" 2>&1 || true
    local kib wall
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$ROOT/$name.time")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$ROOT/$name.time")
    echo "$kib $wall"
}

declare -A RSS WALL EV
for size in small large; do
    per=$EVENTS
    [ "$size" = large ] && per=$((EVENTS * 10))
    data=$ROOT/$size
    if [ "${KEEP:-0}" != 1 ] || [ ! -f "$data/ledger.db" ]; then
        rm -rf "$data" "$ROOT/$size-bundle"
        "$CONSENTRY_BIN" --data "$data" ledger init > /dev/null
        "$GEN" "$data" "$MEMBERS" "$per" > "$ROOT/$size-gen.log"
        "$CONSENTRY_BIN" --data "$data" audit export --out "$ROOT/$size-bundle" > /dev/null
    fi
    read -r RSS[$size-online] WALL[$size-online] < <(peak "$size-online" "$CONSENTRY_BIN" --data "$data" audit)
    read -r RSS[$size-offline] WALL[$size-offline] < <(peak "$size-offline" "$CONSENTRY_BIN" audit --offline "$ROOT/$size-bundle")
    EV[$size]=$(tail -1 "$ROOT/$size-gen.log" 2> /dev/null || echo "?")
done

echo "binary: $CONSENTRY_BIN ($(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ', dirty'))"
printf '%-8s %-34s %-34s %s\n' mode "small: $MEMBERS members x $EVENTS" "large: $MEMBERS members x $((EVENTS * 10))" "ratio"
for mode in online offline; do
    s=${RSS[small-$mode]} l=${RSS[large-$mode]}
    printf '%-8s %-34s %-34s %s\n' "$mode" "$((s / 1024)) MiB peak RSS (${WALL[small-$mode]})" \
        "$((l / 1024)) MiB peak RSS (${WALL[large-$mode]})" "$(awk -v a="$s" -v b="$l" 'BEGIN {printf "%.2fx", b / a}')"
done
echo "logs: small ${EV[small]}; large ${EV[large]}"
