#!/bin/sh
# Run once by the postgres image when its volume is first created (/docker-entrypoint-initdb.d):
# the role syncd's nodes connect as. Not the image's superuser, which skips row-level security,
# but an ordinary role that owns syncd's tables (its first node creates them) and is bound by
# their forced policies (docs/deployment.md, "Row-level security and the database role").
set -e
psql -v ON_ERROR_STOP=1 -v role="$SYNCD_DB_USER" -v password="$SYNCD_DB_PASSWORD" \
    -v db="$POSTGRES_DB" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
GRANT USAGE, CREATE ON SCHEMA public TO :"role";
SQL
