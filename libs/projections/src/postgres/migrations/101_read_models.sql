-- Read models: what the projections keep current. Versions 101+ (the event
-- store's migrations are 001–099; both share one schema_migrations table).
-- Every row can be rebuilt from the log; `revision` is the stream revision of
-- the last event applied, so a redelivered event is recognised and skipped.

-- Where each projection has got to in the global feed: (commit, position) as
-- the feed orders it. Written in the same transaction as the rows it covers.
CREATE TABLE projection_checkpoints (
  name          text PRIMARY KEY,
  commit        xid8 NOT NULL,
  position      bigint NOT NULL,
  -- When the last event covered was appended: the base of the lag in milliseconds.
  event_time    timestamptz,
  events        bigint NOT NULL DEFAULT 0,
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE entities (
  world_id      text NOT NULL,
  entity_id     uuid NOT NULL,
  stream_id     text NOT NULL,
  kind          text NOT NULL,
  status        text NOT NULL,          -- active | despawned
  location_id   uuid,
  data          jsonb NOT NULL,         -- the entity's state, as the domain folds it
  revision      bigint NOT NULL,
  position      bigint NOT NULL,
  updated_at    timestamptz NOT NULL,
  PRIMARY KEY (world_id, entity_id)
);
-- The list query: a world's active entities in id order, by kind, by location, changed since.
CREATE INDEX entities_kind ON entities (world_id, kind, entity_id) WHERE status = 'active';
CREATE INDEX entities_location ON entities (world_id, location_id, entity_id) WHERE status = 'active';
CREATE INDEX entities_updated ON entities (world_id, updated_at);

CREATE TABLE world_state (
  world_id      text PRIMARY KEY,
  data          jsonb NOT NULL,
  revision      bigint NOT NULL,
  position      bigint NOT NULL,
  updated_at    timestamptz NOT NULL
);

CREATE TABLE narrative_state (
  world_id      text PRIMARY KEY,
  data          jsonb NOT NULL,
  revision      bigint NOT NULL,
  position      bigint NOT NULL,
  updated_at    timestamptz NOT NULL
);

CREATE TABLE player_state (
  world_id      text NOT NULL,
  player_id     uuid NOT NULL,
  data          jsonb NOT NULL,         -- relationships, counters, profile
  revision      bigint NOT NULL,
  position      bigint NOT NULL,
  updated_at    timestamptz NOT NULL,
  PRIMARY KEY (world_id, player_id)
);

-- One row per recorded action, partitioned by month of the action's time.
-- Partitions are created ahead of time by the projector (ensure_player_history_partitions);
-- the default partition takes anything outside them, so an insert never fails.
CREATE TABLE player_history (
  world_id      text NOT NULL,
  player_id     uuid NOT NULL,
  at            timestamptz NOT NULL,
  action        text NOT NULL,
  context       jsonb NOT NULL,
  revision      bigint NOT NULL,
  position      bigint NOT NULL,
  -- A redelivered event lands on the same row (the partition key must be part of it).
  PRIMARY KEY (world_id, player_id, revision, at)
) PARTITION BY RANGE (at);
CREATE TABLE player_history_default PARTITION OF player_history DEFAULT;
CREATE INDEX player_history_recent ON player_history (world_id, player_id, at DESC, revision DESC);

-- Creates the monthly partitions from `months_back` before now to `months_ahead`
-- after it that do not exist yet. Rows already in the default partition for a
-- new month are moved into it (PostgreSQL refuses to attach otherwise).
CREATE FUNCTION ensure_player_history_partitions(months_back int, months_ahead int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  month   date;
  name    text;
  created int := 0;
BEGIN
  FOR k IN -months_back .. months_ahead LOOP
    month := (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k))::date;
    name := format('player_history_%s', to_char(month, 'YYYY_MM'));
    CONTINUE WHEN to_regclass(format('%I.%I', current_schema(), name)) IS NOT NULL;
    EXECUTE format('CREATE TABLE %I (LIKE player_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format(
      'WITH moved AS (DELETE FROM player_history_default WHERE at >= %L::timestamptz AND at < %L::timestamptz RETURNING *) INSERT INTO %I SELECT * FROM moved',
      month::text || ' 00:00:00+00', (month + interval '1 month')::date::text || ' 00:00:00+00', name);
    EXECUTE format('ALTER TABLE player_history ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
      name, month::text || ' 00:00:00+00', (month + interval '1 month')::date::text || ' 00:00:00+00');
    created := created + 1;
  END LOOP;
  RETURN created;
END;
$$;

-- Drops monthly partitions that end before `keep_months` months ago; returns their names.
CREATE FUNCTION drop_player_history_partitions(keep_months int) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
  part   record;
  cutoff date := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months))::date;
BEGIN
  FOR part IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'player_history'::regclass AND c.relname ~ '^player_history_\d{4}_\d{2}$'
  LOOP
    IF to_date(substr(part.relname, 16), 'YYYY_MM') < cutoff THEN
      EXECUTE format('DROP TABLE %I', part.relname);
      RETURN NEXT part.relname;
    END IF;
  END LOOP;
END;
$$;

SELECT ensure_player_history_partitions(1, 3);
