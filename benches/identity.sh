#!/usr/bin/env bash
# Identity benchmark, one command, side by side in one run:
#   login latency at concurrency 1 and 16;
#   p99 of `me` at concurrency 32 alone, then while 16 logins run in a loop
#   (hashing must not starve the runtime: the ratio should stay under 2x);
#   token verification cost per request (in-process, see benches/tokens.rs).
# Release build, PostgreSQL with RLS and Redis, as in production.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
PG_ADMIN=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin aggios
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/aggios"
WORK=$(mktemp -d -t aggios-bench.XXXXXX)
DB=aggios_bench_identity
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
PGOPTIONS="-c client_min_messages=warning" psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
DB_URL="${PG_ADMIN%/*}/$DB"

export AGGIOS_DATA_DIR="$WORK" AGGIOS_SERVER_PORT=0 AGGIOS_SERVER_BASE_DOMAIN=bench.test AGGIOS_LOG_LEVEL=warn
export AGGIOS_DATABASE_URL="$DB_URL" AGGIOS_DATABASE_MIGRATE_ON_START=true
export AGGIOS_REDIS_URL="$REDIS" AGGIOS_REDIS_KEY_PREFIX="bench-$$"
# One user and one address at thousands of requests a second: no budget would
# let that through (benches/rate_limits.sh measures the limiter).
export AGGIOS_RATE_LIMITS_ENABLED=false
"$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
PID=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^Aggios is listening on //p' "$WORK/serve.out")
[ -n "$URL" ] || { cat "$WORK/serve.err"; exit 1; }

SIGNUP='{"query":"mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }","variables":{"i":{"agencyName":"Bench","subdomain":"bench","email":"owner@bench.com","password":"tundra velvet orbit 42","firstName":"B","lastName":"O"}}}'
TOKEN=$(curl -sf "$URL/graphql" -H 'content-type: application/json' -H 'Host: api.bench.test' -d "$SIGNUP" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["signUp"]["accessToken"])')
export BENCH_HOST=bench.bench.test BENCH_TOKEN="$TOKEN"

# wrk's summary -> "req/s p50_ms p99_ms errors".
summary() { python3 benches/wrk_summary.py "$1.txt" "$1.err"; }
run() { # name connections script -> file
  local threads=$(( $2 < 2 ? $2 : 2 ))
  wrk -t"$threads" -c"$2" -d"$DURATION" --latency -s "benches/$3" "$URL/graphql" >"$WORK/$1.txt" 2>"$WORK/$1.err"
}

echo "== identity benchmark ($(nproc) cores, $DURATION each, release build, PostgreSQL + Redis)"
run login_c1 1 login.lua;   read -r l1_rps l1_p50 l1_p99 l1_err < <(summary "$WORK/login_c1")
run login_c16 16 login.lua; read -r l16_rps l16_p50 l16_p99 l16_err < <(summary "$WORK/login_c16")
run me_alone 32 me.lua;     read -r m_rps m_p50 m_p99 m_err < <(summary "$WORK/me_alone")
# me again while 16 logins loop for the whole window.
wrk -t1 -c16 -d"$DURATION" -s benches/login.lua "$URL/graphql" >"$WORK/login_bg.txt" 2>&1 &
BG=$!
sleep 1
run me_loaded 32 me.lua;    read -r ml_rps ml_p50 ml_p99 ml_err < <(summary "$WORK/me_loaded")
wait $BG || true
for f in "$WORK"/*.err; do [ -s "$f" ] && { echo "errors in $(basename "$f"):"; head -3 "$f"; }; done

printf '\n| measurement | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|\n'
printf '| login, concurrency 1 | %s | %s | %s | %s |\n' "$l1_rps" "$l1_p50" "$l1_p99" "$l1_err"
printf '| login, concurrency 16 | %s | %s | %s | %s |\n' "$l16_rps" "$l16_p50" "$l16_p99" "$l16_err"
printf '| me, concurrency 32, alone | %s | %s | %s | %s |\n' "$m_rps" "$m_p50" "$m_p99" "$m_err"
printf '| me, concurrency 32, with 16 logins looping | %s | %s | %s | %s |\n' "$ml_rps" "$ml_p50" "$ml_p99" "$ml_err"
python3 -c "print(f'\nme p99 under login load / alone: {float(\"$ml_p99\")/float(\"$m_p99\"):.2f}x (target < 2x)')"
echo
cargo bench --quiet --bench tokens -p aggios 2>/dev/null | tail -n +1
