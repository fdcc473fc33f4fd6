#!/usr/bin/env bash
# Subscriptions benchmark (issue 14), one command: a release build on
# PostgreSQL (a fresh database) and Redis (its own key prefix), two replicas,
# the client benches/subscriptions.mjs (graphql-transport-ws over `ws`, its
# sockets spread over worker threads). Prints Markdown tables:
#   1. idle subscribers: 0, 1,000, 5,000, 10,000 sockets on replica A, one
#      `documentChanged` subscription each, A's VmRSS after each step settles
#      (target: under 100 MB of growth for 10,000), then one event every
#      socket must receive;
#   2. fan-out latency: 1,000 `clientChanged` subscribers, 500 on A and 500 on
#      B, 200 `createClient`s through A at 20/s; latency = receive time - the
#      event's `at`; every subscriber must get every event;
#   3. sustained: `createClient`s as fast as 16 loops make them through A and
#      B for 10 s (20,000 at most), the same subscribers: events/s published,
#      deliveries/s, and the subscribers closed for falling behind (1013).
# Everything is bounded: counts, a deadline per phase, and the whole client
# run under SUBS_DEADLINE seconds (300). Loopback only. Knobs (environment):
# SUBS_STEPS, SUBS_FANOUT_SUBSCRIBERS, SUBS_FANOUT_EVENTS, SUBS_FANOUT_RATE,
# SUBS_SUSTAINED_SECS, SUBS_SUSTAINED_MAX, SUBS_SUSTAINED_LOOPS, SUBS_WORKERS,
# SUBS_OPEN_CONCURRENCY; SUBS_BUILD=1 rebuilds the binary (otherwise only when
# missing); KEEP_WORK=1 keeps the replicas' logs. Diagnostics: SUBS_IDLE_ONLY=1
# stops after the idle table, SUBS_IDLE_NO_SUBSCRIBE=1 opens sockets that only
# say connection_init (memory per socket rather than per subscription).
# SUBS_UNSHARED=1 gives each fan-out subscriber a text of its own, so that
# no two share a run (the worst case of the server's grouping: one run of
# the operation per subscriber per event, as with one user per subscriber).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_ADMIN=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
DB=aggios_bench_subscriptions
DB_URL="${PG_ADMIN%/*}/$DB"
PREFIX="bench-subs-$$"
export SUBS_STEPS=${SUBS_STEPS:-1000,5000,10000}
DEADLINE=${SUBS_DEADLINE:-300}

# 10,000 sockets in the server and 10,000 in the client, each a descriptor.
MOST=$(tr ',' '\n' <<<"$SUBS_STEPS" | sort -n | tail -1)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((MOST + 1000)) ]; then
  echo "subscriptions: ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); $MOST sockets need at least $((MOST + 1000))" >&2
  exit 1
fi

(cd benches/subscriptions && { npm ci --no-audit --no-fund --silent 2>/dev/null || npm install --no-audit --no-fund --silent; })
# The release binary is built when it is missing (or SUBS_BUILD=1); the
# header says how old the one measured is.
BIN="${CARGO_TARGET_DIR:-target}/release/aggios"
if [ ! -x "$BIN" ] || [ -n "${SUBS_BUILD:-}" ]; then cargo build --release --quiet -p aggios; fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/aggios"
WORK=$(mktemp -d -t aggios-subs.XXXXXX)
PIDS=()
export PGOPTIONS="-c client_min_messages=warning"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS" --scan --pattern "$PREFIX:*" 2>/dev/null | xargs -r -n 500 redis-cli -u "$REDIS" del >/dev/null 2>&1 || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "subscriptions: logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

export AGGIOS_DATA_DIR="$WORK" AGGIOS_SERVER_PORT=0 AGGIOS_SERVER_BASE_DOMAIN=bench.test AGGIOS_LOG_LEVEL=warn
export AGGIOS_DATABASE_URL="$DB_URL" AGGIOS_REDIS_URL="$REDIS" AGGIOS_REDIS_KEY_PREFIX="$PREFIX"
export AGGIOS_SERVER_ENVIRONMENT=production
# One user from one address: no request budget would let the load through.
export AGGIOS_RATE_LIMITS_ENABLED=false
# 10,000 sockets of one user of one agency on one replica.
export AGGIOS_SERVER_MAX_CONNECTIONS=20000
export AGGIOS_SUBSCRIPTIONS_MAX_CONNECTIONS_PER_AGENCY=20000 AGGIOS_SUBSCRIPTIONS_MAX_CONNECTIONS_PER_USER=20000
# The run must not outlive its access token (a socket is closed when it expires).
export AGGIOS_AUTH_ACCESS_TOKEN_TTL_SECS=3600
"$BIN" keys generate >/dev/null
"$BIN" migrate up >/dev/null

# Two replicas on the same database, Redis prefix, keys and files.
start() { # name -> pid and URL in $WORK/name.{pid,url}
  "$BIN" serve >"$WORK/$1.out" 2>"$WORK/$1.err" &
  local pid=$!
  PIDS+=("$pid")
  echo "$pid" >"$WORK/$1.pid"
}
start a
start b
for n in a b; do
  for _ in $(seq 1 100); do grep -q 'listening on' "$WORK/$n.out" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^Aggios is listening on //p' "$WORK/$n.out" >"$WORK/$n.url"
  [ -s "$WORK/$n.url" ] || { echo "replica $n did not start:"; cat "$WORK/$n.err"; exit 1; }
done
AURL=$(cat "$WORK/a.url"); BURL=$(cat "$WORK/b.url")

# The setup goes through B: A's baseline is then a fresh process, without the
# memory a sign-up's password hash (19 MiB) leaves to be reused.
gql() { curl -sf "$BURL/graphql" -H 'content-type: application/json' "$@"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
TOKEN=$(gql -H 'Host: api.bench.test' -d '{"query":"mutation { signUp(input: {agencyName: \"Subs\", subdomain: \"subs\", email: \"owner@subs.bench\", password: \"tundra velvet orbit 42\", firstName: \"S\", lastName: \"U\"}) { accessToken } }"}' | field 'd["data"]["signUp"]["accessToken"]')
H=(-H 'Host: subs.bench.test' -H "Authorization: Bearer $TOKEN")
CLIENT=$(gql "${H[@]}" -d '{"query":"mutation { createClient(input: {name: \"C\"}) { id } }"}' | field 'd["data"]["createClient"]["id"]')
PROJECT=$(gql "${H[@]}" -d "{\"query\":\"mutation { createProject(input: {clientId: \\\"$CLIENT\\\", name: \\\"P\\\"}) { id } }\"}" | field 'd["data"]["createProject"]["id"]')
printf 'the document of the live check\n' >"$WORK/doc.txt"
OPS="{\"query\":\"mutation(\$i: UploadDocumentInput!) { uploadDocument(input: \$i) { id } }\",\"variables\":{\"i\":{\"projectId\":\"$PROJECT\",\"file\":null}}}"
DOC=$(curl -sf "$BURL/graphql" "${H[@]}" -H 'Apollo-Require-Preflight: true' \
  -F "operations=$OPS" -F 'map={"0":["variables.i.file"]}' -F "0=@$WORK/doc.txt;type=text/plain" | field 'd["data"]["uploadDocument"]["id"]')

echo "== subscriptions benchmark ($(nproc) cores, release build, PostgreSQL + Redis, two replicas, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), binary built $(date -u -r "$BIN" '+%F %H:%M UTC'), run $(date -u '+%F %H:%M UTC'))"
echo
SUBS_A_URL="$AURL" SUBS_B_URL="$BURL" SUBS_A_PID="$(cat "$WORK/a.pid")" SUBS_B_PID="$(cat "$WORK/b.pid")" \
SUBS_CLK_TCK="$(getconf CLK_TCK)" SUBS_HOST=subs.bench.test \
SUBS_TOKEN="$TOKEN" SUBS_DOCUMENT_ID="$DOC" \
  timeout -k 10 "$DEADLINE" node --max-old-space-size=4096 benches/subscriptions.mjs
# Anything the replicas logged at warn or worse, and whether they are still up.
for n in a b; do
  kill -0 "$(cat "$WORK/$n.pid")" 2>/dev/null || echo "- replica $n exited during the run: $(tail -c 300 "$WORK/$n.err")"
  c=$(cat "$WORK/$n.out" "$WORK/$n.err" | grep -ciE 'warn|error|panicked' || true)
  [ "$c" = 0 ] || echo "- replica $n logged $c warnings or errors, the first: $(cat "$WORK/$n.out" "$WORK/$n.err" | grep -iE 'warn|error|panicked' | head -1 | cut -c1-300)"
done
