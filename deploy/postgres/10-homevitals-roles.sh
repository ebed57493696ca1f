#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d):
# one role per service, each with its own password, and Grafana's read-only role. Passwords come
# from the environment through psql's \getenv, never on a command line or in the SQL text.
# Tested against Debian's PostgreSQL 15 by tests/spine/test_compose.py.
#
#   hv_owner    the migration step: creates and owns the tables (no superuser)
#   hv_ingest, hv_alerts, hv_delivery (delivery worker and acknowledgement server), hv_api:
#               read and write rows of the tables hv_owner makes; no DDL, no superuser
#   grafana_reader  reads, never writes
set -eu
: "${HV_DB_OWNER_PASSWORD:?}" "${HV_DB_INGEST_PASSWORD:?}" "${HV_DB_ALERTS_PASSWORD:?}"
: "${HV_DB_DELIVERY_PASSWORD:?}" "${HV_DB_API_PASSWORD:?}" "${HV_GRAFANA_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv owner_password HV_DB_OWNER_PASSWORD
\getenv ingest_password HV_DB_INGEST_PASSWORD
\getenv alerts_password HV_DB_ALERTS_PASSWORD
\getenv delivery_password HV_DB_DELIVERY_PASSWORD
\getenv api_password HV_DB_API_PASSWORD
\getenv grafana_password HV_GRAFANA_DB_PASSWORD
CREATE ROLE hv_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE hv_services NOLOGIN;
CREATE ROLE hv_ingest LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE hv_services PASSWORD :'ingest_password';
CREATE ROLE hv_alerts LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE hv_services PASSWORD :'alerts_password';
CREATE ROLE hv_delivery LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE hv_services PASSWORD :'delivery_password';
CREATE ROLE hv_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE IN ROLE hv_services PASSWORD :'api_password';
CREATE ROLE grafana_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'grafana_password';
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO hv_owner, hv_services;
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
GRANT USAGE, CREATE ON SCHEMA public TO hv_owner;
GRANT USAGE ON SCHEMA public TO hv_services;
-- Whatever hv_owner creates, the services may read and write (rows only) and Grafana may read.
ALTER DEFAULT PRIVILEGES FOR ROLE hv_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO hv_services;
ALTER DEFAULT PRIVILEGES FOR ROLE hv_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO hv_services;
GRANT pg_read_all_data TO grafana_reader;
SQL
