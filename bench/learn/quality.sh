#!/usr/bin/env bash
# Recommenders against their baseline and the synthetic world's oracle (issue 18): for each network, a table per
# model (job-recs plain and joint DP at ε = 1, content), at S = 1 and S = 8 — model, popularity, oracle and
# model ÷ oracle with 95 % bootstrap intervals over the evaluated members, all on the model's own held-out split.
#
#   bench/learn/quality.sh [ROOT]    (default ROOT: target/tmp/bench-quality; each demo network is generated once)
#
# Env: NETWORKS ("20000:42 20000:7 100000:42" — members:seed; seed 42 is the demo's default, the one the content
# scorer's weights were chosen on; 7 was never looked at while tuning), THREADS (2), EVAL (2000 held-out members,
# as `train` evaluates), EPS (1; 0 skips the DP model), SHARDS (1,8; bench/learn/shards.sh asks for 8,32,128).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${1:-target/tmp/bench-quality}
NETWORKS=${NETWORKS:-"20000:42 20000:7 100000:42"}
THREADS=${THREADS:-2}
EVAL=${EVAL:-2000}
EPS=${EPS:-1}
SHARDS=${SHARDS:-1,8}

cargo build --release -q -p consentry
BIN=$(cargo bench -p consentry-learn --bench learn --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "learn" and m.get("executable"):
        print(m["executable"])' | tail -1)

mkdir -p "$ROOT"
for net in $NETWORKS; do
    members=${net%%:*}
    seed=${net##*:}
    D=$ROOT/m$members-s$seed
    if [ ! -f "$D/network/synth.json" ]; then
        target/release/consentry --data "$D" demo --members "$members" --seed "$seed" > "$D.demo.log"
    fi
    "$BIN" --mode quality --data "$D" --shards "$SHARDS" --threads "$THREADS" --eval-limit "$EVAL" --dp-epsilon "$EPS" \
        --work "$D/bench-models" 2>/dev/null
done
