import { createHash } from 'node:crypto';
import { PostgresEventStore } from '@lorestore/event-store';
import { createPostgresPool } from '@lorestore/infra';
import { prefillLorestore } from '../support/history';
import { poolSizeFor, type AppendSpec, type Contender, type ContenderConfig } from './contender';

/**
 * lorestore's PostgresEventStore as the service calls it: one event per
 * append, an expected revision, a commandId and a command hash, group-committed.
 */
export const openLorestore = async (config: ContenderConfig, writers: number): Promise<Contender> => {
  const pool = createPostgresPool({ url: config.url, schema: config.schema, max: poolSizeFor(writers), applicationName: 'bench-lorestore' });
  await PostgresEventStore.migrate(pool, config.schema);
  let batches = 0;
  let appends = 0;
  let batchMs = 0;
  const store = new PostgresEventStore({
    pool,
    schema: config.schema,
    ...(config.groupCommit ? { groupCommit: config.groupCommit } : {}),
    onBatch: (size, ms) => {
      batches++;
      appends += size;
      batchMs += ms;
    },
  });
  return {
    append: async (spec: AppendSpec) => {
      const { event } = spec;
      await store.appendToStream(spec.streamId, [{ id: event.id, type: event.type, data: event.data, metadata: event.metadata, schemaVersion: 1 }], {
        expectedRevision: spec.revision === 0n ? 'no_stream' : 'any',
        commandId: spec.commandId,
        commandHash: createHash('sha256').update(JSON.stringify(event.data)).digest('base64url'),
      });
    },
    prefill: (events: number) => prefillLorestore(pool, config.schema, events),
    stats: () => ({
      batches,
      meanBatchSize: batches ? Math.round((appends / batches) * 10) / 10 : 0,
      meanBatchMs: batches ? Math.round((batchMs / batches) * 100) / 100 : 0,
    }),
    resetStats: () => {
      batches = 0;
      appends = 0;
      batchMs = 0;
    },
    close: async () => {
      await store.close();
      await pool.end();
    },
  };
};
