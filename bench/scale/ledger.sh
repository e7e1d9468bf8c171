#!/usr/bin/env bash
# The ledger at scale (issue 20): append rate in batches, peak memory, `verify` time and memory, proof latency at
# the end of the log, database size per event; on SQLite, and on PostgreSQL with BACKENDS="sqlite postgres".
#
#   bench/scale/ledger.sh                 (SIZES="2000000 20000000": verify's memory at two sizes 10× apart)
#   SIZES=100000000 MEMBERS=20000000 bench/scale/ledger.sh     (the issue's 100 M over 20 M members)
#
# Each size is built by extending the previous one (same seeded stream), so the sizes cost one append of the
# largest. Every phase runs in its own process under /usr/bin/time -v: its peak RSS is its own. WORK (default
# target/tmp/bench-scale) keeps the databases; they are large (about 230 bytes per event on SQLite).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
WORK=${WORK:-$ROOT/target/tmp/bench-scale}
SIZES=${SIZES:-"2000000 20000000"}
MEMBERS=${MEMBERS:-}
BACKENDS=${BACKENDS:-sqlite}
BATCH=${BATCH:-10000}
mkdir -p "$WORK"

cargo bench -q -p consentry-ledger --features sqlite,postgres --bench log_scale --no-run 2> /dev/null
BIN=$(ls -t "$CARGO_TARGET_DIR"/release/deps/log_scale-* | grep -v '\.d$' | head -1)

peak_mib() { awk '/Maximum resident set size/ {printf "%.0f", $NF / 1024}' "$1"; }
field() { tr ' ' '\n' < "$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }

run() { # run NAME ARGS…: the phase's stdout in $WORK/NAME.out, its /usr/bin/time report in $WORK/NAME.time
  local name=$1
  shift
  /usr/bin/time -v -o "$WORK/$name.time" "$BIN" "$@" > "$WORK/$name.out"
}

ROWS=()
for backend in $BACKENDS; do
  case $backend in
    sqlite)
      DB="$WORK/ledger.db"
      rm -f "$DB" "$DB-wal" "$DB-shm"
      ;;
    postgres)
      rm -rf "$WORK/pg"
      start_postgres
      trap '$PG_CTL stop -m immediate > /dev/null 2>&1 || true' EXIT
      DB=$PG_URL
      ;;
  esac
  have=0
  for size in $SIZES; do
    members=${MEMBERS:-$((size / 5))}
    echo "== $backend: appending to $size events over $members members" >&2
    run append append --db "$DB" --events $((size - have)) --members "$members" --batch "$BATCH" 2>&2
    have=$size
    echo "== $backend: verify and proofs at $size" >&2
    run verify verify --db "$DB"
    run proofs proofs --db "$DB"
    if [ "$backend" = sqlite ]; then
      bytes=$(($(stat -c %s "$DB") + $(stat -c %s "$DB-wal" 2> /dev/null || echo 0)))
    else
      bytes=$(psql -At "$DB" -c "SELECT pg_database_size(current_database())")
    fi
    ROWS+=("$(printf '%-8s %12s %11s %13s %11s %13s %10s %13s %10s %10s %9s' "$backend" "$size" \
      "$(field "$WORK/append.out" rate)" "$(peak_mib "$WORK/append.time")/$(field "$WORK/append.out" peak_anon_mib)" \
      "$(field "$WORK/verify.out" seconds)" "$(peak_mib "$WORK/verify.time")/$(field "$WORK/verify.out" peak_anon_mib)" \
      "$(field "$WORK/proofs.out" cold_start_seconds)" \
      "$(peak_mib "$WORK/proofs.time")/$(field "$WORK/proofs.out" peak_anon_mib)" \
      "$(field "$WORK/proofs.out" inclusion_p99_us)" "$(field "$WORK/proofs.out" consistency_p99_us)" \
      "$((bytes / size))")")
  done
  if [ "$backend" = postgres ]; then
    $PG_CTL stop -m immediate > /dev/null
    trap - EXIT
  fi
done

echo
echo "kernel: $(uname -r), cpus: $(nproc); append batch $BATCH; one process per phase"
echo "MiB columns: peak RSS (/usr/bin/time -v, counts SQLite's memory-mapped file pages, up to 1 GiB) / peak anonymous"
echo "RSS (heap and stacks, sampled every 10 ms). Proof latencies in µs at the end of the log, after a cold start."
printf '%-8s %12s %11s %13s %11s %13s %10s %13s %10s %10s %9s\n' backend events "append/s" "append MiB" "verify s" \
  "verify MiB" "cold s" "proofs MiB" "incl p99" "cons p99" "B/event"
printf '%s\n' "${ROWS[@]}"
