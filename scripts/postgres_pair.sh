# Sourced by scripts/test.sh, topology/ and benches/:
#   start_postgres_pair DIR PRIMARY_PORT REPLICA_PORT
# starts a private PostgreSQL 15 primary (initdb, trust auth on 127.0.0.1,
# replication allowed) and a streaming replica of it made with
# `pg_basebackup -R`, both as the `postgres` user with their sockets in DIR,
# waits until the replica streams, and sets PG_PAIR_PRIMARY_URL and
# PG_PAIR_REPLICA_URL (database `postgres`). The machine's own PostgreSQL and
# its pg_hba.conf are not touched. `stop_postgres_pair DIR` stops both.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_pg_as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres_pair() {
  local dir=$1 primary_port=$2 replica_port=$3
  [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_basebackup" ] || { echo "PostgreSQL server binaries are missing in $PG_BIN" >&2; return 1; }
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  _pg_as_postgres "$PG_BIN/initdb" -D "$dir/primary" -A trust -U postgres -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  # wal_level = replica and max_wal_senders = 10 are PostgreSQL 15's defaults.
  cat >>"$dir/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $primary_port
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
CONF
  echo "host replication all 127.0.0.1/32 trust" >>"$dir/primary/pg_hba.conf"
  _pg_as_postgres "$PG_BIN/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w -t 30 start >/dev/null \
    || { tail -20 "$dir/primary.log" >&2; return 1; }
  _pg_as_postgres "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/replica" -R -X stream -c fast \
    >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; return 1; }
  _pg_as_postgres "$PG_BIN/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -o "-p $replica_port" -w -t 30 start >/dev/null \
    || { tail -20 "$dir/replica.log" >&2; return 1; }
  PG_PAIR_PRIMARY_URL="postgres://postgres@127.0.0.1:$primary_port/postgres"
  PG_PAIR_REPLICA_URL="postgres://postgres@127.0.0.1:$replica_port/postgres"
  local state=
  for _ in $(seq 1 100); do
    state=$(psql "$PG_PAIR_PRIMARY_URL" -qAtc "SELECT state FROM pg_stat_replication LIMIT 1" 2>/dev/null)
    [ "$state" = streaming ] && [ "$(psql "$PG_PAIR_REPLICA_URL" -qAtc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ] && return 0
    sleep 0.2
  done
  echo "the replica on $replica_port is not streaming from the primary on $primary_port (state '$state')" >&2
  return 1
}

stop_postgres_pair() {
  local dir=$1 node
  for node in replica primary; do
    [ -d "$dir/$node" ] || continue
    _pg_as_postgres "$PG_BIN/pg_ctl" -D "$dir/$node" -m fast -w -t 20 stop >/dev/null 2>&1 \
      || _pg_as_postgres "$PG_BIN/pg_ctl" -D "$dir/$node" -m immediate stop >/dev/null 2>&1 || true
  done
}
