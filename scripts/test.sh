#!/usr/bin/env bash
# The whole test suite against real services. Installs and starts what is
# missing (PostgreSQL, Redis, SeaweedFS, check-jsonschema, Chromium), fails
# loudly when a service cannot be had, and stops what it started. Last, the
# client programs in clients/ (clients/run.sh) run against a server of their own.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
WORK=$(mktemp -d -t aggios-test.XXXXXX)
PIDS=()
PG_PAIR_DIR=
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$PG_PAIR_DIR" ]; then stop_postgres_pair "$PG_PAIR_DIR"; rm -rf "$PG_PAIR_DIR"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '==> %s\n' "$*"; }
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
apt_install() {
  say "installing $* from Debian packages"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------
command -v pg_isready >/dev/null || apt_install postgresql
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi
psql "$PG_URL" -qAtc 'select 1' >/dev/null 2>&1 || die "PostgreSQL is not reachable at $PG_URL"

# --- Redis ------------------------------------------------------------------
command -v redis-server >/dev/null || apt_install redis-server
if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
[ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = PONG ] || die "Redis is not reachable at $REDIS_URL"

# --- SeaweedFS (S3) ---------------------------------------------------------
S3_PORT=18533
for p in 18533 18534 18535 18536 18537 28533 28534 28535 28537; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is taken; SeaweedFS for the tests needs it"; fi
done
say "starting SeaweedFS"
. scripts/seaweedfs.sh
start_seaweedfs "$WORK" "$S3_PORT" aggios-test aggios-test aggios-test-secret || die "SeaweedFS did not start"
PIDS+=("$WEED_PID")

# --- a PostgreSQL primary with a streaming replica (read-replica tests) -------
for p in 18540 18541; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is taken; the PostgreSQL pair for the tests needs it"; fi
done
say "starting a PostgreSQL primary and its streaming replica"
. scripts/postgres_pair.sh
# Its own directory: the server runs as `postgres`, which must reach it.
PG_PAIR_DIR=$(mktemp -d -t aggios-pg.XXXXXX)
chmod 755 "$PG_PAIR_DIR"
start_postgres_pair "$PG_PAIR_DIR/pair" 18540 18541 || die "the PostgreSQL primary and replica did not start"

# --- Prometheus (metrics tests) ------------------------------------------------
command -v promtool >/dev/null && command -v prometheus >/dev/null || apt_install prometheus

# --- static checks ----------------------------------------------------------
command -v check-jsonschema >/dev/null || { say "installing check-jsonschema from PyPI"; pip install -q check-jsonschema; }
say "validating compose/ against the compose specification"
check-jsonschema --builtin-schema vendor.compose-spec compose/compose.yaml

# --- the Rust suite ----------------------------------------------------------
export TEST_PG_URL="$PG_URL" TEST_REDIS_URL="$REDIS_URL"
export TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" TEST_S3_BUCKET=aggios-test
export TEST_S3_ACCESS_KEY=aggios-test TEST_S3_SECRET_KEY=aggios-test-secret
export TEST_PG_PAIR_PRIMARY_URL="$PG_PAIR_PRIMARY_URL" TEST_PG_PAIR_REPLICA_URL="$PG_PAIR_REPLICA_URL"
# The integration tests serve whole requests on libtest's threads (2 MiB by
# default) in a debug build, whose async frames are several times a
# release build's; give them the stack the binary gives its own threads.
export RUST_MIN_STACK=8388608
say "cargo test"
cargo test --workspace --locked 2>&1 | tee "$WORK/cargo-test.log"

# --- the playground in a real browser ----------------------------------------
command -v chromium >/dev/null || apt_install chromium
say "playground in headless Chromium"
(cd playground && npm ci --no-audit --no-fund --silent)
mkdir -p "$WORK/serve"
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug/aggios"
(cd "$WORK/serve" && AGGIOS_SERVER_PORT=0 exec "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err") &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q 'listening on' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^Aggios is listening on //p' "$WORK/serve.out")
[ -n "$ADDR" ] || { cat "$WORK/serve.err" >&2; die "aggios serve did not start"; }
node playground/check.mjs "$ADDR" "$WORK/playground.png"

# --- real clients: graphql-http audits, Apollo Client refresh, CORS ----------
say "client programs against a server of their own"
clients/run.sh "$BIN" || die "client programs (clients/run.sh)"
say "the topology without Docker: Traefik, two replicas, a streaming read replica (topology/run.sh)"
topology/run.sh "$BIN" || die "the topology test (topology/run.sh)"

passed=$(grep -oE '^test result: ok\. [0-9]+ passed' "$WORK/cargo-test.log" | awk '{s+=$4} END {print s+0}')
echo "all checks passed: $passed Rust tests, compose validation, playground in Chromium, client programs"
