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
-- Only columns that never change are indexed, and pages keep room, so the head
-- update of every append stays a HOT update.
CREATE INDEX streams_world_category ON streams (world_id, category, stream_id);
ALTER TABLE streams SET (fillfactor = 70);

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

-- Idempotency: one row per command that appended, with the revisions it got.
-- A repeat reads its answer back from `events`.
CREATE TABLE commands (
  command_id      uuid PRIMARY KEY,
  command_hash    text,
  stream_id       text NOT NULL,
  first_revision  bigint NOT NULL,
  last_revision   bigint NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);

-- What an earlier append of revisions first..last of a stream answered; for repeats.
CREATE FUNCTION appended_result(stream text, first bigint, last bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
           'streamId', stream, 'revision', max(e.revision), 'position', max(e.position),
           'commit', (array_agg(e.transaction_id::text))[1],
           'events', jsonb_agg(jsonb_build_object('id', e.event_id, 'type', e.type, 'revision', e.revision,
                                                  'position', e.position, 'commit', e.transaction_id::text) ORDER BY e.revision))
    FROM events e
   WHERE e.stream_id = stream AND e.revision BETWEEN first AND last
$$;

-- One call appends a whole group-commit batch: one round trip, one commit, and
-- a fixed number of statements whatever the batch's size — lock the streams,
-- look up commands and event ids, decide every request in memory, then one
-- INSERT of all events, one UPDATE of the stream heads, one INSERT of commands.
-- requests: [{ stream, world, category, expected, commandId, commandHash, events: [{ id, type, v, data, metadata }] }]
-- One row per request, in order: status ok | same_as | duplicate | command_reused |
-- wrong_expected_version | event_id_conflict, and what the adapter needs to answer.
--
-- Every table access here is a key lookup. PL/pgSQL caches one plan per
-- statement per connection; planned while the tables were small, that plan is
-- a sequential scan, kept while the table grows (until the next ANALYZE). So
-- sequential scans are off inside this function: the cached plans use the indexes.
--
-- It does not NOTIFY: a notifying transaction holds the database-wide notify
-- lock through its commit (and WAL flush), which would serialise concurrent
-- batches. The adapter sends the wake-up after the commit instead.
CREATE FUNCTION append_batch(requests jsonb)
RETURNS TABLE (status text, current_revision bigint, same_as int, first_revision bigint, positions bigint[], tx text, prior jsonb)
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
  n           int := jsonb_array_length(requests);
  req         jsonb;
  stream      text;
  cmd         text;
  expected    text;
  cur         bigint;
  n_events    int;
  i           int;
  k           int;
  stream_ids  text[];
  command_ids uuid[];
  event_ids   uuid[];
  s_ids       text[];           -- the batch's streams, sorted
  s_revs      bigint[];         -- their revisions, advanced as requests are accepted
  si          int;
  known       jsonb;            -- command id -> { hash, stream, first, last } already stored
  seen_ids    jsonb;            -- event ids already stored -> stream
  -- Per request (1-based), filled in place: what became of it.
  st          text[] := array_fill(NULL::text, ARRAY[n]);
  cur_rev     bigint[] := array_fill(NULL::bigint, ARRAY[n]);
  same        int[] := array_fill(NULL::int, ARRAY[n]);
  first_rev   bigint[] := array_fill(NULL::bigint, ARRAY[n]);
  old         jsonb[] := array_fill(NULL::jsonb, ARRAY[n]);
  accepted    text[] := array_fill(NULL::text, ARRAY[n]);   -- command ids accepted in this batch
  prior_first bigint;
  prior_last  bigint;
BEGIN
  SELECT array_agg(DISTINCT r->>'stream' ORDER BY r->>'stream'),
         array_agg((r->>'commandId')::uuid) FILTER (WHERE r->>'commandId' IS NOT NULL)
    INTO stream_ids, command_ids
    FROM jsonb_array_elements(requests) AS r;
  SELECT array_agg((e->>'id')::uuid) INTO event_ids
    FROM jsonb_array_elements(requests) AS r, jsonb_array_elements(r->'events') AS e;

  -- Lock every stream of the batch up front, in one sorted order, so batches
  -- that touch the same streams queue behind each other instead of deadlocking.
  INSERT INTO streams (stream_id, world_id, category)
    SELECT DISTINCT ON (r->>'stream') r->>'stream', r->>'world', r->>'category'
      FROM jsonb_array_elements(requests) AS r
     ORDER BY r->>'stream'
  ON CONFLICT (stream_id) DO NOTHING;
  SELECT array_agg(s.stream_id ORDER BY s.stream_id), array_agg(s.revision ORDER BY s.stream_id) INTO s_ids, s_revs
    FROM (SELECT stream_id, revision FROM streams WHERE stream_id = ANY (stream_ids) ORDER BY stream_id FOR UPDATE) AS s;

  -- Commands seen before (copies racing in other batches waited on the stream lock above).
  SELECT coalesce(jsonb_object_agg(c.command_id::text, jsonb_build_object(
           'hash', c.command_hash, 'stream', c.stream_id, 'first', c.first_revision, 'last', c.last_revision)), '{}')
    INTO known FROM commands c WHERE c.command_id = ANY (coalesce(command_ids, '{}'));
  SELECT coalesce(jsonb_object_agg(e.event_id::text, e.stream_id), '{}')
    INTO seen_ids FROM events e WHERE e.event_id = ANY (coalesce(event_ids, '{}'));

  FOR i IN 0 .. n - 1 LOOP
    req := requests->i;
    stream := req->>'stream';
    cmd := req->>'commandId';

    IF cmd IS NOT NULL AND known ? cmd THEN
      IF known->cmd->>'hash' IS DISTINCT FROM req->>'commandHash' THEN
        st[i + 1] := 'command_reused';
      ELSE
        st[i + 1] := 'duplicate';
        prior_first := (known->cmd->>'first')::bigint;
        prior_last := (known->cmd->>'last')::bigint;
        old[i + 1] := appended_result(known->cmd->>'stream', prior_first, prior_last);
      END IF;
      CONTINUE;
    END IF;
    IF cmd IS NOT NULL AND cmd = ANY (accepted) THEN
      k := array_position(accepted, cmd);
      st[i + 1] := CASE WHEN requests->(k - 1)->>'commandHash' IS DISTINCT FROM req->>'commandHash' THEN 'command_reused' ELSE 'same_as' END;
      same[i + 1] := k - 1;
      CONTINUE;
    END IF;

    si := array_position(s_ids, stream);
    cur := s_revs[si];
    expected := req->>'expected';
    IF (expected = 'no_stream' AND cur <> -1)
       OR (expected = 'exists' AND cur = -1)
       OR (expected NOT IN ('any', 'no_stream', 'exists') AND cur <> expected::bigint) THEN
      st[i + 1] := 'wrong_expected_version';
      cur_rev[i + 1] := cur;
      CONTINUE;
    END IF;

    n_events := jsonb_array_length(req->'events');
    IF seen_ids ? (req->'events'->0->>'id') THEN
      -- The same event ids again: a repeat of an earlier append if all of them are in this stream.
      IF (SELECT count(*) FROM jsonb_array_elements(req->'events') AS x WHERE seen_ids->>(x->>'id') = stream) = n_events THEN
        st[i + 1] := 'duplicate';
        SELECT min(e.revision), max(e.revision) INTO prior_first, prior_last
          FROM events e
         WHERE e.event_id IN (SELECT (x->>'id')::uuid FROM jsonb_array_elements(req->'events') AS x);
        old[i + 1] := appended_result(stream, prior_first, prior_last);
      ELSE
        st[i + 1] := 'event_id_conflict';
      END IF;
      CONTINUE;
    END IF;

    st[i + 1] := 'ok';
    first_rev[i + 1] := cur + 1;
    s_revs[si] := cur + n_events;
    accepted[i + 1] := cmd;
  END LOOP;

  UPDATE streams s SET revision = h.revision, updated_at = now()
    FROM unnest(s_ids, s_revs) AS h(stream_id, revision)
   WHERE s.stream_id = h.stream_id AND s.revision <> h.revision;

  INSERT INTO commands (command_id, command_hash, stream_id, first_revision, last_revision)
    SELECT (t.r->>'commandId')::uuid, t.r->>'commandHash', t.r->>'stream',
           first_rev[t.i], first_rev[t.i] + jsonb_array_length(t.r->'events') - 1
      FROM jsonb_array_elements(requests) WITH ORDINALITY AS t(r, i)
     WHERE t.r->>'commandId' IS NOT NULL AND st[t.i] = 'ok';

  RETURN QUERY
    WITH input AS (
      SELECT t.i::int AS req_i, t.r->>'stream' AS stream_id, first_rev[t.i] + e.k - 1 AS revision,
             (e.ev->>'id')::uuid AS event_id, e.ev->>'type' AS type, coalesce((e.ev->>'v')::int, 1) AS v,
             e.ev->'data' AS data, coalesce(e.ev->'metadata', '{}'::jsonb) AS metadata
        FROM jsonb_array_elements(requests) WITH ORDINALITY AS t(r, i),
             jsonb_array_elements(t.r->'events') WITH ORDINALITY AS e(ev, k)
       WHERE st[t.i] = 'ok'
    ), ins AS (
      -- Positions are taken in this order, so a stream's positions grow with its revisions.
      INSERT INTO events (stream_id, revision, event_id, type, schema_version, data, metadata)
      SELECT input.stream_id, input.revision, input.event_id, input.type, input.v, input.data, input.metadata
        FROM input ORDER BY input.req_i, input.revision
      RETURNING events.event_id, events.position
    ), per_request AS (
      SELECT input.req_i, array_agg(ins.position ORDER BY input.revision) AS positions
        FROM ins JOIN input ON input.event_id = ins.event_id
       GROUP BY input.req_i
    )
    SELECT u.s, u.c, u.x, u.f, per_request.positions, pg_current_xact_id()::text, u.d
      FROM unnest(st, cur_rev, same, first_rev, old) WITH ORDINALITY AS u(s, c, x, f, d, i)
      LEFT JOIN per_request ON per_request.req_i = u.i
     ORDER BY u.i;
END;
$$;
