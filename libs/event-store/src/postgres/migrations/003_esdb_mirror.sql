-- EventStoreDB mode (EVENT_STORE=esdb): the events table is a mirror of
-- EventStoreDB's log, written by one subscription to $all in EventStoreDB's
-- order (its commit/prepare position kept beside the local position), so the
-- projections, replay and idempotency lookups built on this table run
-- unchanged. In PostgreSQL mode the two columns stay null.
ALTER TABLE events ADD COLUMN esdb_commit bigint, ADD COLUMN esdb_prepare bigint;
CREATE UNIQUE INDEX events_esdb_position ON events (esdb_commit, esdb_prepare) WHERE esdb_commit IS NOT NULL;

-- Where the mirror has got to in EventStoreDB's $all, written in the same
-- transaction as the events it covers: a crash neither loses nor doubles one.
CREATE TABLE esdb_mirror (
  name        text PRIMARY KEY,
  commit      bigint NOT NULL,
  prepare     bigint NOT NULL,
  events      bigint NOT NULL DEFAULT 0,
  -- When the last mirrored event was written to EventStoreDB: the base of the lag in milliseconds.
  event_time  timestamptz,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
