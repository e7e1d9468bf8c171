#!/usr/bin/env bash
# Reply suggestions (issue 18): model, most-frequent baseline, oracle (the synthetic network's true reply-intent
# distribution) and model ÷ oracle, with 95 % CIs, plain and DP-SGD (ε = 1), at S = 8 (the demo's) and S = 1, on the
# default demo (20 000 members) and on 100 000 members. No Python needed.
#
#   bench/learn/replies.sh [DIR]    (default DIR: target/tmp/bench-replies; each demo network is generated once)
#
# Env: SIZES (20000,100000), SEED (42: the network's; use another for a sample nobody tuned on), SHARDS (8,1),
# EPSILON (1).
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-target/tmp/bench-replies}
SEED=${SEED:-42}
mkdir -p "$DIR"
cargo build --release -q -p consentry
for n in $(echo "${SIZES:-20000,100000}" | tr ',' ' '); do
    DATA=$DIR/m$n-s$SEED
    if [ ! -f "$DATA/datasets/reply_suggestions/manifest.json" ]; then
        ./target/release/consentry --data "$DATA" demo --members "$n" --seed "$SEED" >"$DIR/demo-$n-$SEED.log"
    fi
    ROOT=$(pwd)
    cargo bench -q -p consentry-app --bench replies -- --data "$ROOT/$DATA" --shards "${SHARDS:-8,1}" \
        --epsilon "${EPSILON:-1}" | tee "$DIR/replies-$n-$SEED.md"
done
