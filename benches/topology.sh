#!/usr/bin/env bash
# Topology benchmark (issue 15), one command, side by side in one run: Q1 and
# Q2 of the domain benchmark (benches/domain.sh, BENCHMARKS.md; the same
# seed, benches/seed.sql) through Traefik in front of one and of two release
# replicas, with queries on the primary and on the streaming read replica
# (database.replica_urls), and straight to one replica without Traefik for
# the proxy's own cost. The topology is topology/lib.sh's (the one
# topology/run.sh tests): private PostgreSQL primary and replica, Redis, S3,
# Traefik's HostRegexp router, health check and retry middleware. wrk at
# CONNS (32) connections for DURATION (10s) per cell after a 2 s warm-up,
# rotating over the 20 agencies (benches/rotate.lua); prints a Markdown
# table: req/s, p50, p99, errors, the replica's transactions per request
# (from its pg_stat_database: where the reads went), and the ratio to one
# replica through Traefik. About 3 minutes after the build on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
TOPO_REPO=$(pwd)
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin aggios
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/aggios"
TOPO_PORT_BASE=${TOPO_PORT_BASE:-19600}
TOPO_DB=aggios_bench_topology

# shellcheck source=../topology/lib.sh
. topology/lib.sh
trap topo_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
topo_init
export PGOPTIONS="-c client_min_messages=warning"
topo_start_postgres
topo_start_s3
topo_server_env
export AGGIOS_LOG_LEVEL=warn AGGIOS_SERVER_ENVIRONMENT=production
topo_migrate
topo_start_server a
topo_start_server b
topo_start_traefik

# --- the domain benchmark's data -------------------------------------------------------
gql() { curl -sf "$TOPO_A/graphql" -H 'content-type: application/json' "$@"; }
# One real argon2id hash for every seeded user, from a real sign-up.
gql -H 'Host: localhost' -d '{"query":"mutation { signUp(input: {agencyName: \"Hash\", subdomain: \"hash-source\", email: \"h@h.bench\", password: \"tundra velvet orbit 42\", firstName: \"H\", lastName: \"S\"}) { accessToken } }"}' >/dev/null
HASH=$(psql "$TOPO_PG_URL" -qAtc "SELECT password_hash FROM users WHERE email = 'h@h.bench'")
psql "$TOPO_PG_URL" -q -v ON_ERROR_STOP=1 -v hash="$HASH" -f benches/seed.sql >/dev/null
: >"$TOPO_WORK/targets"
while read -r sub; do
  tok=$(gql -H "Host: $sub.localhost" -d "{\"query\":\"mutation { login(input: {email: \\\"u0@$sub.bench\\\", password: \\\"tundra velvet orbit 42\\\"}) { accessToken } }\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["login"]["accessToken"])')
  echo "$sub.localhost Authorization Bearer $tok" >>"$TOPO_WORK/targets"
done < <(psql "$TOPO_PG_URL" -qAt -c "SELECT subdomain FROM bench_tenants ORDER BY n")
# The replica has replayed all of it before anything is timed.
LSN=$(psql "$TOPO_PG_URL" -qAtc "SELECT pg_current_wal_lsn()")
for _ in $(seq 1 100); do
  [ "$(psql "$TOPO_REPLICA_URL" -qAtc "SELECT pg_last_wal_replay_lsn() >= '$LSN'::pg_lsn")" = t ] && break
  sleep 0.1
done
echo "agencies: $(wc -l <"$TOPO_WORK/targets") measured, documents: $(psql "$TOPO_PG_URL" -qAtc 'SELECT count(*) FROM documents'), on the replica: $(psql "$TOPO_REPLICA_URL" -qAtc 'SELECT count(*) FROM documents')"

Q1='{"query":"{ clients(first: 10) { edges { node { id name email } } } }"}'
Q2='{"query":"{ projects(first: 50) { edges { node { name client { name } documents(first: 5) { name sizeBytes uploader { email } } } } } }"}'
replica_xacts() { psql "$TOPO_REPLICA_URL" -qAtc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$TOPO_DB'"; }
cell() { # URL BODY -> "rps p50 p99 errors replica_xacts_per_request"
  BENCH_TARGETS="$TOPO_WORK/targets" BENCH_BODY="$2" wrk -t2 -c"$CONNS" -d2s -s benches/rotate.lua "$1/graphql" >/dev/null 2>&1 || true
  local x0 x1 requests
  x0=$(replica_xacts)
  BENCH_TARGETS="$TOPO_WORK/targets" BENCH_BODY="$2" wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s benches/rotate.lua "$1/graphql" \
    >"$TOPO_WORK/run.txt" 2>"$TOPO_WORK/run.err" || true
  x1=$(replica_xacts)
  requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TOPO_WORK/run.txt")
  echo "$(python3 benches/wrk_summary.py "$TOPO_WORK/run.txt" "$TOPO_WORK/run.err") $(python3 -c "print(f'{($x1 - $x0) / max(1, $requests):.2f}')")"
}
restart_both() { # on|off: both replicas again with reads on the replica or not
  topo_replica_reads "$1"
  for s in a b; do
    url=$([ "$s" = a ] && echo "$TOPO_A" || echo "$TOPO_B")
    topo_stop_server "$s" TERM
    topo_start_server "$s"
    topo_wait_status aggios "$url" UP 10
  done
  topo_wait_status aggios-one "$TOPO_A" UP 10
}

declare -A RESULT
SETUPS=("direct" "one" "two" "one+replica" "two+replica")
for reads in off on; do
  [ "$reads" = on ] && restart_both on
  for q in Q1 Q2; do
    if [ "$reads" = off ]; then
      RESULT[$q,direct]=$(cell "$TOPO_A" "${!q}")
      RESULT[$q,one]=$(cell "http://127.0.0.1:$TOPO_TRAEFIK_ONE_PORT" "${!q}")
      RESULT[$q,two]=$(cell "$TOPO_TRAEFIK" "${!q}")
    else
      RESULT[$q,one+replica]=$(cell "http://127.0.0.1:$TOPO_TRAEFIK_ONE_PORT" "${!q}")
      RESULT[$q,two+replica]=$(cell "$TOPO_TRAEFIK" "${!q}")
    fi
  done
done

describe() {
  case $1 in
    direct) echo "1 replica, no Traefik" ;;
    one) echo "Traefik → 1 replica" ;;
    two) echo "Traefik → 2 replicas" ;;
    one+replica) echo "Traefik → 1 replica, reads on the PG replica" ;;
    two+replica) echo "Traefik → 2 replicas, reads on the PG replica" ;;
  esac
}
echo
echo "$(nproc) cores; wrk -t2 -c$CONNS -d$DURATION per cell; release build; base: Traefik → 1 replica, reads on the primary"
echo
echo "| query | setup | req/s | p50 ms | p99 ms | err | PG replica xacts/req | ÷ base |"
echo "|---|---|---|---|---|---|---|---|"
for q in Q1 Q2; do
  read -r base _ < <(echo "${RESULT[$q,one]}")
  for s in "${SETUPS[@]}"; do
    read -r rps p50 p99 err xr < <(echo "${RESULT[$q,$s]}")
    echo "| $q | $(describe "$s") | $rps | $p50 | $p99 | $err | $xr | $(python3 -c "print(f'{$rps/$base:.2f}x')") |"
  done
done
