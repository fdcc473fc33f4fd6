#!/bin/sh
# The login role the API connects as: a member of the runtime role that the
# migrations grant to (created here first so the grant has somewhere to go).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE aggios_app NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE aggios_api LOGIN PASSWORD '${AGGIOS_API_DB_PASSWORD}' NOSUPERUSER NOBYPASSRLS IN ROLE aggios_app;
SQL
