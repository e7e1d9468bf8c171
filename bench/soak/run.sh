#!/usr/bin/env bash
# Soak benchmark of `consentry serve` on PostgreSQL (issue 19, "kill and restart under load"); not run by CI.
#
# Builds the release binary and the driver (bench/soak/driver, its own cargo workspace), starts a throwaway
# PostgreSQL cluster (initdb/pg_ctl in a temporary directory), makes a data directory on it (`consentry demo
# --members 2000`'s steps: ledger, datasets, models), member tokens, an operator key and a webhook configuration, then
# lets the driver run the service under mixed member load for MINUTES with a SIGKILL of the service every 2–8 s
# (seeded), a PostgreSQL restart (`pg_ctl restart -m immediate`) halfway, gate and unlearning runs now and then,
# and a webhook receiver. At the end: every acknowledged write present exactly once, the webhook delivered every
# outbox row, then `consentry ledger verify`, a last `consentry unlearn` and `consentry audit` must pass.
# Prints a table and writes bench/soak/RESULTS.md (RESULTS=path to write elsewhere, RESULTS=- not at all).
#
#   bench/soak/run.sh                        # 30 minutes
#   MINUTES=3 bench/soak/run.sh              # a short run
#
# Knobs (environment): MINUTES (30), SEED (19), MEMBERS (demo size, 2000), TOKENS (members with a token, 300),
# WRITERS (6), READERS (3), THINK_MS (pause between a client's requests, 0..N ms, 20), KILL_MIN_MS/KILL_MAX_MS
# (2000/8000), JOBS_MIN_S/JOBS_MAX_S (pause between gate/unlearning runs, 10/30), CONSENTRY_BIN (skip the build; use this binary), KEEP=1 (keep the temporary directory).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

HERE="$ROOT/bench/soak"
MINUTES=${MINUTES:-30}
SEED=${SEED:-19}
MEMBERS=${MEMBERS:-2000}
TOKENS=${TOKENS:-300}
WRITERS=${WRITERS:-6}
READERS=${READERS:-3}
THINK_MS=${THINK_MS:-20}
KILL_MIN_MS=${KILL_MIN_MS:-2000}
KILL_MAX_MS=${KILL_MAX_MS:-8000}
JOBS_MIN_S=${JOBS_MIN_S:-10}
JOBS_MAX_S=${JOBS_MAX_S:-30}
RESULTS=${RESULTS:-$HERE/RESULTS.md}

build_consentry
DRIVER=$(build_tool "$HERE/driver" soak consentry-soak)

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates bench/soak || echo "+changes")
WORK=$(mktemp -d /tmp/consentry-soak-XXXXXX)
OUT="$WORK/out"
mkdir -p "$OUT"
DRIVER_PID=""
PG_CTL=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$DRIVER_PID" ] && kill "$DRIVER_PID" 2> /dev/null && wait "$DRIVER_PID" 2> /dev/null || true
  # The service the driver started last (the driver writes its pid on every start).
  [ -s "$OUT/serve.pid" ] && kill -9 "$(cat "$OUT/serve.pid")" 2> /dev/null || true
  [ -n "$PG_CTL" ] && $PG_CTL stop -m immediate > /dev/null 2>&1 || true
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The throwaway cluster (exit 2 when PostgreSQL is not installed).
start_postgres -E UTF8 --locale=C
DB=$PG_URL
echo "PostgreSQL on 127.0.0.1:$PG_PORT in $PG_DIR" >&2

# The data directory: the demo on PostgreSQL (ledger, datasets, models in the registry), tokens, an operator key.
DATA="$WORK/data"
# (`demo` is SQLite-only: its steps one by one, on PostgreSQL.)
t0=$SECONDS
C() { "$CONSENTRY_BIN" --data "$DATA" --database "$DB" -q "$@"; }
C synth --members "$MEMBERS"
C ledger init
C ledger import --choices "$DATA/network/consent_choices.parquet"
for p in job_recommendations content_suggestions; do
  C gate --purpose "train_ai_system.$p" --out "$DATA/datasets/$p"
done
C train --model job-recs
C train --model content
echo "data directory ($MEMBERS members, job-recs and content models) on PostgreSQL in $((SECONDS - t0)) s" >&2
export CONSENTRY_BIN
seq 1 "$TOKENS" | xargs -P 2 -I{} sh -c "echo {} \$(\"\$CONSENTRY_BIN\" --data '$DATA' --database '$DB' -q token --member {} --ttl 6h)" \
  > "$WORK/tokens.txt"
OPERATOR=$("$CONSENTRY_BIN" --data "$DATA" --database "$DB" -q keys create --role operator --name soak | head -n 1)
HOOK_PORT=$(free_port)
SERVE_PORT=$(free_port)
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" > "$WORK/hook.secret"
cat > "$WORK/consentry.toml" << EOF
[[webhooks]]
name = "soak"
url = "http://127.0.0.1:$HOOK_PORT/hook"
secret_file = "$WORK/hook.secret"
retry_initial_ms = 100
retry_max_ms = 2000
timeout_ms = 5000
EOF

"$DRIVER" run --bin "$CONSENTRY_BIN" --data "$DATA" --database "$DB" --config "$WORK/consentry.toml" \
  --port "$SERVE_PORT" --hook-port "$HOOK_PORT" --tokens "$WORK/tokens.txt" --operator-key "$OPERATOR" \
  --out "$OUT" --minutes "$MINUTES" --seed "$SEED" --writers "$WRITERS" --readers "$READERS" \
  --think-ms "$THINK_MS" --kill-min-ms "$KILL_MIN_MS" --kill-max-ms "$KILL_MAX_MS" \
  --jobs-min-s "$JOBS_MIN_S" --jobs-max-s "$JOBS_MAX_S" \
  --pg-restart "$PG_CTL restart -m immediate -w -t 120" &
DRIVER_PID=$!
verdict=0
wait "$DRIVER_PID" || verdict=$?
DRIVER_PID=""

# The ledger and the whole system, checked by the CLI against the same database after the soak.
check() {
  local name=$1
  shift
  local t=$SECONDS
  if "$CONSENTRY_BIN" --data "$DATA" --database "$DB" "$@" > "$OUT/$name.txt" 2>&1; then
    echo "| \`consentry $*\` | ok ($((SECONDS - t)) s) |" >> "$OUT/checks.md"
  else
    echo "| \`consentry $*\` | **FAILED** (exit $?; $((SECONDS - t)) s): $(tail -n 3 "$OUT/$name.txt" | tr '\n|' ' /') |" >> "$OUT/checks.md"
    verdict=1
  fi
}
printf '| after the soak | outcome |\n|---|---|\n' > "$OUT/checks.md"
check verify ledger verify
check unlearn unlearn
check audit audit
EVENTS=$(grep -o '[0-9][0-9,]* events' "$OUT/verify.txt" | head -1 || true)

{
  echo "Run: \`MINUTES=$MINUTES SEED=$SEED bench/soak/run.sh\`, finished $(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
    "\`$COMMIT\`, $(nproc) cores, niceness $(nice), load average before the run: $LOADAVG."
  echo
  cat "$OUT/summary.md" 2> /dev/null || echo "(the driver wrote no summary: exit $verdict)"
  echo
  cat "$OUT/checks.md"
  [ -n "$EVENTS" ] && echo && echo "Ledger after the soak: $EVENTS."
} > "$WORK/report.md"
echo
cat "$WORK/report.md"
if [ "$RESULTS" != "-" ]; then
  cp "$WORK/report.md" "$RESULTS.new"
  mv "$RESULTS.new" "$RESULTS"
  cp "$OUT/summary.json" "${RESULTS%.md}.json" 2> /dev/null || true
  echo "written: $RESULTS" >&2
fi
if [ "$verdict" != 0 ]; then
  echo "soak FAILED (serve.log, jobs.log, journal.txt in $OUT; KEEP=1 keeps them)" >&2
fi
exit "$verdict"
