#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d):
# the services' role and Grafana's read-only role, each with its own password. Passwords come
# from the environment through psql's \getenv, never on a command line or in the SQL text.
# Tested against Debian's PostgreSQL 15 by tests/spine/test_compose.py.
set -eu
: "${HV_DB_APP_PASSWORD:?}" "${HV_GRAFANA_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv app_password HV_DB_APP_PASSWORD
\getenv grafana_password HV_GRAFANA_DB_PASSWORD
-- homevitals_app: what ingest, the engine, delivery and the migration step log in as. It owns
-- the tables it creates; it is no superuser and cannot create roles or databases.
CREATE ROLE homevitals_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO homevitals_app;
GRANT USAGE, CREATE ON SCHEMA public TO homevitals_app;
-- grafana_reader: dashboards read, never write.
CREATE ROLE grafana_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'grafana_password';
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
GRANT pg_read_all_data TO grafana_reader;
SQL
