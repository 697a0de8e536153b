import { PostgresEventStore } from '@lorestore/event-store';
import { describeEventStoreContract } from '@lorestore/event-store/testing';
import { createTestSchema } from '../support/database';

describeEventStoreContract('PostgreSQL adapter', async () => {
  const db = await createTestSchema('contract');
  await PostgresEventStore.migrate(db.pool, db.schema);
  const store = new PostgresEventStore({ pool: db.pool, schema: db.schema, pollIntervalMs: 100 });
  return {
    store,
    teardown: async () => {
      await store.close();
      await db.drop();
    },
  };
});
