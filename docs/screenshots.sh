#!/usr/bin/env bash
# Regenerates the README's screenshots (docs/images/report.png, docs/images/privacy-centre.png) from a fresh demo:
# the report as `consentry demo` writes it, and the privacy centre of a member who chose, signed in through a token
# link on a `consentry serve` of the same data directory. Debian's Chromium takes them headless (installed when
# missing); no Node. The demo is small and seeded, so the pictures change only when the product does.
#
#   docs/screenshots.sh              (CONSENTRY_BIN: a binary to use instead of building this tree's release one)
#
# Env: MEMBERS (3000), SEED (42), KEEP=1 keeps the data directory and prints where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MEMBERS=${MEMBERS:-3000}
SEED=${SEED:-42}
OUT=docs/images

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the screenshots"
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ -z "${CONSENTRY_BIN:-}" ]; then
  cargo build --release -q -p consentry
  CONSENTRY_BIN=$ROOT/target/release/consentry
fi

WORK=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  if [ "${KEEP:-}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
DATA=$WORK/data
mkdir -p "$OUT"

# A fresh browser profile per shot, nothing of the user's; the flags of e2e/harness.mjs.
shot() { # URL FILE WIDTH HEIGHT
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --user-data-dir="$WORK/profile-$RANDOM" \
    --force-device-scale-factor=1 --window-size="$3,$4" --virtual-time-budget=10000 --screenshot="$ROOT/$2" "$1" \
    >"$WORK/chromium.log" 2>&1 || { cat "$WORK/chromium.log" >&2; exit 1; }
  echo "wrote $2 ($(du -k "$ROOT/$2" | cut -f1) KiB)"
}

echo "demo: $MEMBERS members, seed $SEED"
"$CONSENTRY_BIN" demo --data "$DATA" --members "$MEMBERS" --seed "$SEED" --quiet
shot "file://$DATA/report.html" "$OUT/report.png" 1280 1100

# The service on a free port (it prints its address as its first line), then a member who granted a purpose.
"$CONSENTRY_BIN" --data "$DATA" serve --addr 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
for _ in $(seq 1 100); do
  [ -s "$WORK/serve.out" ] && break
  sleep 0.1
done
URL=$(grep -o 'http://[0-9.:]*' "$WORK/serve.out" | head -1)
[ -n "$URL" ] || { echo "the service did not start:" >&2; cat "$WORK/serve.err" >&2; exit 1; }
# The first member the live job-recommendation model serves (`recommend` refuses anyone who does not allow it now).
MEMBER=
for model in "$DATA"/models/job-recs*; do
  for m in $(seq 1 500); do
    if "$CONSENTRY_BIN" --data "$DATA" recommend --model "$model" --member "$m" --k 1 >/dev/null 2>&1; then
      MEMBER=$m
      break 2
    fi
  done
done
[ -n "$MEMBER" ] || { echo "no member of the first 500 is served by a live job-recs model" >&2; exit 1; }
LINK=$("$CONSENTRY_BIN" --data "$DATA" token --member "$MEMBER" --ttl 10m --link "$URL")
shot "$LINK" "$OUT/privacy-centre.png" 1280 1100
