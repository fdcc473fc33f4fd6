#!/usr/bin/env bash
# Domain benchmark (issue 4), one command, side by side in one run:
# Aggios (release, PostgreSQL with RLS, Redis) and PostGraphile 4 (same
# database, tenant through pgSettings under the same RLS and role), same
# queries, same load generator (wrk), concurrency 32 and 64; and Q2's SQL
# straight through pgbench, the floor. Writes the table to stdout, then each
# server's CPU per Q2 request (utime + stime from /proc over a fixed number
# of requests, benches/cpu_per_request.py).
#
# AGENCIES=N (default 20): the same 20 agencies are measured; N - 20 more of
# the same shape are seeded around them (1,000: 4 million documents).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
AGENCIES=${AGENCIES:-20}
CPU_REQUESTS=${CPU_REQUESTS:-3000}
[ "$AGENCIES" -ge 20 ] || { echo "AGENCIES must be at least 20 (the measured ones)"; exit 1; }
PG_ADMIN=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
DB=aggios_bench_domain
# Plain TCP for all three clients: the local server offers TLS, which libpq
# and sqlx take by default and node-postgres does not.
DB_URL="${PG_ADMIN%/*}/$DB?sslmode=disable"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd benches/postgraphile && npm ci --no-audit --no-fund --silent 2>/dev/null || npm install --no-audit --no-fund --silent)
cargo build --release --quiet --bin aggios
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/aggios"
WORK=$(mktemp -d -t aggios-bench.XXXXXX)
PIDS=()
export PGOPTIONS="-c client_min_messages=warning"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

export AGGIOS_DATA_DIR="$WORK" AGGIOS_SERVER_BASE_DOMAIN=bench.test AGGIOS_LOG_LEVEL=warn
export AGGIOS_DATABASE_URL="$DB_URL" AGGIOS_REDIS_URL="$REDIS" AGGIOS_REDIS_KEY_PREFIX="bench-$$"
export AGGIOS_SERVER_ENVIRONMENT=production
# Load from one address at full speed: rate limits would refuse most of it.
export AGGIOS_RATE_LIMITS_ENABLED=false
"$BIN" keys generate >/dev/null
"$BIN" migrate up >/dev/null
AGGIOS_SERVER_PORT=0 "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
APID=$!; PIDS+=($APID)
for _ in $(seq 1 100); do grep -q 'listening on' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
AURL=$(sed -n 's/^Aggios is listening on //p' "$WORK/serve.out")
[ -n "$AURL" ] || { cat "$WORK/serve.err"; exit 1; }

gql() { curl -sf "$AURL/graphql" -H 'content-type: application/json' "$@"; }
# One real argon2id hash for every seeded user, from a real sign-up.
gql -H 'Host: api.bench.test' -d '{"query":"mutation { signUp(input: {agencyName: \"Hash\", subdomain: \"hash-source\", email: \"h@h.bench\", password: \"tundra velvet orbit 42\", firstName: \"H\", lastName: \"S\"}) { accessToken } }"}' >/dev/null
HASH=$(psql "$DB_URL" -qAtc "SELECT password_hash FROM users WHERE email = 'h@h.bench'")
psql "$DB_URL" -q -v ON_ERROR_STOP=1 -v hash="$HASH" -f benches/seed.sql >/dev/null
if [ "$AGENCIES" -gt 20 ]; then
  psql "$DB_URL" -q -v ON_ERROR_STOP=1 -v hash="$HASH" -v others=$((AGENCIES - 20)) -f benches/seed_others.sql >/dev/null
fi
echo "agencies: $(psql "$DB_URL" -qAtc 'SELECT count(*) FROM tenants WHERE subdomain <> '\''hash-source'\''') (20 measured), documents: $(psql "$DB_URL" -qAtc 'SELECT count(*) FROM documents'), database: $(psql "$DB_URL" -qAtc "SELECT pg_size_pretty(pg_database_size('$DB'))")"

# Real access tokens, one per agency; PostGraphile gets the tenant id.
: >"$WORK/aggios.targets"; : >"$WORK/postgraphile.targets"
while read -r n id sub; do
  tok=$(gql -H "Host: $sub.bench.test" -d "{\"query\":\"mutation { login(input: {email: \\\"u0@$sub.bench\\\", password: \\\"tundra velvet orbit 42\\\"}) { accessToken } }\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["accessToken"])')
  echo "$sub.bench.test Authorization Bearer $tok" >>"$WORK/aggios.targets"
  echo "127.0.0.1 X-Tenant-Id $id" >>"$WORK/postgraphile.targets"
done < <(psql "$DB_URL" -qAt -F ' ' -c "SELECT n, id, subdomain FROM bench_tenants ORDER BY n")

PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATABASE_URL="$DB_URL" PORT=$PG_PORT node benches/postgraphile/server.js >"$WORK/pg.out" 2>&1 &
GPID=$!; PIDS+=($GPID)
for _ in $(seq 1 100); do grep -q listening "$WORK/pg.out" 2>/dev/null && break; sleep 0.2; done
GURL="http://127.0.0.1:$PG_PORT"

A_Q1='{"query":"{ clients(first: 10) { edges { node { id name email } } } }"}'
A_Q2='{"query":"{ projects(first: 50) { edges { node { name client { name } documents(first: 5) { name sizeBytes uploader { email } } } } } }"}'
G_Q1='{"query":"{ allClients(first: 10, orderBy: PRIMARY_KEY_ASC) { nodes { id name email } } }"}'
G_Q2='{"query":"{ allProjects(first: 50, orderBy: PRIMARY_KEY_ASC) { nodes { name clientByTenantIdAndClientId { name } documentsByTenantIdAndProjectId(first: 5, orderBy: PRIMARY_KEY_ASC) { nodes { name sizeBytes userByTenantIdAndUploadedBy { email } } } } } }"}'

# Both answer the same data for the first agency before anything is timed.
check() { # url targets body
  read -r host name value < "$2"
  curl -sf "$1/graphql" -H 'content-type: application/json' -H "Host: $host" -H "$name: $value" -d "$3"
}
a=$(check "$AURL" "$WORK/aggios.targets" "$A_Q2" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]["projects"]["edges"]; print(len(d), sum(len(e["node"]["documents"]) for e in d), d[0]["node"]["documents"][0]["uploader"]["email"])')
g=$(check "$GURL" "$WORK/postgraphile.targets" "$G_Q2" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]["allProjects"]["nodes"]; print(len(d), sum(len(n["documentsByTenantIdAndProjectId"]["nodes"]) for n in d), d[0]["documentsByTenantIdAndProjectId"]["nodes"][0]["userByTenantIdAndUploadedBy"]["email"])')
echo "Q2 check (projects, documents, first uploader): aggios=[$a] postgraphile=[$g]"
[ "$a" = "$g" ] || { echo "the two servers disagree on Q2"; exit 1; }

# BENCH_HOLD=1 keeps both servers up for profiling instead of timing them.
if [ -n "${BENCH_HOLD:-}" ]; then
  printf 'AURL=%s\nGURL=%s\nWORK=%s\nAPID=%s\nDB_URL=%s\n' "$AURL" "$GURL" "$WORK" "$APID" "$DB_URL" >"${BENCH_HOLD_FILE:-/tmp/aggios-bench.env}"
  echo "holding; servers described in ${BENCH_HOLD_FILE:-/tmp/aggios-bench.env}; Ctrl-C ends"
  wait
fi

rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
run() { # server url targets body conns pid -> "rps p50 p99 errors rss"
  BENCH_TARGETS="$3" BENCH_BODY="$4" wrk -t2 -c"$5" -d"$DURATION" --latency -s benches/rotate.lua "$2/graphql" >"$WORK/run.txt" 2>"$WORK/run.err" || true
  echo "$(python3 benches/wrk_summary.py "$WORK/run.txt" "$WORK/run.err") $(rss_mb "$6")"
}

python3 benches/q2_floor.py "$DB_URL" "$WORK"
mapfile -t FLOOR_ARGS <"$WORK/q2_floor.args"
FLOOR=$(PGOPTIONS="$PGOPTIONS -c role=aggios_app" pgbench -n -M prepared -c 32 -j 2 -T "${DURATION%s}" "${FLOOR_ARGS[@]}" "$DB_URL" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
[ -n "$FLOOR" ] || { echo "pgbench failed for the Q2 floor"; exit 1; }
echo "pgbench floor for Q2 (prepared, 32 clients): $FLOOR tps"
echo
echo "| query | conc. | Aggios req/s | p50 | p99 | err | RSS MB | PostGraphile req/s | p50 | p99 | err | RSS MB | Aggios ÷ PostGraphile | Aggios ÷ floor |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for q in Q1 Q2; do
  for c in 32 64; do
    ab=A_$q; gb=G_$q
    read -r ar a50 a99 ae arss < <(run aggios "$AURL" "$WORK/aggios.targets" "${!ab}" "$c" "$APID")
    read -r gr g50 g99 ge grss < <(run postgraphile "$GURL" "$WORK/postgraphile.targets" "${!gb}" "$c" "$GPID")
    ratio=$(python3 -c "print(f'{$ar/$gr:.2f}x')")
    floor=$([ "$q" = Q2 ] && python3 -c "print(f'{$ar/$FLOOR*100:.0f}%')" || echo "—")
    echo "| $q | $c | $ar | $a50 | $a99 | $ae | $arss | $gr | $g50 | $g99 | $ge | $grss | $ratio | $floor |"
  done
done

# CPU per Q2 request, each server on its own: the first agency, 8 connections.
cpu_ms() { # pid url targets body
  read -r host name value < "$3"
  python3 benches/cpu_per_request.py "$1" "$2" "$CPU_REQUESTS" 8 --header "Host: $host" --header "$name: $value" "$4" \
    | python3 -c 'import json,sys; v = json.load(sys.stdin)["cpu_us_per_request"]; print(f"{v / 1000:.2f}")'
}
echo
echo "CPU per Q2 request ($CPU_REQUESTS requests, utime + stime from /proc): Aggios $(cpu_ms "$APID" "$AURL" "$WORK/aggios.targets" "$A_Q2") ms, PostGraphile $(cpu_ms "$GPID" "$GURL" "$WORK/postgraphile.targets" "$G_Q2") ms"
