#!/usr/bin/env bash
# Withdrawal → removal at a million members (issue 23): a steady stream of withdrawals (1 per second for 10 minutes)
# and then a burst of 1 000 in one second, against the unlearning worker as `consentry unlearn --watch` runs it (the
# batch window a quarter of the deadline), with the models the demo trains for that deadline (the shard rule).
# Prints p50 / p99 / max withdrawal → removal per model against the 60-second deadline.
#
#   bench/learn/withdrawals.sh [ROOT]    (default ROOT: target/tmp/bench-withdrawals)
#
# Env: MEMBERS (1000000), MINUTES (10), RATE (1 per second), BURST (1000), DEADLINE (60), THREADS (0 = all cores).
# The demo network is made once in ROOT/demo (about 7 min at 1 M members); each run works on a copy of it (hard
# links for the immutable files, a real copy of the database), since it withdraws members for good.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(realpath -m "${1:-target/tmp/bench-withdrawals}")  # absolute: cargo bench runs in the crate's directory
MEMBERS=${MEMBERS:-1000000}
DEADLINE=${DEADLINE:-60}
DEMO=$ROOT/demo
RUN=$ROOT/run

cargo build --release -q -p consentry
cargo bench -q -p consentry-app --bench withdrawals --no-run 2>/dev/null
mkdir -p "$ROOT"
if [ ! -d "$DEMO/models" ]; then
    # The demo's own audit may fail (a deadline missed); the data directory is what this needs.
    target/release/consentry --data "$DEMO" demo --members "$MEMBERS" --deadline "$DEADLINE" > "$ROOT/demo.log" || true
fi
rm -rf "$RUN"
mkdir -p "$RUN"
cp -al "$DEMO/." "$RUN/"   # DEMO may be a link to an existing demo's directory: its contents, never the link
for f in "$RUN"/ledger.db*; do
    rm -f "$f"
    cp "$DEMO/$(basename "$f")" "$f"
done
cargo bench -q -p consentry-app --bench withdrawals -- --data "$RUN" --minutes "${MINUTES:-10}" --rate "${RATE:-1}" \
    --burst "${BURST:-1000}" --deadline "$DEADLINE" --threads "${THREADS:-0}"
uptime
