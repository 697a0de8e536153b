#!/usr/bin/env bash
# Entrypoint of a PostgreSQL streaming replica (image postgres:16).
#
# First start (empty data directory): waits for the primary, clones it with
#   pg_basebackup -R -X stream -C -S <slot> -D "$PGDATA"
# (-R writes standby.signal and primary_conninfo, -C -S creates the replica's own replication
# slot so the primary keeps the WAL it still needs), then runs postgres as a hot standby.
# Later starts: the data directory is already a standby; postgres resumes streaming.
#
# Environment: PRIMARY_HOST, PRIMARY_PORT (5432), REPLICATION_USER, REPLICATION_PASSWORD,
# REPLICA_SLOT (a lower-case identifier, one per replica), PGDATA.
# Arguments: extra postgres options (e.g. -c max_connections=300).
set -euo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${PRIMARY_HOST:?set PRIMARY_HOST}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_USER:?set REPLICATION_USER}"
: "${REPLICATION_PASSWORD:?set REPLICATION_PASSWORD}"
: "${REPLICA_SLOT:?set REPLICA_SLOT}"
export PGDATA

# As root (the image's default user): own the data directory, then run again as postgres.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown -R postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  exec gosu postgres bash "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "replica: empty data directory, cloning ${PRIMARY_HOST}:${PRIMARY_PORT}"
  until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER"; do
    echo "replica: waiting for the primary"
    sleep 2
  done
  export PGPASSWORD="$REPLICATION_PASSWORD"
  # Whatever a failed earlier attempt left behind.
  find "$PGDATA" -mindepth 1 -delete
  # A slot left by an earlier life of this replica (its volume was removed): start afresh.
  pg_receivewal -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" --drop-slot --slot="$REPLICA_SLOT" 2>/dev/null || true
  pg_basebackup -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" \
    -D "$PGDATA" -R -X stream -C -S "$REPLICA_SLOT" --checkpoint=fast --progress --verbose
  unset PGPASSWORD
  chmod 700 "$PGDATA"
  echo "replica: cloned; starting as a hot standby"
fi

exec postgres -c hot_standby=on "$@"
