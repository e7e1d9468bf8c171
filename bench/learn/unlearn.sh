#!/usr/bin/env bash
# The cost of exact unlearning (issue: lineage and unlearning): one member's withdrawal and a batch of 1 000
# withdrawals against a full retrain, on the 100 k-member demo's job-recommendation dataset (made once, shared with
# bench/learn/run.sh). No Python needed.
#
#   bench/learn/unlearn.sh [DATA]    (default DATA: target/tmp/bench-learn)
#
# Env: MEMBERS (100000), MODEL (job-recs), SHARDS (8), THREADS (2), BATCH (1000), REPS (3).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=$(realpath -m "${1:-target/tmp/bench-learn}")  # absolute: cargo bench runs the binary in the crate's directory
MEMBERS=${MEMBERS:-100000}
MODEL=${MODEL:-job-recs}
case "$MODEL" in
    job-recs) DS=$DATA/datasets/job_recommendations ;;
    content) DS=$DATA/datasets/content_suggestions ;;
    replies) DS=$DATA/datasets/reply_suggestions ;;
    *) echo "MODEL must be job-recs, content or replies" >&2; exit 2 ;;
esac
if [ ! -f "$DS/manifest.json" ]; then
    cargo run --release -q -- --data "$DATA" demo --members "$MEMBERS"
fi
cargo bench -q -p consentry-learn --bench unlearn -- --dataset "$DS" --model "$MODEL" --shards "${SHARDS:-8}" \
    --threads "${THREADS:-2}" --batch "${BATCH:-1000}" --reps "${REPS:-3}" --work "$DATA/unlearn-$MODEL"
uptime
