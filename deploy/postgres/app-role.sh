#!/bin/sh
# Creates the role the app and its workers connect as. The PostgreSQL image runs this once,
# when it initialises an empty data directory (mounted into /docker-entrypoint-initdb.d).
#
# POSTGRES_USER, the role the image creates, is a superuser: a superuser (like any role with
# BYPASSRLS) is never subject to row-level security, so a server connected as it would see
# every tenant's rows whenever a query forgot its tenant. That role only runs the migrations
# (it owns the tables); the app role below has no SUPERUSER, no BYPASSRLS and no right to
# create roles or databases, and gets the table rights of what the migrations create through
# default privileges. An existing data directory does not run this again: there, run it once
# by hand with the same variables (psql's environment, PGHOST and so on, says where).
set -eu
app_user="${OPENRISK_APP_DB_USER:-openrisk_app}"
: "${OPENRISK_APP_DB_PASSWORD:?set OPENRISK_APP_DB_PASSWORD, the app role password}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="$POSTGRES_USER" -v db="$POSTGRES_DB" \
    -v app_user="$app_user" -v app_password="$OPENRISK_APP_DB_PASSWORD" <<'SQL'
CREATE ROLE :"app_user" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
    PASSWORD :'app_password';
-- TEMPORARY: imports and bulk writes stage their rows in temporary tables
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app_user";
GRANT USAGE ON SCHEMA public TO :"app_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app_user";
-- the tables already there when this runs by hand on an existing database
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_user";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_user";
SQL
