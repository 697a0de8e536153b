import { randomBytes, randomUUID } from 'node:crypto';
import { PostgresEventStore } from '@lorestore/event-store';
import { freePort } from '@lorestore/infra';
import { ProjectionRunner, ReadModelStore, RedisHotState } from '@lorestore/projections';
import { createTestSchema, type TestSchema } from '../support/database';

/**
 * The runner while its hot store is down: it retries the hot write, and
 * meanwhile holds no PostgreSQL transaction open. An open transaction with an
 * id would hold back pg_snapshot_xmin, and with it the gap-safe feed of every
 * reader of the database, for as long as Redis stays away.
 */
describe('projection runner with the hot store down', () => {
  let db: TestSchema;
  let store: PostgresEventStore;

  beforeAll(async () => {
    db = await createTestSchema('runner_hot_down');
    await PostgresEventStore.migrate(db.pool, db.schema);
    await ReadModelStore.migrate(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema });
  });
  afterAll(async () => {
    await store.close();
    await db.drop();
  });

  it('retries the hot write without a PostgreSQL transaction open, and commits nothing until it succeeds', async () => {
    // Nothing listens on this port: every hot write fails.
    const hot = new RedisHotState({ url: `redis://127.0.0.1:${await freePort()}`, ttlSeconds: 60, keyPrefix: `t:${randomBytes(3).toString('hex')}:`, connectTimeoutMs: 200, commandTimeoutMs: 200 });
    const runner = new ProjectionRunner({
      store,
      pool: db.pool,
      readModels: new ReadModelStore(db.pool),
      hot,
      batchSize: 100,
      lockName: db.schema,
      partitions: { monthsBack: 1, monthsAhead: 1, retentionMonths: null },
    });
    runner.start();
    try {
      await store.appendToStream(`world-w${randomBytes(3).toString('hex')}`, [
        { id: randomUUID(), type: 'WeatherChanged', data: { weather: 'rain', regionId: null, from: null, at: new Date().toISOString() }, metadata: {} },
      ]);
      await new Promise((r) => setTimeout(r, 1500));
      const { rows } = await db.pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
            AND application_name = $1 AND now() - xact_start > interval '200 milliseconds'`,
        [`lorestore-test-runner_hot_down`],
      );
      expect(Number(rows[0]!.n)).toBe(0);
      expect(await new ReadModelStore(db.pool).checkpoints()).toEqual([]);
    } finally {
      await runner.stop();
      await hot.close();
    }
  });
});
