#!/usr/bin/env bash
# The audit's memory against the log's length (issue 20, item 2): two logs with the same members, the second with
# 10x the events per member (four signed heads each, one dataset of the members allowed at the end of the log and a
# live two-shard model over it, made by `crates/consentry-audit/examples/scale_log.rs`), each audited online
# (`consentry audit --data`) and offline (`consentry audit --offline` on an exported bundle) under /usr/bin/time -v.
# Prints peak RSS (and peak anonymous RSS) at both sizes and their ratio; the goal is a ratio near 1 (below 1.3).
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
    BUILT=1
fi
cargo build --release -q -p consentry-audit --example scale_log
GEN=target/release/examples/scale_log
mkdir -p "$ROOT"

# "peak-RSS-KiB peak-anonymous-KiB wall" of a command run under /usr/bin/time -v, its output in $ROOT/$1.log.
# Peak RSS counts the file pages a process maps, and the SQLite store maps its database (mmap_size 1 GiB), so an
# online audit's RSS grows with the database file it reads; the anonymous peak (RssAnon, sampled every 20 ms from
# /proc) is the memory the process itself holds.
peak() {
    local name=$1
    shift
    /usr/bin/time -v -o "$ROOT/$name.time" "$@" > "$ROOT/$name.log" 2>&1 &
    local timer=$! child="" anon=0 kib wall
    while kill -0 "$timer" 2> /dev/null; do
        [ -n "$child" ] || child=$(pgrep -P "$timer" | head -1 || true)
        if [ -n "$child" ]; then
            kib=$(awk '/^RssAnon:/ {print $2}' "/proc/$child/status" 2> /dev/null || true)
            [ -n "$kib" ] && [ "$kib" -gt "$anon" ] && anon=$kib
        fi
        sleep 0.02
    done
    wait "$timer" || true
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$ROOT/$name.time")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$ROOT/$name.time")
    echo "$kib $anon $wall"
}

declare -A RSS ANON WALL EV
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
    read -r RSS[$size-online] ANON[$size-online] WALL[$size-online] < <(peak "$size-online" "$CONSENTRY_BIN" --data "$data" audit)
    read -r RSS[$size-offline] ANON[$size-offline] WALL[$size-offline] < <(peak "$size-offline" "$CONSENTRY_BIN" audit --offline "$ROOT/$size-bundle")
    EV[$size]=$(tail -1 "$ROOT/$size-gen.log" 2> /dev/null || echo "?")
done

if [ -n "${BUILT:-}" ]; then
    echo "binary: $CONSENTRY_BIN (built from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ', dirty'))"
else
    echo "binary: $CONSENTRY_BIN (given; built $(date -u -r "$CONSENTRY_BIN" '+%F %T UTC'))"
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", b / a}'; }
printf '%-8s %-11s %-30s %-30s %s\n' mode measure "small: $MEMBERS members x $EVENTS" "large: $MEMBERS members x $((EVENTS * 10))" ratio
for mode in online offline; do
    s=${RSS[small-$mode]} l=${RSS[large-$mode]}
    printf '%-8s %-11s %-30s %-30s %s\n' "$mode" "peak RSS" "$((s / 1024)) MiB (${WALL[small-$mode]})" \
        "$((l / 1024)) MiB (${WALL[large-$mode]})" "$(ratio "$s" "$l")"
    s=${ANON[small-$mode]} l=${ANON[large-$mode]}
    printf '%-8s %-11s %-30s %-30s %s\n' "$mode" "peak anon" "$((s / 1024)) MiB" "$((l / 1024)) MiB" "$(ratio "$s" "$l")"
done
echo "logs: small ${EV[small]}; large ${EV[large]}"
