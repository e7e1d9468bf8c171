#!/usr/bin/env bash
# What more shards cost (issue 23): Recall@20 and training time of job recommendations and content suggestions at
# S = 8, 32 and 128, at 100 000 and 1 000 000 members, each trained as `train` does and evaluated on its own
# held-out split beside the popularity baseline and the synthetic world's oracle. The shard rule
# (`consentry_learn::train::shards_for`) picks among these from the members and the withdrawal deadline.
#
#   bench/learn/shards.sh [ROOT]    (default ROOT: target/tmp/bench-shards; each demo network is generated once)
#
# Env: NETWORKS ("100000:42 1000000:42", members:seed), SHARDS (8,32,128), THREADS (2), EVAL (2000 held-out
# members). About 35 min on 2 cores, most of it the 1 M-member network (its demo run alone takes about 7 min).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${1:-target/tmp/bench-shards}
NETWORKS=${NETWORKS:-"100000:42 1000000:42"}
SHARDS=${SHARDS:-8,32,128}
THREADS=${THREADS:-2}
EVAL=${EVAL:-2000}

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
    if [ ! -f "$D/datasets/job_recommendations/manifest.json" ]; then
        target/release/consentry --data "$D" demo --members "$members" --seed "$seed" > "$D.demo.log" || true
    fi
    "$BIN" --mode quality --data "$D" --models job-recs,content --shards "$SHARDS" --threads "$THREADS" \
        --eval-limit "$EVAL" --dp-epsilon 0 --work "$D/bench-models" 2>&1 | grep -v '^RESULT'
done
uptime
