#!/bin/sh
# The role streaming replicas connect as, and the pg_hba.conf line that lets
# it stream (a replication connection matches no `all` line). Runs once, when
# the primary's data directory is first initialised; on an existing primary,
# run the CREATE ROLE by hand, append the line and `SELECT pg_reload_conf()`.
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$AGGIOS_REPLICATION_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'pw';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
