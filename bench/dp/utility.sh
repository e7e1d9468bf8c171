#!/usr/bin/env bash
# Utility of differentially private job recommendations (issue: DP): Recall@20 on the held-out split at
# ε ∈ {0.5, 1, 2, 4, 8} against the non-private model (ε = ∞), at S = 1 and S = 8 shards, as a markdown table
# (DIR/results/utility.md) and an SVG plot (DIR/results/utility.svg).
#
#   bench/dp/utility.sh [DIR]     (default DIR: target/tmp/dp-util; the demo network is generated once)
#
# Env: MEMBERS (20000: the demo's default network), SHARDS (1,8), EPSILONS (0.5,1,2,4,8), CLIP (1), THREADS (2),
# OWN (3: weight of the member's own token match, RecHyper::dp_own_tokens; OWN=0 shows the released part alone).
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=${1:-target/tmp/dp-util}
MEMBERS=${MEMBERS:-20000}
DATA=$DIR/data
DS=$DATA/datasets/job_recommendations
if [ ! -f "$DS/manifest.json" ]; then
    cargo run --release -q -p consentry -- --data "$DATA" demo --members "$MEMBERS" >/dev/null
fi
ROOT=$(pwd)
cargo bench -q -p consentry-learn --bench dp_utility -- \
    --dataset "$ROOT/$DS" --out "$ROOT/$DIR/results" \
    --shards "${SHARDS:-1,8}" --epsilons "${EPSILONS:-0.5,1,2,4,8}" --clip "${CLIP:-1}" --threads "${THREADS:-2}" \
    --own-tokens "${OWN:-3}"
