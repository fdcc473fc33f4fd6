#!/usr/bin/env bash
# The production topology as a test, without Docker (issue 15):
#   topology/run.sh [BIN]
# BIN defaults to ${CARGO_TARGET_DIR:-target}/debug/aggios, as scripts/test.sh
# builds it. Starts (topology/lib.sh says how) Traefik in front of two
# `aggios serve` replicas on a private PostgreSQL primary with a streaming
# read replica (database.replica_urls), the machine's Redis (a key prefix of
# its own) and a private SeaweedFS, then checks:
#   1. functional (functional.mjs): sign-up, queries, mutations, a multipart
#      upload and its download, a graphql-ws subscription, all by Host
#      through Traefik; both replicas serving; a write on one read on the
#      other; the row on the streaming replica; X-Forwarded-For believed;
#   2. SIGKILL: a mixed load through Traefik (load.mjs: LOAD_CONCURRENCY
#      loops of reads and createClient writes for LOAD_SECS), replica A
#      SIGKILLed mid-load: every acknowledged write is in the primary
#      (verify.mjs), failures are at most the load's concurrency (the
#      requests in flight on A), Traefik marks A down within its health
#      check and then routes every request to B at the first attempt
#      (probe.mjs, Traefik's access log); A is started again;
#   3. rolling restart: the same load while A then B get SIGTERM, exit,
#      start again and are marked up by Traefik: no request may fail.
# Prints a summary; exits non-zero when a check fails. Everything started is
# stopped, the database dropped and the work directory (PostgreSQL data
# included) removed at exit. Ports TOPO_PORT_BASE (19400) +32..+92; a port
# in use fails the run before anything starts. KEEP_WORK=1 keeps the logs
# (Traefik's JSON access log names the server of every request, by its
# X-Request-Id); TOPO_TRAEFIK_LOG_LEVEL=DEBUG has Traefik log why it answered
# each 502. LOAD_CONCURRENCY (8), LOAD_SECS (10), PROBE_REQUESTS (20).
set -euo pipefail
cd "$(dirname "$0")/.."
TOPO_REPO=$(pwd)
BIN=${1:-"${CARGO_TARGET_DIR:-target}/debug/aggios"}
[ -f "$BIN" ] && [ -x "$BIN" ] || { echo "FAILED: $BIN is not an executable (cargo build --bin aggios)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
TOPO_PORT_BASE=${TOPO_PORT_BASE:-19400}
LOAD_CONCURRENCY=${LOAD_CONCURRENCY:-8}
LOAD_SECS=${LOAD_SECS:-10}
PROBE_REQUESTS=${PROBE_REQUESTS:-20}
T_START=$(date +%s)

# shellcheck source=lib.sh
. topology/lib.sh
trap topo_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
topo_init

if [ ! -f topology/node_modules/.package-lock.json ] || [ topology/package-lock.json -nt topology/node_modules/.package-lock.json ]; then
  topo_say "npm ci in topology/"
  (cd topology && npm ci --no-audit --no-fund --silent) || topo_die "npm ci in topology/ failed"
fi

topo_start_postgres
topo_start_s3
topo_server_env
topo_replica_reads on
topo_migrate
topo_say "aggios serve: A on $TOPO_A_PORT, B on $TOPO_B_PORT (reads on the replica: ${AGGIOS_DATABASE_REPLICA_URLS:-off})"
topo_start_server a
topo_start_server b
topo_start_traefik

FAILED=()
fail() { printf 'FAIL %s\n' "$*"; FAILED+=("$1"); }
export TOPO_TRAEFIK TOPO_A TOPO_B TOPO_PG_URL TOPO_REPLICA_URL
export TOPO_ACCESS_LOG=$TOPO_WORK/access.log TOPO_TENANT_FILE=$TOPO_WORK/tenant.json
export TOPO_REPLICA_READS=$([ -n "${AGGIOS_DATABASE_REPLICA_URLS:-}" ] && echo 1 || echo 0)

# --- 1. functional ---------------------------------------------------------------
topo_say "functional checks through Traefik ($TOPO_TRAEFIK)"
node topology/functional.mjs || fail "functional checks"
[ -s "$TOPO_TENANT_FILE" ] || topo_die "no agency to load (the sign-up failed)"
read -r SUB TOKEN TENANT < <(node -e 'const t=require(process.argv[1]); console.log(t.subdomain, t.accessToken, t.tenantId)' "$TOPO_TENANT_FILE")

# load LABEL SECS [STOP_FILE]: starts load.mjs in the background (LOAD_PID).
load() {
  node topology/load.mjs "$TOPO_TRAEFIK" "$SUB" "$TOKEN" "$LOAD_CONCURRENCY" "$2" 120 "$1" "$TOPO_WORK/$1.json" ${3:+"$3"} &
  LOAD_PID=$!
  topo_track "load-$1" "$LOAD_PID"
}
finish_load() { # LABEL: waits for the load, checks the ledger against the primary
  wait "$LOAD_PID" || fail "load $1 (load.mjs exited non-zero)"
  rm -f "$TOPO_WORK/pids/load-$1.pid"
  node topology/verify.mjs "$TOPO_WORK/$1.json" "$TOPO_PG_URL" "$TENANT" || fail "acknowledged writes of $1"
}
field() { node -e 'const l=require(process.argv[1]); console.log(l.summary[process.argv[2]])' "$TOPO_WORK/$1.json" "$2"; }

# --- 2. SIGKILL mid-load -------------------------------------------------------------
topo_say "load through Traefik ($LOAD_CONCURRENCY loops, ${LOAD_SECS} s); A gets SIGKILL after 3 s"
load kill "$LOAD_SECS"
sleep 3
KILL_AT=$(date +%s%3N)
topo_stop_server a KILL
topo_wait_status aggios "$TOPO_A" DOWN 10
REROUTE_MS=$(($(date +%s%3N) - KILL_AT))
echo "Traefik marked A DOWN $REROUTE_MS ms after the SIGKILL (health check every ${TOPO_INTERVAL_SECS} s)"
node topology/probe.mjs "$TOPO_TRAEFIK" "$SUB" "$TOKEN" "$PROBE_REQUESTS" probe-after-kill "$TOPO_ACCESS_LOG" "127.0.0.1:$TOPO_B_PORT" \
  || fail "Traefik still routes to the killed replica"
finish_load kill
# The last request whose first attempt went to A (a retry, or a failure), by Traefik's access log.
LAST_TO_A=$(node -e '
  const fs = require("fs"); let last = null;
  for (const line of fs.readFileSync(process.argv[1], "utf8").split("\n")) {
    if (!line) continue; const j = JSON.parse(line); const id = j["request_X-Request-Id"] || "";
    if (!id.startsWith("kill-")) continue;
    const t = Date.parse(j.StartUTC);
    if (t < Number(process.argv[3])) continue;
    if ((j.RetryAttempts > 0 || j.ServiceAddr === process.argv[2] || j.DownstreamStatus >= 500) && (last === null || t > last)) last = t;
  }
  console.log(last === null ? "none" : `${last - Number(process.argv[3])} ms`);' "$TOPO_ACCESS_LOG" "127.0.0.1:$TOPO_A_PORT" "$KILL_AT")
KILL_FAILURES=$(field kill failures)
KILL_REQUESTS=$(field kill requests)
if [ "$KILL_FAILURES" -le "$LOAD_CONCURRENCY" ]; then
  echo "PASS failures with A SIGKILLed mid-load: $KILL_FAILURES of $KILL_REQUESTS (bound: the $LOAD_CONCURRENCY requests the loops can have in flight)"
else
  fail "failures with A SIGKILLed mid-load: $KILL_FAILURES of $KILL_REQUESTS, more than the $LOAD_CONCURRENCY in flight"
fi
topo_say "starting A again"
topo_start_server a
topo_wait_status aggios "$TOPO_A" UP 10
echo "Traefik marked A UP again $TOPO_MS ms after its /readyz answered 200"

# --- 3. rolling restart under load ------------------------------------------------------
topo_say "rolling restart (SIGTERM, exit, start, marked UP) of A then B under the same load"
STOP_FILE=$TOPO_WORK/rolling.stop
load rolling 0 "$STOP_FILE"
sleep 2
ROLL_NOTES=()
declare -A TERM_AT
for s in a b; do
  url=$([ "$s" = a ] && echo "$TOPO_A" || echo "$TOPO_B")
  TERM_AT[$s]=$(date +%s%3N)
  topo_stop_server "$s" TERM; drain=$TOPO_MS
  t0=$(date +%s%3N)
  topo_start_server "$s"; ready=$(($(date +%s%3N) - t0))
  topo_wait_status aggios "$url" UP 10; up=$TOPO_MS
  sleep $((2 * TOPO_INTERVAL_SECS))
  ROLL_NOTES+=("${s^^}: exited ${drain} ms after SIGTERM, ready ${ready} ms after start, UP in Traefik ${up} ms later")
  echo "${ROLL_NOTES[-1]}"
done
sleep 1
touch "$STOP_FILE"
finish_load rolling
ROLL_FAILURES=$(field rolling failures)
ROLL_REQUESTS=$(field rolling requests)
if [ "$ROLL_FAILURES" -eq 0 ]; then
  echo "PASS no failed request during the rolling restart ($ROLL_REQUESTS requests)"
else
  fail "rolling restart: $ROLL_FAILURES of $ROLL_REQUESTS requests failed (must be 0)"
  # Each failure against the SIGTERMs, by Traefik's access log.
  node -e '
    const fs = require("fs");
    const [ledger, log, a, b, termA, termB] = process.argv.slice(1);
    const servers = { [a]: ["A", Number(termA)], [b]: ["B", Number(termB)] };
    const lines = new Map();
    for (const line of fs.readFileSync(log, "utf8").split("\n")) {
      if (!line) continue; const j = JSON.parse(line); const id = j["request_X-Request-Id"];
      if (id && id.startsWith("rolling-")) lines.set(id, j);
    }
    for (const f of JSON.parse(fs.readFileSync(ledger, "utf8")).failures) {
      const j = lines.get(f.id);
      if (!j) { console.log(`  ${f.id}: ${f.status || f.error}, not in the access log`); continue; }
      const [name, term] = servers[j.ServiceAddr] || [j.ServiceAddr, NaN];
      const at = Date.parse(j.StartUTC) - term;
      console.log(`  ${f.id} (${f.kind}): HTTP ${j.DownstreamStatus} from ${name} after ${(j.Duration / 1e6).toFixed(0)} ms, sent ${at} ms ${at >= 0 ? "after" : "before"} ${name} got SIGTERM, ${j.RetryAttempts || 0} retries`);
    }' "$TOPO_WORK/rolling.json" "$TOPO_ACCESS_LOG" "127.0.0.1:$TOPO_A_PORT" "127.0.0.1:$TOPO_B_PORT" "${TERM_AT[a]}" "${TERM_AT[b]}"
  echo "  (each server drains for server.drain_secs after SIGTERM, /healthz at 503 and Connection: close on every"
  echo "   answer; a request Traefik still sent it after that found the listener closed)"
  for s in a b; do
    echo "--- server ${s^^}: warnings and errors (last 10) ---"
    sed 's/\x1b\[[0-9;]*m//g' "$TOPO_WORK/$s.err" | grep -E ' (WARN|ERROR) ' | tail -10 || true
  done
fi

# --- summary -------------------------------------------------------------------------------
ACKED=$(( $(field kill acked) + $(field rolling acked) ))
echo
echo "topology summary ($(( $(date +%s) - T_START )) s):"
echo "  requests through Traefik under load: $((KILL_REQUESTS + ROLL_REQUESTS)) ($KILL_REQUESTS with a SIGKILL, $ROLL_REQUESTS with a rolling restart), $LOAD_CONCURRENCY loops"
echo "  failures: $KILL_FAILURES with the SIGKILL (bound $LOAD_CONCURRENCY), $ROLL_FAILURES during the rolling restart (bound 0)"
echo "  acknowledged writes checked in the primary: $ACKED"
echo "  time to reroute: Traefik marked the killed replica DOWN after $REROUTE_MS ms; last request sent its way (retried or failed): ${LAST_TO_A} after the kill"
for n in "${ROLL_NOTES[@]}"; do echo "  rolling restart: $n"; done
if [ ${#FAILED[@]} -gt 0 ]; then
  topo_die "topology: $(IFS=,; echo "${FAILED[*]}" | sed 's/,/, /g')"
fi
echo "topology: all checks passed"
