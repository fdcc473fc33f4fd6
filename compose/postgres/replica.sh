#!/bin/sh
# A streaming read replica (the entrypoint of postgres-replica-N, run as the
# postgres user). On first start, with an empty data directory, it copies the
# primary with pg_basebackup -R, which also writes standby.signal and how to
# follow the primary (its connection and replication slot); every start then
# runs the image's own entrypoint, which finds the data and starts postgres
# as a hot standby. To rebuild a replica, remove its volume.
set -eu
: "${PRIMARY_HOST:=postgres}"
: "${REPLICATION_SLOT:?set REPLICATION_SLOT, one per replica}"
export PGPASSWORD="$AGGIOS_REPLICATION_PASSWORD"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready -q -h "$PRIMARY_HOST" -U replicator -d postgres; do sleep 1; done
    # The slot keeps the WAL this replica still needs (bounded on the
    # primary by max_slot_wal_keep_size); created once, reused on a rebuild.
    psql -h "$PRIMARY_HOST" -U replicator -d postgres -v ON_ERROR_STOP=1 -v slot="$REPLICATION_SLOT" -qAt >/dev/null <<'SQL'
SELECT pg_create_physical_replication_slot(:'slot')
WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = :'slot');
SQL
    pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" -R -X stream -S "$REPLICATION_SLOT" --checkpoint=fast
    chmod 700 "$PGDATA"
fi
exec docker-entrypoint.sh postgres -c hot_standby=on -c hot_standby_feedback=on "$@"
