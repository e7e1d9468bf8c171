#!/usr/bin/env bash
# Load benchmark of `consentry serve` on loopback (issue 15's targets): member consent reads with wrk, durable
# consent writes from 64 clients on SQLite and on PostgreSQL with the std-only load generator in loadgen/, and a
# SIGKILL of the server during write load (every acknowledged write must be in the ledger, exactly once, and
# `consentry ledger verify` must pass). Prints a table; bench/serve/README.md records the figures.
#
#   bench/serve/run.sh                      # everything
#   BACKENDS=sqlite SECONDS_PER_RUN=5 bench/serve/run.sh
#
# Knobs (environment): MEMBERS (10000), TOKENS (members with a token, 2000), SECONDS_PER_RUN (10),
# READ_CONNECTIONS (64), WRITERS (64), BACKENDS ("sqlite postgres"), CONSENTRY_BIN (skip the build; use this
# binary), SERVE_WORKERS (tokio workers of the server, 2).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

HERE="$ROOT/bench/serve"
MEMBERS=${MEMBERS:-10000}
TOKENS=${TOKENS:-2000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
READ_CONNECTIONS=${READ_CONNECTIONS:-64}
WRITERS=${WRITERS:-64}
BACKENDS=${BACKENDS:-"sqlite postgres"}
SERVE_WORKERS=${SERVE_WORKERS:-2}
PURPOSE=train_ai_system.job_recommendations
NOTICE=1

build_consentry
LOADGEN=$(build_tool "$HERE/loadgen" loadgen consentry-loadgen)
if ! command -v wrk > /dev/null; then
  apt-get install -y wrk > /dev/null
fi

WORK=$(mktemp -d /tmp/consentry-bench-XXXXXX)
SERVER_PID=""
PG_CTL=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2> /dev/null || true
  [ -n "$PG_CTL" ] && $PG_CTL stop -m immediate > /dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
RESULTS="$WORK/results.txt"
printf 'backend\tload\tclients\tok/s\tp50_ms\tp99_ms\tnon_2xx\terrors\n' > "$RESULTS"

# A data directory with MEMBERS synthetic members and their consent choices imported; $1 = dir, $2 = database URL
# or empty. Writes "$1/tokens.txt" (MEMBER TOKEN per line) for the first TOKENS members.
make_data() {
  local dir=$1 db=${2:+--database=$2}
  "$CONSENTRY_BIN" --data "$dir" synth --members "$MEMBERS" -q
  "$CONSENTRY_BIN" --data "$dir" $db ledger init -q
  "$CONSENTRY_BIN" --data "$dir" $db ledger import --choices "$dir/network/consent_choices.parquet" -q
  export CONSENTRY_BIN
  seq 1 "$TOKENS" | xargs -P 4 -I{} sh -c "echo {} \$(\"\$CONSENTRY_BIN\" --data '$dir' $db token --member {} --ttl 2h -q)" \
    > "$dir/tokens.txt"
}

# Starts the server on a free port, or on $3 (HOST:PORT); sets SERVER_PID and ADDR.
start_server() {
  local dir=$1 db=${2:+--database=$2} at=${3:-127.0.0.1:0}
  rm -f "$WORK/addr"
  "$CONSENTRY_BIN" --data "$dir" $db -q serve --addr "$at" --workers "$SERVE_WORKERS" > "$WORK/addr" 2>> "$WORK/serve.log" &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    [ -s "$WORK/addr" ] && break
    sleep 0.05
  done
  ADDR=$(head -1 "$WORK/addr")
  [ -n "$ADDR" ] || { echo "the server did not start; see $WORK/serve.log" >&2; exit 1; }
  # Opens the ledger (and verifies it) before the clock starts.
  curl -sf -o /dev/null "$ADDR/readyz"
  curl -sf -o /dev/null -H "Authorization: Bearer $(head -1 "$dir/tokens.txt" | cut -d' ' -f2)" "$ADDR/v1/me/consents"
}

stop_server() {
  kill "$SERVER_PID" 2> /dev/null || true
  wait "$SERVER_PID" 2> /dev/null || true
  SERVER_PID=""
}

# Turns a loadgen figures line into a table row: $1 = backend, $2 = load name.
row() {
  sed -E 's/.*clients=([0-9]+).*rps=([0-9]+) p50_ms=([0-9.]+).*p99_ms=([0-9.]+).*non_2xx=([0-9]+) errors=([0-9]+).*/\1\t\2\t\3\t\4\t\5\t\6/' |
    awk -v b="$1" -v l="$2" '{print b "\t" l "\t" $0}' >> "$RESULTS"
}

reads() {
  local backend=$1 dir=$2
  wrk -t2 -c"$READ_CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency -s "$HERE/reads.lua" "$ADDR" -- "$dir/tokens.txt" \
    > "$WORK/wrk.txt"
  cat "$WORK/wrk.txt" >&2
  local rps p50 p99 non2xx errors
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$WORK/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$WORK/wrk.txt")
  errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$WORK/wrk.txt")
  printf '%s\tGET /v1/me/consents (wrk)\t%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$READ_CONNECTIONS" "$rps" "$p50" "$p99" \
    "${non2xx:-0}" "${errors:-0}" >> "$RESULTS"
}

writes() {
  local backend=$1 dir=$2
  "$LOADGEN" writes "$ADDR" "$dir/tokens.txt" "$WRITERS" "$SECONDS_PER_RUN" "$PURPOSE" "$NOTICE" "$WORK/acks-$backend" |
    tee -a "$WORK/loadgen.log" | row "$backend" "PUT /v1/me/consents/… (durable)"
  "$LOADGEN" check "$ADDR" "$dir/tokens.txt" "$WORK/acks-$backend" >&2 ||
    echo "$backend: an acknowledged write is missing or duplicated" >> "$RESULTS"
}

# Write load; SIGKILL of the server mid-stream; restart; every acknowledged write present once; ledger verify.
kill_test() {
  local backend=$1 dir=$2 db=${3:-}
  local acks="$WORK/acks-kill-$backend"
  "$LOADGEN" writes "$ADDR" "$dir/tokens.txt" "$WRITERS" 10 "$PURPOSE" "$NOTICE" "$acks" > "$WORK/kill-load.txt" &
  local load=$!
  sleep 4
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2> /dev/null || true
  local before
  before=$(wc -l < "$acks")
  sleep 0.5
  local t0=$SECONDS
  # On the same port: the clients reconnect to where they were writing.
  start_server "$dir" "$db" "${ADDR#http://}"
  echo "$backend: restarted in $((SECONDS - t0)) s" >&2
  wait "$load"
  local verdict=ok
  "$LOADGEN" check "$ADDR" "$dir/tokens.txt" "$acks" >&2 || verdict=FAILED
  stop_server
  "$CONSENTRY_BIN" --data "$dir" ${db:+--database=$db} -q ledger verify || verdict=FAILED
  printf '%s\tSIGKILL during writes\t%s\tacked before kill: %s, after restart: %s\t\t\t\t%s\n' "$backend" "$WRITERS" \
    "$before" "$(($(wc -l < "$acks") - before))" "$verdict" >> "$RESULTS"
  start_server "$dir" "$db"
}

for backend in $BACKENDS; do
  dir="$WORK/data-$backend"
  url=""
  if [ "$backend" = postgres ]; then
    start_postgres || continue
    url=$PG_URL
  fi
  make_data "$dir" "$url"
  start_server "$dir" "$url"
  reads "$backend" "$dir"
  writes "$backend" "$dir"
  kill_test "$backend" "$dir" "$url"
  stop_server
done

echo
echo "consentry serve on loopback, $(nproc) cores shared with the load generator; $MEMBERS members, $TOKENS tokens"
column -t -s $'\t' "$RESULTS"
