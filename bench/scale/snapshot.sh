#!/usr/bin/env bash
# Full consent snapshots at scale on SQLite and on PostgreSQL, and durable concurrent appends (group commit).
#
#   bench/scale/snapshot.sh                      # 1M members × 3 purposes from 5M events, then 20M from 10M
#   SIZES="1000000:5000000" bench/scale/snapshot.sh
#   SIZES="20000000:10000000" SKIP_APPENDS=1 bench/scale/snapshot.sh
#
# SIZES is a list of MEMBERS:EVENTS. Each size is loaded into a fresh SQLite file and a fresh database of a
# throwaway PostgreSQL cluster (initdb + pg_ctl in a temporary directory, server defaults with fsync on, removed at
# the end), then snapshotted in a process of its own, best of RUNS (default 3); each database is removed before the
# next size, so the disk holds one database at a time: about 2 GB (SQLite) and 3 GB (PostgreSQL) for 1M/5M, 6.4 GB
# and about 10 GB for 20M/10M. Peak RSS is the snapshotting client's (VmHWM); the PostgreSQL server's memory is not
# in it. WORK (default: a new directory under TMPDIR) should be on a real disk.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

SIZES=${SIZES:-"1000000:5000000 20000000:10000000"}
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/consentry-scale.XXXXXX")}
mkdir -p "$WORK"
PG_CTL=""
cleanup() {
  [ -z "$PG_CTL" ] || $PG_CTL stop -m immediate > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "building the scale bench" >&2
BENCH=$(cd "$ROOT" && cargo bench -q -p consentry-ledger --bench scale --no-run --message-format=json 2> /dev/null |
  python3 -c 'import json, sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "scale" and m.get("executable"):
        print(m["executable"])')
[ -x "$BENCH" ] || { echo "could not build the scale bench" >&2; exit 1; }

start_postgres -E UTF8 --locale=C
PSQL="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/psql -q -h 127.0.0.1 -p $PG_PORT -U postgres"
PG_BASE="postgres://postgres@127.0.0.1:$PG_PORT"

rows=()
for size in $SIZES; do
  members=${size%%:*}
  events=${size##*:}
  for backend in sqlite postgres; do
    if [ "$backend" = sqlite ]; then
      target="$WORK/s.db"
    else
      psql_db="scale_$members"
      $PSQL -c "CREATE DATABASE $psql_db" postgres
      target="$PG_BASE/$psql_db"
    fi
    start=$(date +%s.%N)
    "$BENCH" load "$backend" "$target" "$members" "$events"
    load_s=$(echo "$(date +%s.%N) - $start" | bc)
    line=$("$BENCH" snapshot "$backend" "$target" "$RUNS")
    rows+=("$line	$load_s")
    if [ "$backend" = sqlite ]; then
      rm -f "$WORK"/s.db*
    else
      $PSQL -c "DROP DATABASE $psql_db" postgres
    fi
  done
done

echo
printf '%-9s %10s %12s %9s %12s %10s %9s\n' backend members "log entries" snapshot "peak RSS" "DB size" load
for r in "${rows[@]}"; do
  IFS=$'\t' read -r backend members events secs rss bytes load_s <<< "$r"
  printf '%-9s %10s %12s %8.2fs %8.0f MiB %6.1f GiB %8.0fs\n' "$backend" "$members" "$events" "$secs" \
    "$(echo "$rss / 1024" | bc -l)" "$(echo "$bytes / 1073741824" | bc -l)" "$load_s"
done

if [ -z "${SKIP_APPENDS:-}" ]; then
  echo
  echo "durable single-event appends (events/s):"
  $PSQL -c "CREATE DATABASE appends" postgres
  for backend in sqlite postgres; do
    [ "$backend" = sqlite ] && target="$WORK/a.db" || target="$PG_BASE/appends"
    "$BENCH" appends "$backend" "$target" "${APPENDS_PER_CALLER:-200}" |
      while IFS=$'\t' read -r b what n rate; do printf '%-9s %-28s %7s %10s/s\n' "$b" "$what" "$n" "$rate"; done
  done
fi
