#!/usr/bin/env bash
# What more shards cost (issue 23): Recall@20 and training time of job recommendations and content suggestions at
# S = 8, 32 and 128 (bench/learn/quality.sh's tables, against popularity and the oracle), at 100 000 members. The
# shard rule (`consentry_learn::train::shards_for`) is built on these and on bench/learn/unlearn.sh's costs; figures
# and the rule in bench/learn/SHARDS.md.
#
#   bench/learn/shards.sh [ROOT]    (default ROOT: target/tmp/bench-shards; each demo network is generated once)
#
# Env: NETWORKS ("100000:42"), SHARDS (8,32,128), THREADS (2), EVAL (2000). At a million members the oracle's
# scoring takes over 20 minutes and 16 GB per row; SHARDS.md's 1 M rows come from
# `MEMBERS=1000000 SHARDS=S REPS=1 bench/learn/unlearn.sh` (the same training, evaluated without the oracle).
set -euo pipefail
cd "$(dirname "$0")/../.."
NETWORKS=${NETWORKS:-"100000:42"} SHARDS=${SHARDS:-8,32,128} EPS=0 exec bench/learn/quality.sh \
    "${1:-target/tmp/bench-shards}"
