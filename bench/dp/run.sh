#!/usr/bin/env bash
# consentry-dp's accountant vs Google's dp_accounting (PyPI), same grid, both conversions (issue: DP accountant).
#
#   bench/dp/run.sh [DIR]        (default DIR: target/tmp/bench-dp)
#   RANDOM_POINTS=400 bench/dp/run.sh
#
# Grid: q in {1e-4 .. 1}, sigma in {0.5 .. 20}, steps in {1 .. 1e5}, delta in {1e-5, 1e-8}, plus random points
# (log-uniform q, sigma, steps; delta in {1e-5, 1e-6, 1e-8}). Prints the maximum relative difference of ε
# (improved and classic) and of the one-step RDP curves; exits 1 if our ε is ever below dp_accounting's by more
# than 1e-6 relative. `--fixture` refreshes the committed cargo-test snapshot instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=bench/.venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import dp_accounting' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet dp-accounting
fi

if [ "${1:-}" = "--fixture" ]; then
    "$VENV/bin/python" bench/dp/compare.py --fixture crates/consentry-dp/tests/fixtures/dp_accounting_grid.json
    exit 0
fi

DIR=${1:-target/tmp/bench-dp}
mkdir -p "$DIR"
REF="$DIR/reference.json"
if [ ! -f "$REF" ] || [ bench/dp/compare.py -nt "$REF" ]; then
    "$VENV/bin/python" bench/dp/compare.py --random "${RANDOM_POINTS:-400}" "$REF"
fi
cargo run --quiet --release -p consentry-dp --example compare -- "$REF"
