#!/usr/bin/env bash
# What the rate limiter costs per request, one command, side by side in one
# run: the same server (release build, PostgreSQL with RLS, Redis) with rate
# limits off, and on through Redis with budgets too large to refuse, serving
# `{ me { id email } }` with one user's token at concurrency 1 (the added
# latency: round trips) and 32 (the throughput cost), off and on alternating
# for ROUNDS rounds (3), medians reported. Per request it also reports the
# server's CPU (/proc), Redis's CPU (INFO cpu: anything else using that
# Redis counts too) and the Redis scripts run (INFO commandstats).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
PG_ADMIN=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin aggios
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/aggios"
WORK=$(mktemp -d -t aggios-bench.XXXXXX)
DB=aggios_bench_rate_limits
PREFIX="bench-rl-$$"
PID=
stop() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=; fi; }
cleanup() {
  stop
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS" --scan --pattern "$PREFIX*" 2>/dev/null | xargs -r redis-cli -u "$REDIS" del >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
PGOPTIONS="-c client_min_messages=warning" psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

export AGGIOS_DATA_DIR="$WORK" AGGIOS_SERVER_PORT=0 AGGIOS_SERVER_BASE_DOMAIN=bench.test AGGIOS_LOG_LEVEL=warn
export AGGIOS_DATABASE_URL="${PG_ADMIN%/*}/$DB" AGGIOS_DATABASE_MIGRATE_ON_START=true
export AGGIOS_REDIS_URL="$REDIS" AGGIOS_REDIS_KEY_PREFIX="$PREFIX"
# The budgets `me` is charged, too large to refuse: every check runs whole.
export AGGIOS_RATE_LIMITS_USER_REQUESTS_PER_MINUTE=1000000000 AGGIOS_RATE_LIMITS_AGENCY_REQUESTS_PER_MINUTE=1000000000
export AGGIOS_RATE_LIMITS_USER_QUERY_COST_PER_MINUTE=1000000000 AGGIOS_RATE_LIMITS_AGENCY_QUERY_COST_PER_MINUTE=1000000000

start() { # enabled
  AGGIOS_RATE_LIMITS_ENABLED=$1 "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
  PID=$!
  for _ in $(seq 1 300); do
    grep -q 'listening on' "$WORK/serve.out" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  URL=$(sed -n 's/^Aggios is listening on //p' "$WORK/serve.out")
  [ -n "$URL" ] || { echo "the server did not start (rate limits $1):" >&2; cat "$WORK/serve.out" "$WORK/serve.err" >&2; exit 1; }
}

start true
SIGNUP='{"query":"mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }","variables":{"i":{"agencyName":"Bench","subdomain":"bench","email":"owner@bench.com","password":"tundra velvet orbit 42","firstName":"B","lastName":"O"}}}'
TOKEN=$(curl -sf "$URL/graphql" -H 'content-type: application/json' -H 'Host: api.bench.test' -d "$SIGNUP" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["signUp"]["accessToken"])')
export BENCH_HOST=bench.bench.test BENCH_TOKEN="$TOKEN"
HEADERS=$(curl -s -D - -o /dev/null "$URL/graphql" -H 'content-type: application/json' -H "Host: $BENCH_HOST" \
  -H "Authorization: Bearer $TOKEN" -d '{"query":"{ me { id email } }"}' | grep -i '^ratelimit' | tr -d '\r')
stop

scripts() { redis-cli -u "$REDIS" info commandstats | sed -n 's/^cmdstat_\(evalsha\|eval\):calls=\([0-9]*\).*/\2/p' | awk '{s+=$1} END {print s+0}'; }
redis_cpu() { redis-cli -u "$REDIS" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ {s+=$2} END {printf "%.6f\n", s}'; }
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.6f\n", ($14 + $15) / hz}' "/proc/$PID/stat"; }
ROWS="$WORK/rows.tsv"
measure() { # enabled connections
  start "$1"
  local name="$WORK/$1-c$2-$ROUND" s0 r0 c0
  s0=$(scripts); r0=$(redis_cpu); c0=$(server_cpu)
  wrk -t"$(( $2 < 2 ? $2 : 2 ))" -c"$2" -d"$DURATION" --latency -s benches/me.lua "$URL/graphql" >"$name.txt" 2>"$name.wrk"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(python3 benches/wrk_summary.py "$name.txt" "$name.wrk" | tr ' ' '\t')" \
    "$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$name.txt")" "$(python3 -c "print($(server_cpu) - $c0)")" \
    "$(python3 -c "print($(redis_cpu) - $r0)")" "$(( $(scripts) - s0 ))" >>"$ROWS"
  stop
}

ROUNDS=${ROUNDS:-3}
echo "== rate-limit benchmark ($(nproc) cores, $DURATION each, $ROUNDS rounds alternating, release build, PostgreSQL + Redis; load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "the answers carry:"; echo "$HEADERS" | sed 's/^/  /'
for c in 1 32; do
  for ROUND in $(seq 1 "$ROUNDS"); do
    measure false "$c"
    measure true "$c"
  done
done
for f in "$WORK"/*.wrk; do [ -s "$f" ] && { echo "errors in $(basename "$f"):"; head -3 "$f"; }; done
python3 - "$ROWS" <<'EOF'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
# enabled, conc, rps, p50, p99, errors, requests, server cpu s, redis cpu s, scripts
med = {}
print("\nMedians of the rounds:\n")
print("| me | req/s | p50 ms | p99 ms | errors | server CPU µs/req | Redis CPU µs/req | Redis scripts/req |")
print("|---|---|---|---|---|---|---|---|")
for conc in ("1", "32"):
    for on in ("false", "true"):
        rs = [r for r in rows if r[0] == on and r[1] == conc]
        n = lambda i: statistics.median(float(r[i]) for r in rs)
        per = lambda i: statistics.median(float(r[i]) * 1e6 / max(1, float(r[6])) for r in rs)
        m = dict(rps=n(2), p50=n(3), p99=n(4), cpu=per(7), rcpu=per(8), scripts=statistics.median(float(r[9]) / max(1, float(r[6])) for r in rs))
        med[on, conc] = m
        label = "limits on (Redis)" if on == "true" else "limits off"
        print(f"| {label}, concurrency {conc} | {m['rps']:.1f} | {m['p50']:.2f} | {m['p99']:.2f} | {sum(int(r[5]) for r in rs)} | {m['cpu']:.0f} | {m['rcpu']:.0f} | {m['scripts']:.2f} |")
print()
for conc in ("1", "32"):
    off, on = med["false", conc], med["true", conc]
    print(f"concurrency {conc}: p50 {on['p50'] - off['p50']:+.3f} ms, {on['rps'] / off['rps']:.2f}x the req/s, "
          f"server CPU {on['cpu'] - off['cpu']:+.0f} µs/req, Redis CPU {on['rcpu'] - off['rcpu']:+.0f} µs/req")
EOF
