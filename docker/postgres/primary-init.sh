#!/usr/bin/env bash
# PostgreSQL primary, first start only (/docker-entrypoint-initdb.d runs on an empty data
# directory): the role the streaming replicas connect as, and the pg_hba.conf line that lets it
# open replication connections from the compose network. The WAL settings (wal_level=replica,
# max_wal_senders, …) are on the primary's command line in docker/compose.yml.
set -euo pipefail

: "${REPLICATION_USER:?set REPLICATION_USER}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=repl_user="$REPLICATION_USER" --set=repl_password="$REPLICATION_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I WITH REPLICATION LOGIN PASSWORD %L', :'repl_user', :'repl_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'repl_user')
\gexec
SQL

# "host all all all" (added by the image) does not cover replication connections.
echo "host replication ${REPLICATION_USER} all scram-sha-256" >>"$PGDATA/pg_hba.conf"
