#!/bin/sh
# The login role the API connects as: a member of the runtime role that the
# migrations grant to (created here first so the grant has somewhere to go).
# Runs once, when the primary's data directory is first initialised.
set -eu
psql -v ON_ERROR_STOP=1 -v pw="$AGGIOS_API_DB_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE aggios_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE aggios_api LOGIN PASSWORD :'pw' NOSUPERUSER NOBYPASSRLS IN ROLE aggios_app;
SQL
