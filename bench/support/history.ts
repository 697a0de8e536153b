import type { Pool } from 'pg';
import { analyzeSchema } from './database';

/**
 * History for `BENCH_PREFILL`: a store that already holds N events (each the
 * only event of its stream, like the appends measured) and fresh statistics,
 * instead of empty tables whose query plans were made for empty tables.
 * Written set-based in SQL: through the stores' APIs it would take minutes.
 */
export const HISTORY_DATA_SQL = `jsonb_build_object('playerId', gen_random_uuid(), 'action', 'jump', 'context', jsonb_build_object('x', 1), 'at', now())`;
export const HISTORY_METADATA_SQL = (commandId: string): string =>
  `jsonb_build_object('commandId', ${commandId}, 'correlationId', ${commandId}, 'actor', 'bench', 'worldId', 'bench')`;

/** Into an `events` table of lorestore's shape alone (the raw baselines). `pool`'s search_path is the schema. */
export const prefillEventsTable = async (pool: Pool, schema: string, events: number): Promise<void> => {
  await pool.query(
    `INSERT INTO events (stream_id, revision, event_id, type, data, metadata)
     SELECT 'player-' || gen_random_uuid(), 0, gen_random_uuid(), 'PlayerActionRecorded', ${HISTORY_DATA_SQL}, ${HISTORY_METADATA_SQL('gen_random_uuid()')}
       FROM generate_series(1, $1::int)`,
    [events],
  );
  await analyzeSchema(pool, schema);
};

/** Into a migrated lorestore schema: streams (heads), events (the log), commands (idempotency), as append_batch leaves them. */
export const prefillLorestore = async (pool: Pool, schema: string, events: number): Promise<void> => {
  await pool.query(
    `WITH history AS (
       SELECT 'player-' || gen_random_uuid() AS stream_id, gen_random_uuid() AS event_id, gen_random_uuid() AS command_id
         FROM generate_series(1, $1::int)
     ), heads AS (
       INSERT INTO streams (stream_id, revision, world_id, category) SELECT stream_id, 0, 'bench', 'player' FROM history
     ), logged AS (
       INSERT INTO events (stream_id, revision, event_id, type, data, metadata)
       SELECT stream_id, 0, event_id, 'PlayerActionRecorded', ${HISTORY_DATA_SQL}, ${HISTORY_METADATA_SQL('command_id')} FROM history
       RETURNING stream_id, event_id, position, transaction_id
     )
     INSERT INTO commands (command_id, command_hash, stream_id, result)
     SELECT h.command_id, 'prefill', h.stream_id,
            jsonb_build_object('streamId', h.stream_id, 'revision', 0, 'position', l.position, 'commit', l.transaction_id::text,
              'events', jsonb_build_array(jsonb_build_object('id', h.event_id, 'type', 'PlayerActionRecorded', 'revision', 0,
                                                             'position', l.position, 'commit', l.transaction_id::text)))
       FROM history h JOIN logged l USING (event_id)`,
    [events],
  );
  await analyzeSchema(pool, schema);
};
