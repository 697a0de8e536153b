-- append_batch, set-based: the first version ran six statements per request
-- (and planned its jsonb sub-selects as sequential scans on young tables).
-- This one runs a fixed number of statements per batch, whatever its size:
-- lock the streams, look up commands and event ids, decide every request in
-- memory, then one INSERT of all events, one UPDATE of the stream heads and
-- one INSERT of the command results. Same input and output as before.
--
-- It no longer NOTIFYs: a notifying transaction holds the database-wide notify
-- lock through its commit (and WAL flush), which serialised concurrent batches.
-- The store sends the wake-up after the batch has committed instead.
--
-- Every table access here is a key lookup. PL/pgSQL caches one plan per
-- statement per connection; planned while the tables were small, that plan is
-- a sequential scan, kept while the table grows (until the next ANALYZE). So
-- sequential scans are off inside this function: the cached plans use the indexes.
CREATE OR REPLACE FUNCTION append_batch(requests jsonb) RETURNS SETOF jsonb
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
  n           int := jsonb_array_length(requests);
  req         jsonb;
  prior       jsonb;
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
  known       jsonb;            -- command id -> { hash, result } already stored
  seen_ids    jsonb;            -- event ids already stored -> stream
  -- Per request (1-based), filled in place: what became of it.
  status      text[] := array_fill(NULL::text, ARRAY[n]);
  detail      jsonb[] := array_fill(NULL::jsonb, ARRAY[n]);
  first_rev   bigint[] := array_fill(NULL::bigint, ARRAY[n]);
  accepted    text[] := array_fill(NULL::text, ARRAY[n]);   -- command ids accepted in this batch
  n_accepted  int := 0;
  results     jsonb := '{}';    -- request index -> stored result
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
  SELECT coalesce(jsonb_object_agg(c.command_id::text, jsonb_build_object('hash', c.command_hash, 'result', c.result)), '{}')
    INTO known FROM commands c WHERE c.command_id = ANY (coalesce(command_ids, '{}'));
  SELECT coalesce(jsonb_object_agg(e.event_id::text, e.stream_id), '{}')
    INTO seen_ids FROM events e WHERE e.event_id = ANY (coalesce(event_ids, '{}'));

  FOR i IN 0 .. n - 1 LOOP
    req := requests->i;
    stream := req->>'stream';
    cmd := req->>'commandId';

    IF cmd IS NOT NULL AND known ? cmd THEN
      status[i + 1] := CASE WHEN known->cmd->>'hash' IS DISTINCT FROM req->>'commandHash' THEN 'command_reused' ELSE 'duplicate' END;
      detail[i + 1] := known->cmd->'result';
      CONTINUE;
    END IF;
    IF cmd IS NOT NULL AND cmd = ANY (accepted) THEN
      k := array_position(accepted, cmd);
      status[i + 1] := CASE WHEN requests->(k - 1)->>'commandHash' IS DISTINCT FROM req->>'commandHash' THEN 'command_reused' ELSE 'same_as' END;
      detail[i + 1] := to_jsonb(k - 1);
      CONTINUE;
    END IF;

    si := array_position(s_ids, stream);
    cur := s_revs[si];
    expected := req->>'expected';
    IF (expected = 'no_stream' AND cur <> -1)
       OR (expected = 'exists' AND cur = -1)
       OR (expected NOT IN ('any', 'no_stream', 'exists') AND cur <> expected::bigint) THEN
      status[i + 1] := 'wrong_expected_version';
      detail[i + 1] := to_jsonb(cur);
      CONTINUE;
    END IF;

    n_events := jsonb_array_length(req->'events');
    IF seen_ids ? (req->'events'->0->>'id') THEN
      -- The same event ids again: a repeat of an earlier append if all of them are in this stream.
      IF (SELECT count(*) FROM jsonb_array_elements(req->'events') AS x WHERE seen_ids->>(x->>'id') = stream) = n_events THEN
        status[i + 1] := 'duplicate';
        SELECT jsonb_build_object(
                 'streamId', stream, 'revision', max(e.revision), 'position', max(e.position),
                 'commit', (array_agg(e.transaction_id::text))[1],
                 'events', jsonb_agg(jsonb_build_object('id', e.event_id, 'type', e.type, 'revision', e.revision,
                                                        'position', e.position, 'commit', e.transaction_id::text) ORDER BY e.revision))
          INTO prior
          FROM events e
         WHERE e.event_id IN (SELECT (x->>'id')::uuid FROM jsonb_array_elements(req->'events') AS x);
        detail[i + 1] := prior;
      ELSE
        status[i + 1] := 'event_id_conflict';
      END IF;
      CONTINUE;
    END IF;

    first_rev[i + 1] := cur + 1;
    s_revs[si] := cur + n_events;
    accepted[i + 1] := cmd;
    n_accepted := n_accepted + 1;
    status[i + 1] := 'ok';
  END LOOP;

  IF n_accepted > 0 THEN
    WITH input AS (
      SELECT t.i::int - 1 AS req_i, t.r->>'stream' AS stream_id, first_rev[t.i] + e.k - 1 AS revision,
             (e.ev->>'id')::uuid AS event_id, e.ev->>'type' AS type, coalesce((e.ev->>'v')::int, 1) AS v,
             e.ev->'data' AS data, coalesce(e.ev->'metadata', '{}'::jsonb) AS metadata
        FROM jsonb_array_elements(requests) WITH ORDINALITY AS t(r, i),
             jsonb_array_elements(t.r->'events') WITH ORDINALITY AS e(ev, k)
       WHERE status[t.i] = 'ok'
    ), ins AS (
      -- Positions are taken in this order, so a stream's positions grow with its revisions.
      INSERT INTO events (stream_id, revision, event_id, type, schema_version, data, metadata)
      SELECT stream_id, revision, event_id, type, v, data, metadata FROM input ORDER BY req_i, revision
      RETURNING event_id, type, stream_id, revision, position
    )
    SELECT jsonb_object_agg(r.req_i, r.result) INTO results
      FROM (SELECT input.req_i,
                   jsonb_build_object(
                     'streamId', min(ins.stream_id), 'revision', max(ins.revision), 'position', max(ins.position),
                     'commit', pg_current_xact_id()::text,
                     'events', jsonb_agg(jsonb_build_object('id', ins.event_id, 'type', ins.type, 'revision', ins.revision,
                                                            'position', ins.position, 'commit', pg_current_xact_id()::text)
                                         ORDER BY ins.revision)) AS result
              FROM ins JOIN input ON input.event_id = ins.event_id
             GROUP BY input.req_i) AS r;

    UPDATE streams s SET revision = h.revision, updated_at = now()
      FROM unnest(s_ids, s_revs) AS h(stream_id, revision)
     WHERE s.stream_id = h.stream_id AND s.revision <> h.revision;

    INSERT INTO commands (command_id, command_hash, stream_id, result)
      SELECT (r->>'commandId')::uuid, r->>'commandHash', r->>'stream', results->(t.i - 1)::text
        FROM jsonb_array_elements(requests) WITH ORDINALITY AS t(r, i)
       WHERE r->>'commandId' IS NOT NULL AND status[t.i] = 'ok';
  END IF;

  FOR i IN 0 .. n - 1 LOOP
    RETURN NEXT CASE status[i + 1]
      WHEN 'ok' THEN jsonb_build_object('status', 'ok', 'result', results->i::text)
      WHEN 'same_as' THEN jsonb_build_object('status', 'duplicate', 'result', results->(detail[i + 1]#>>'{}'))
      WHEN 'duplicate' THEN jsonb_build_object('status', 'duplicate', 'result', detail[i + 1])
      WHEN 'command_reused' THEN jsonb_build_object('status', 'command_reused')
      WHEN 'wrong_expected_version' THEN jsonb_build_object('status', 'wrong_expected_version', 'current', detail[i + 1])
      ELSE jsonb_build_object('status', 'event_id_conflict')
    END;
  END LOOP;
  RETURN;
END;
$$;
