#!/usr/bin/env bash
# Runs the client programs (graphql-http audits, Apollo Client token refresh,
# Apollo Client persisted queries, CORS in headless Chromium, graphql-ws and
# Apollo Client subscriptions) against real servers:
#   clients/run.sh BIN
# BIN is the aggios binary. It is started as `BIN serve` in a temp dir with an
# aggios.toml on a fresh PostgreSQL database (TEST_PG_URL), Redis
# (TEST_REDIS_URL, a key prefix of its own) and S3 (TEST_S3_ENDPOINT,
# TEST_S3_BUCKET, TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY), a 2-second access
# token lifetime, one allowed CORS origin and the default rate limits (real
# clients must fit in them). A second replica (B) then starts in a dir of
# its own with the same aggios.toml and the first one's signing keys, as
# replicas of one deployment do; the subscription programs write through
# the first (A) and watch through B. Every program runs even when an
# earlier one fails; the script fails when any does. scripts/test.sh calls it.
set -euo pipefail
say() { printf '==> %s\n' "$*"; }
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

BIN=${1:?usage: clients/run.sh BIN}
[ -f "$BIN" ] && [ -x "$BIN" ] || die "$BIN is not an executable"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
cd "$(dirname "$0")"
PG_URL=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
for v in TEST_S3_ENDPOINT TEST_S3_BUCKET TEST_S3_ACCESS_KEY TEST_S3_SECRET_KEY; do
  [ -n "${!v:-}" ] || die "$v is not set (scripts/test.sh starts SeaweedFS and sets it)"
done

WORK=$(mktemp -d -t aggios-clients.XXXXXX)
DB=aggios_clients_$$
PREFIX=aggios-clients-$$-$RANDOM
SERVER_PID=
SERVER_B_PID=
DB_CREATED=
cleanup() {
  for pid in $SERVER_PID $SERVER_B_PID; do kill "$pid" 2>/dev/null || true; done
  for pid in $SERVER_PID $SERVER_B_PID; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$DB_CREATED" ]; then psql "$PG_URL" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || echo "could not drop database $DB" >&2; fi
  redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- a fresh database ---------------------------------------------------------
psql "$PG_URL" -qAtc "CREATE DATABASE $DB" >/dev/null || die "could not create database $DB at $PG_URL"
DB_CREATED=1
PG_BASE=${PG_URL%%\?*}
PG_QUERY=${PG_URL#"$PG_BASE"}
DB_URL="${PG_BASE%/*}/$DB$PG_QUERY"

# --- two free ports for the CORS pages: A is allowed, B is not ------------------
read -r PORT_A PORT_B < <(node -e '
  const net = require("node:net");
  const a = net.createServer().listen(0, "127.0.0.1", () => {
    const b = net.createServer().listen(0, "127.0.0.1", () => {
      console.log(a.address().port, b.address().port); a.close(); b.close();
    });
  });')
[ -n "$PORT_B" ] || die "could not find free ports for the CORS pages"

# --- the servers -----------------------------------------------------------------
# wait_for_address PID LOG: the address `BIN serve` prints once it listens,
# or nothing when it exits (or takes a minute).
wait_for_address() {
  local pid=$1 log=$2 addr=
  for _ in $(seq 1 600); do
    addr=$(sed -n 's/^Aggios is listening on //p' "$log" 2>/dev/null)
    [ -n "$addr" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  printf '%s' "$addr"
}

mkdir -p "$WORK/serve"
cat >"$WORK/serve/aggios.toml" <<EOF
[server]
port = 0
trusted_proxies = ["127.0.0.1"]
cors_allowed_origins = ["http://127.0.0.1:$PORT_A"]

[database]
url = "$DB_URL"
migration_url = "$DB_URL"
migrate_on_start = true

[redis]
url = "$REDIS_URL"
key_prefix = "$PREFIX"

[storage]
backend = "s3"
s3_endpoint = "$TEST_S3_ENDPOINT"
s3_bucket = "$TEST_S3_BUCKET"
s3_access_key_id = "$TEST_S3_ACCESS_KEY"
s3_secret_access_key = "$TEST_S3_SECRET_KEY"

[auth]
access_token_ttl_secs = 2
EOF
say "starting $BIN serve (database $DB, CORS origin http://127.0.0.1:$PORT_A)"
(cd "$WORK/serve" && exec "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err") &
SERVER_PID=$!
ADDR=$(wait_for_address "$SERVER_PID" "$WORK/serve.out")
if [ -z "$ADDR" ]; then
  tail -30 "$WORK/serve.err" >&2
  die "aggios serve did not start (see its log above)"
fi
say "server A at $ADDR"

# The second replica: same aggios.toml, a work dir of its own, and the
# signing keys A generated on its first start (replicas verify each other's
# tokens only with the same keyring).
KEYRING=$WORK/serve/data/keys/keyring.json
[ -f "$KEYRING" ] || die "server A wrote no keyring at $KEYRING (auth.keyring_file); the second replica needs it"
mkdir -p "$WORK/serve-b/data/keys"
cp "$WORK/serve/aggios.toml" "$WORK/serve-b/aggios.toml"
cp -p "$KEYRING" "$WORK/serve-b/data/keys/keyring.json"
say "starting the second replica $BIN serve"
(cd "$WORK/serve-b" && exec "$BIN" serve >"$WORK/serve-b.out" 2>"$WORK/serve-b.err") &
SERVER_B_PID=$!
ADDR_B=$(wait_for_address "$SERVER_B_PID" "$WORK/serve-b.out")
if [ -z "$ADDR_B" ]; then
  tail -30 "$WORK/serve-b.err" >&2
  die "the second aggios serve did not start (see its log above)"
fi
say "server B at $ADDR_B"

# --- the programs --------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci in clients/"
  npm ci --no-audit --no-fund --silent || die "npm ci in clients/ failed"
fi
FAILED=()
run() {
  local name=$1; shift
  say "clients: $name"
  if ! node "$@"; then FAILED+=("$name"); fi
}
run "graphql-http audits" audit.mjs "$ADDR"
run "Apollo Client token refresh" apollo-refresh.mjs "$ADDR"
run "Apollo Client persisted queries" apollo-persisted.mjs "$ADDR"
run "CORS in Chromium" cors.mjs "$ADDR" "$PORT_A" "$PORT_B"
run "graphql-ws subscriptions" subscriptions.mjs "$ADDR" "$ADDR_B"
run "Apollo Client subscriptions" apollo-subscriptions.mjs "$ADDR" "$ADDR_B"

if ! kill -0 "$SERVER_PID" 2>/dev/null; then FAILED+=("server A died during the run"); fi
if ! kill -0 "$SERVER_B_PID" 2>/dev/null; then FAILED+=("server B died during the run"); fi
if [ ${#FAILED[@]} -gt 0 ]; then
  for s in serve serve-b; do
    echo "--- $s: server warnings and errors (last 30) ---" >&2
    sed 's/\x1b\[[0-9;]*m//g' "$WORK/$s.err" | grep -E ' (WARN|ERROR) ' | tail -30 >&2 || true
  done
  die "client programs failed: $(IFS=,; echo "${FAILED[*]}" | sed 's/,/, /g')"
fi
say "client programs passed: graphql-http audits, Apollo Client token refresh, Apollo Client persisted queries, CORS in Chromium, graphql-ws subscriptions, Apollo Client subscriptions"
