-- The log. Applied with search_path set to the service's schema.

CREATE TABLE streams (
  stream_id   text PRIMARY KEY,
  -- Last revision; -1 while the stream has no events (a row may exist before its first event commits).
  revision    bigint NOT NULL DEFAULT -1,
  world_id    text,
  category    text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_world_category ON streams (world_id, category, stream_id) WHERE revision >= 0;

CREATE TABLE events (
  position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  -- The writing transaction. Readers of the global feed only pass rows whose
  -- transaction is older than every transaction still running, so an event that
  -- commits late with a lower position is never skipped (gap-safe order).
  transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
  stream_id       text NOT NULL,
  revision        bigint NOT NULL,
  event_id        uuid NOT NULL,
  type            text NOT NULL,
  schema_version  int NOT NULL DEFAULT 1,
  data            jsonb NOT NULL,
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT events_stream_revision UNIQUE (stream_id, revision),
  CONSTRAINT events_event_id UNIQUE (event_id)
);
CREATE INDEX events_feed ON events (transaction_id, position);

-- Idempotency: one row per command that appended, holding the answer it got.
CREATE TABLE commands (
  command_id    uuid PRIMARY KEY,
  command_hash  text,
  stream_id     text NOT NULL,
  result        jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- One call appends a whole group-commit batch: one round trip, one commit.
-- requests: [{ stream, world, category, expected, commandId, commandHash, events: [{ id, type, v, data, metadata }] }]
-- Returns one jsonb per request, in order: { status: ok | duplicate | command_reused | wrong_expected_version | event_id_conflict, ... }
CREATE FUNCTION append_batch(requests jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql AS $$
DECLARE
  req       jsonb;
  stream    text;
  cur       bigint;
  expected  text;
  cmd       uuid;
  found_row jsonb;
  n_ids     int;
  n_here    int;
  n_events  int;
  result    jsonb;
  appended  boolean := false;
BEGIN
  -- Lock every stream of the batch up front, in one sorted order, so batches
  -- that touch the same streams queue behind each other instead of deadlocking.
  INSERT INTO streams (stream_id, world_id, category)
    SELECT DISTINCT ON (r->>'stream') r->>'stream', r->>'world', r->>'category'
    FROM jsonb_array_elements(requests) AS r
    ORDER BY r->>'stream'
  ON CONFLICT (stream_id) DO NOTHING;
  PERFORM 1 FROM streams
    WHERE stream_id IN (SELECT r->>'stream' FROM jsonb_array_elements(requests) AS r)
    ORDER BY stream_id
    FOR UPDATE;

  FOR req IN SELECT value FROM jsonb_array_elements(requests) LOOP
    stream := req->>'stream';
    cmd := (req->>'commandId')::uuid;

    -- A command seen before answers with its first result. Copies racing in
    -- other batches wait on the stream lock above, then find this row.
    IF cmd IS NOT NULL THEN
      SELECT jsonb_build_object(
               'status', CASE WHEN c.command_hash IS DISTINCT FROM req->>'commandHash' THEN 'command_reused' ELSE 'duplicate' END,
               'result', c.result)
        INTO found_row FROM commands c WHERE c.command_id = cmd;
      IF found_row IS NOT NULL THEN
        RETURN NEXT found_row;
        CONTINUE;
      END IF;
    END IF;

    SELECT s.revision INTO cur FROM streams s WHERE s.stream_id = stream;
    expected := req->>'expected';
    IF (expected = 'no_stream' AND cur <> -1)
       OR (expected = 'exists' AND cur = -1)
       OR (expected NOT IN ('any', 'no_stream', 'exists') AND cur <> expected::bigint) THEN
      RETURN NEXT jsonb_build_object('status', 'wrong_expected_version', 'current', cur);
      CONTINUE;
    END IF;

    -- Event ids already stored: the same append repeated (all of them, in this stream) is a no-op.
    n_events := jsonb_array_length(req->'events');
    SELECT count(*), count(*) FILTER (WHERE e.stream_id = stream) INTO n_ids, n_here
      FROM events e
      WHERE e.event_id IN (SELECT (x->>'id')::uuid FROM jsonb_array_elements(req->'events') AS x);
    IF n_ids > 0 THEN
      IF n_ids = n_events AND n_here = n_events THEN
        SELECT jsonb_build_object('status', 'duplicate', 'result', jsonb_build_object(
                 'streamId', stream,
                 'revision', max(e.revision),
                 'position', max(e.position),
                 'commit', (array_agg(e.transaction_id::text))[1],
                 'events', jsonb_agg(jsonb_build_object('id', e.event_id, 'type', e.type, 'revision', e.revision,
                                                        'position', e.position, 'commit', e.transaction_id::text) ORDER BY e.revision)))
          INTO found_row
          FROM events e
          WHERE e.event_id IN (SELECT (x->>'id')::uuid FROM jsonb_array_elements(req->'events') AS x);
        RETURN NEXT found_row;
      ELSE
        RETURN NEXT jsonb_build_object('status', 'event_id_conflict');
      END IF;
      CONTINUE;
    END IF;

    WITH ins AS (
      INSERT INTO events (stream_id, revision, event_id, type, schema_version, data, metadata)
      SELECT stream, cur + t.ord, (t.x->>'id')::uuid, t.x->>'type', COALESCE((t.x->>'v')::int, 1), t.x->'data',
             COALESCE(t.x->'metadata', '{}'::jsonb)
        FROM jsonb_array_elements(req->'events') WITH ORDINALITY AS t(x, ord)
        ORDER BY t.ord
      RETURNING event_id, type, revision, position, transaction_id
    )
    SELECT jsonb_build_object(
             'streamId', stream,
             'revision', max(ins.revision),
             'position', max(ins.position),
             'commit', pg_current_xact_id()::text,
             'events', jsonb_agg(jsonb_build_object('id', ins.event_id, 'type', ins.type, 'revision', ins.revision,
                                                    'position', ins.position, 'commit', ins.transaction_id::text) ORDER BY ins.revision))
      INTO result FROM ins;

    UPDATE streams SET revision = (result->>'revision')::bigint, updated_at = now() WHERE stream_id = stream;
    IF cmd IS NOT NULL THEN
      INSERT INTO commands (command_id, command_hash, stream_id, result) VALUES (cmd, req->>'commandHash', stream, result);
    END IF;
    appended := true;
    RETURN NEXT jsonb_build_object('status', 'ok', 'result', result);
  END LOOP;

  -- Delivered on commit: wakes subscribers without polling.
  IF appended THEN
    PERFORM pg_notify('lorestore_events_' || current_schema(), '');
  END IF;
  RETURN;
END;
$$;
