#!/usr/bin/env bash
# Items models vs implicit (PyPI) on a public interactions table: MovieLens 100K as the RecBole wheel ships it
# (recbole/dataset_example/ml-100k/ml-100k.inter; 943 users, 1682 movies, 100 000 ratings). The 943 users become
# members who granted a movie-recommendation purpose (bench/items/policy.toml), their ratings a declared table
# (bench/items/sources.toml); the table goes through `ledger import`, `gate`, then `train --model items` at S = 1
# and S = 8 (registered, so unlearning and the audit reach them). implicit's AlternatingLeastSquares fits the SAME
# S = 1 training matrix (exported from our split, bench/learn/implicit_als.py), matched to our hyper-parameters and
# with its own defaults; every list is scored by one binary with the same code (recs::rank_scores, 95 % intervals
# from interval::mean_ci over members), plus popularity.
#
#   bench/items/run.sh [WORK]    (default WORK: target/tmp/bench-items; the data set is never committed)
#
# Env: THREADS (2, for both engines), REPS (3: fit times are the best of REPS).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=${1:-target/tmp/bench-items}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
THREADS=${THREADS:-2}
REPS=${REPS:-3}
VENV=bench/.venv-items
DATA=$WORK/data
TABLES=$DATA/ml-100k
DS=$DATA/datasets/movie_recommendations
EXPORT=$WORK/export
OUT=$WORK/results
PURPOSE=train_ai_system.movie_recommendations
export OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import implicit, scipy, numpy, pyarrow' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet implicit scipy numpy pyarrow
fi

# The data set: inside the RecBole wheel (downloaded once, never installed; only the one file is unpacked).
INTER=$WORK/ml-100k.inter
if [ ! -f "$INTER" ]; then
    "$VENV/bin/pip" download --quiet --no-deps recbole==1.2.1 -d "$WORK/wheel"
    "$VENV/bin/python" - "$WORK/wheel" "$INTER" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/recbole-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("recbole/dataset_example/ml-100k/ml-100k.inter"))
PY
fi

cargo build --release -q
BIN=$ROOT/target/release/consentry
cargo bench -p consentry-learn --bench items --no-run 2>/dev/null
BENCH=$(cargo bench -p consentry-learn --bench items --no-run --message-format=json 2>/dev/null \
    | "$VENV/bin/python" -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "items" and m.get("executable"):
        print(m["executable"])' | tail -1)

# The data directory: the movie policy in force, the members and their grants imported, the table gated.
if [ ! -f "$DS/manifest.json" ]; then
    rm -rf "$DATA"
    mkdir -p "$TABLES"
    cp bench/items/policy.toml "$DATA/policy.toml"
    cp bench/items/sources.toml "$TABLES/sources.toml"
    "$VENV/bin/python" bench/items/prepare.py "$INTER" "$TABLES"
    "$BIN" --data "$DATA" --quiet policy check "$DATA/policy.toml"
    "$BIN" --data "$DATA" --quiet ledger init
    "$BIN" --data "$DATA" ledger import --members "$TABLES/members.parquet" --choices "$TABLES/choices.parquet"
    "$BIN" --data "$DATA" gate --purpose "$PURPOSE" --sources "$TABLES/sources.toml" --out "$DS"
fi
ITEMS=(--model items --dataset "$DS" --table ratings --item-column movie_id --weight-column rating
    --time-column rated_at --threads "$THREADS")
for s in 1 8; do
    if [ ! -f "$DATA/models/items-s$s/model.json" ]; then
        "$BIN" --data "$DATA" train "${ITEMS[@]}" --shards "$s" --out "$DATA/models/items-s$s"
    fi
done
# One member's recommendations, served through the registry's serving guard.
"$BIN" --data "$DATA" recommend --model "$DATA/models/items-s8" --member 1 --k 5

mkdir -p "$OUT"
"$BENCH" --mode export --model "$DATA/models/items-s1" --out "$EXPORT"
rm -f "$OUT"/*.best
best() { # file seconds: keep the smaller
    if [ ! -f "$1" ] || awk -v a="$2" -v b="$(cat "$1")" 'BEGIN{exit !(a<b)}'; then echo "$2" >"$1"; fi
}
for r in $(seq "$REPS"); do
    echo "== round $r of $REPS" >&2
    "$VENV/bin/python" bench/learn/implicit_als.py "$EXPORT" "$OUT/implicit_matched.txt" --threads "$THREADS" \
        >"$OUT/implicit_matched.out"
    best "$OUT/implicit_matched.best" "$(awk '/^RESULT fit/ {print $3}' "$OUT/implicit_matched.out")"
    # implicit's defaults: factors 100, regularization 0.01, alpha 1 on the raw weights, 15 iterations.
    "$VENV/bin/python" bench/learn/implicit_als.py "$EXPORT" "$OUT/implicit_defaults.txt" --threads "$THREADS" \
        --factors 100 --reg 0.01 --alpha 1 --iterations 15 --conf implicit >"$OUT/implicit_defaults.out"
    best "$OUT/implicit_defaults.best" "$(awk '/^RESULT fit/ {print $3}' "$OUT/implicit_defaults.out")"
    "$BENCH" --mode time --model "s1=$DATA/models/items-s1" --model "s8=$DATA/models/items-s8" \
        --threads "$THREADS" --reps 1 2>"$OUT/time.err"
    for s in 1 8; do best "$OUT/s$s.best" "$(awk -v n="s$s" '$1 == "RESULT" && $3 == n {print $4}' "$OUT/time.err")"; done
done
"$BENCH" --mode score --threads "$THREADS" \
    --model "s1=$DATA/models/items-s1" --model "s8=$DATA/models/items-s8" \
    --recs "implicit_matched=$OUT/implicit_matched.txt" --recs "implicit_defaults=$OUT/implicit_defaults.txt" \
    --label "implicit_matched=implicit ALS, our hyper-parameters (factors 48, reg 0.5, c = 1 + 8w, 12 it)" \
    --label "implicit_defaults=implicit ALS, its defaults (factors 100, reg 0.01, c = w, 15 it)" \
    --fit "s1=$(cat "$OUT/s1.best")" --fit "s8=$(cat "$OUT/s8.best")" \
    --fit "implicit_matched=$(cat "$OUT/implicit_matched.best")" \
    --fit "implicit_defaults=$(cat "$OUT/implicit_defaults.best")" \
    | tee "$OUT/score.md"
echo
echo "fit s: ours = the shard-training phase (train_parallel over the prepared shards), implicit = fit(); both on" \
    "$THREADS threads, best of $REPS. Intervals: 95 % bootstrap over held-out members (interval::mean_ci)."
"$VENV/bin/python" -c 'import implicit; print("implicit", implicit.__version__)'
uptime
