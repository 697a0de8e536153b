-- Per-stream order in the global feed. The feed is ordered by (writing
-- transaction's id, position), and a transaction gets its id at its first
-- write or row lock, before it may wait for a stream's lock. A transaction
-- that waited on a stream while a newer one (higher id) appended to it would
-- then put its later revisions before that stream's earlier ones in the feed:
-- projections would see revision n+1 before n. `last_tx` records which
-- transaction last wrote each stream; append_batch refuses to write after a
-- newer writer (SQLSTATE 40001) and the adapter runs the batch again.

ALTER TABLE streams ADD COLUMN last_tx xid8;

CREATE OR REPLACE FUNCTION append_batch(requests jsonb)
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
  newest_writer xid8;
BEGIN
  SELECT array_agg(DISTINCT r->>'stream' ORDER BY r->>'stream'),
         array_agg((r->>'commandId')::uuid) FILTER (WHERE r->>'commandId' IS NOT NULL)
    INTO stream_ids, command_ids
    FROM jsonb_array_elements(requests) AS r;
  SELECT array_agg((e->>'id')::uuid) INTO event_ids
    FROM jsonb_array_elements(requests) AS r, jsonb_array_elements(r->'events') AS e;

  -- Lock every stream of the batch up front, in one sorted order, so batches
  -- that touch the same streams queue behind each other instead of deadlocking.
  INSERT INTO streams (stream_id, world_id, category, last_tx)
    SELECT DISTINCT ON (r->>'stream') r->>'stream', r->>'world', r->>'category', pg_current_xact_id()
      FROM jsonb_array_elements(requests) AS r
     ORDER BY r->>'stream'
  ON CONFLICT (stream_id) DO NOTHING;
  SELECT array_agg(s.stream_id ORDER BY s.stream_id), array_agg(s.revision ORDER BY s.stream_id), max(s.last_tx) INTO s_ids, s_revs, newest_writer
    FROM (SELECT stream_id, revision, last_tx FROM streams WHERE stream_id = ANY (stream_ids) ORDER BY stream_id FOR UPDATE) AS s;
  -- This transaction's id was assigned before it waited for these locks. If a
  -- transaction with a higher id wrote one of the streams meanwhile, our events
  -- would sort before its earlier revisions in the feed's (transaction, position)
  -- order: give up, and let the adapter run the batch again in a new transaction.
  IF newest_writer > pg_current_xact_id() THEN
    RAISE EXCEPTION USING ERRCODE = '40001',
      MESSAGE = 'append_batch: a stream of this batch was written by a newer transaction while it waited; run the batch again';
  END IF;

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

  UPDATE streams s SET revision = h.revision, last_tx = pg_current_xact_id(), updated_at = now()
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
