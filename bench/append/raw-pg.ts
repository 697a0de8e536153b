import { createPostgresPool } from '@lorestore/infra';
import { createEventsTable } from '../support/events-table';
import { prefillEventsTable } from '../support/history';
import { poolSizeFor, type AppendSpec, type Contender, type ContenderConfig } from './contender';

const INSERT = {
  name: 'bench_raw_insert',
  text: `INSERT INTO events (stream_id, revision, event_id, type, schema_version, data, metadata)
         VALUES ($1, $2, $3, $4, 1, $5, $6) RETURNING position`,
};

/**
 * Baseline (a): one INSERT per transaction (autocommit) through `pg`, a
 * prepared statement on a pool with one connection per writer. Every append
 * is its own commit and its own WAL flush.
 */
export const openRawPg = async (config: ContenderConfig, writers: number): Promise<Contender> => {
  const pool = createPostgresPool({ url: config.url, schema: config.schema, max: poolSizeFor(writers), applicationName: 'bench-raw-pg' });
  await createEventsTable(pool, config.schema);
  return {
    append: async (spec: AppendSpec) => {
      const { event } = spec;
      await pool.query({
        ...INSERT,
        values: [spec.streamId, spec.revision.toString(), event.id, event.type, JSON.stringify(event.data), JSON.stringify(event.metadata)],
      });
    },
    prefill: (events: number) => prefillEventsTable(pool, config.schema, events),
    stats: () => ({}),
    resetStats: () => undefined,
    close: () => pool.end(),
  };
};
