import { randomUUID } from 'node:crypto';
import { createPostgresPool } from '@lorestore/infra';
import { analyzeSchema, quoteIdent } from '../support/database';
import { HISTORY_DATA_SQL, HISTORY_METADATA_SQL } from '../support/history';
import { poolSizeFor, type AppendSpec, type Contender, type ContenderConfig } from './contender';

/**
 * Baseline (b): @event-driven-io/emmett-postgresql appending the same events.
 * It gets a pool of one connection per writer (its default pool holds 10) whose
 * search_path is its own schema, where its migrations create its tables.
 */
export const openEmmett = async (config: ContenderConfig, writers: number): Promise<Contender> => {
  // ESM-only packages: a real dynamic import (.swcrc keeps `import()` as is).
  const { getPostgreSQLEventStore } = await import('@event-driven-io/emmett-postgresql');
  const { STREAM_DOES_NOT_EXIST } = await import('@event-driven-io/emmett');
  const pool = createPostgresPool({ url: config.url, schema: config.schema, max: poolSizeFor(writers), applicationName: 'bench-emmett' });
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(config.schema)}`);
  const store = getPostgreSQLEventStore(config.url, { connectionOptions: { pool }, schema: { autoMigration: 'None' } });
  await store.schema.migrate();
  return {
    append: async (spec: AppendSpec) => {
      const { event } = spec;
      await store.appendToStream(
        spec.streamId,
        [{ type: event.type, data: event.data, metadata: event.metadata }],
        spec.revision === 0n ? { expectedStreamVersion: STREAM_DOES_NOT_EXIST } : undefined,
      );
    },
    prefill: async (events: number) => {
      // One append through the API tells which partition and kind emmett writes; the rest is set-based SQL.
      const probe = `player-${randomUUID()}`;
      await store.appendToStream(probe, [{ type: 'PlayerActionRecorded', data: {}, metadata: {} }], { expectedStreamVersion: STREAM_DOES_NOT_EXIST });
      await pool.query(
        `WITH sample AS (SELECT partition, message_kind FROM emt_messages WHERE stream_id = $2 LIMIT 1),
         history AS (SELECT 'player-' || gen_random_uuid() AS stream_id FROM generate_series(1, $1::int)),
         heads AS (
           INSERT INTO emt_streams (stream_id, stream_position, partition, stream_type, stream_metadata)
           SELECT h.stream_id, 1, s.partition, 'player', '{}'::jsonb FROM history h, sample s
         )
         INSERT INTO emt_messages (stream_id, stream_position, partition, message_kind, message_schema_version, message_id, message_type,
                                   message_data, message_metadata, transaction_id)
         SELECT h.stream_id, 1, s.partition, s.message_kind, '1', gen_random_uuid()::text, 'PlayerActionRecorded',
                ${HISTORY_DATA_SQL}, ${HISTORY_METADATA_SQL('gen_random_uuid()')}, pg_current_xact_id()
           FROM history h, sample s`,
        [events, probe],
      );
      await analyzeSchema(pool, config.schema);
    },
    stats: () => ({}),
    resetStats: () => undefined,
    close: async () => {
      await store.close();
      await pool.end();
    },
  };
};
