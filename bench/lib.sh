# What the service benchmarks share (bench/serve/run.sh, bench/soak/run.sh), sourced after their `set -euo pipefail`:
# the repository root, the release binary, a side workspace's build, free ports and a throwaway PostgreSQL cluster.
#
# Sets ROOT (the repository) and exports CARGO_TARGET_DIR (default: ROOT/target).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# Builds the release `consentry` and sets CONSENTRY_BIN to it, unless CONSENTRY_BIN is set (then it is used as is).
build_consentry() {
  if [ -z "${CONSENTRY_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -q -p consentry) || return
    CONSENTRY_BIN="$CARGO_TARGET_DIR/release/consentry"
  fi
}

# Builds the cargo workspace in $1 (a bench tool of its own, offline, release) into CARGO_TARGET_DIR/$2 and prints
# the path of its binary $3.
build_tool() {
  local dir=$1 target=$CARGO_TARGET_DIR/$2 bin=$3
  (cd "$dir" && CARGO_TARGET_DIR="$target" cargo build --release -q --offline) || return
  echo "$target/release/$bin"
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A throwaway PostgreSQL cluster in $WORK/pg on a free port of 127.0.0.1 (fsync and synchronous_commit on, the
# defaults); arguments go to initdb. Sets PG_DIR, PG_PORT, PG_URL and PG_CTL (`pg_ctl` with the data directory and
# the log: the caller stops the cluster with `$PG_CTL stop -m immediate`). Returns 2 when PostgreSQL is not
# installed, 1 when it does not start.
start_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -1)
  [ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; return 2; }
  PG_DIR="$WORK/pg"
  mkdir -p "$PG_DIR"
  local as=""
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: the cluster belongs to the postgres user, who must reach it.
    chmod 755 "$WORK"
    chown postgres "$PG_DIR"
    as="runuser -u postgres --"
  fi
  PG_PORT=$(free_port)
  $as "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust "$@" > /dev/null || return 1
  PG_CTL="$as $bin/pg_ctl -D $PG_DIR/data -l $PG_DIR/log"
  $PG_CTL -w -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200" start > /dev/null ||
    return 1
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}
