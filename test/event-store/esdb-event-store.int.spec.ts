import { EsdbEventStore, EsdbMirror, MirroredEventStore, PostgresEventStore } from '@lorestore/event-store';
import { describeEventStoreContract } from '@lorestore/event-store/testing';
import { createTestSchema } from '../support/database';
import { startEsdbTestServer } from '../support/esdb-test-server';

/**
 * The EventStore contract on EventStoreDB: the adapter alone against the
 * protocol-level test double (test/support/esdb-test-server: EventStoreDB's
 * gRPC wire protocol in memory, not a database), through both append paths
 * of the client; against a real EventStoreDB/KurrentDB when
 * EVENTSTORE_CONNECTION_STRING is set; and EventStoreDB with its PostgreSQL
 * mirror (MirroredEventStore, what EVENT_STORE=esdb runs), which keeps
 * command results like the PostgreSQL adapter. The PostgreSQL adapter's run
 * is in postgres-event-store.int.spec.ts.
 */
const alone = { commandResults: false };

describeEventStoreContract('EventStoreDB adapter, test double (BatchAppend)', async () => {
  const server = await startEsdbTestServer();
  const store = new EsdbEventStore({ connectionString: server.connectionString });
  return { store, teardown: async () => (await store.close(), await server.close()) };
}, alone);

describeEventStoreContract('EventStoreDB adapter, test double (plain Append)', async () => {
  const server = await startEsdbTestServer({ batchAppend: false });
  const store = new EsdbEventStore({ connectionString: server.connectionString });
  return { store, teardown: async () => (await store.close(), await server.close()) };
}, alone);

const real = process.env.EVENTSTORE_CONNECTION_STRING;
if (real) {
  describeEventStoreContract(`EventStoreDB adapter, real server (${real.replace(/\/\/[^@]*@/, '//***@')})`, async () => {
    const store = new EsdbEventStore({ connectionString: real });
    return { store, teardown: () => store.close() };
  }, alone);
} else {
  describe.skip('EventStore contract: EventStoreDB adapter, real server — not run: EVENTSTORE_CONNECTION_STRING is not set (docker compose --profile esdb up kurrentdb)', () => {
    it('runs the contract against a real EventStoreDB', () => undefined);
  });
}

describeEventStoreContract('EventStoreDB + PostgreSQL mirror (EVENT_STORE=esdb), test double', async () => {
  const server = await startEsdbTestServer();
  const db = await createTestSchema('esdb_mirror');
  await PostgresEventStore.migrate(db.pool, db.schema);
  const esdb = new EsdbEventStore({ connectionString: server.connectionString });
  const store = new MirroredEventStore({ pool: db.pool, schema: db.schema, pollIntervalMs: 50, esdb, mirrorWaitMs: 5000 });
  const mirror = new EsdbMirror({ esdb, pool: db.pool, lockName: `${db.schema}.mirror`, onCommitted: () => store.mirroredNow() });
  mirror.start();
  return {
    store,
    teardown: async () => {
      await mirror.stop();
      await store.close();
      await esdb.close();
      await server.close();
      await db.drop();
    },
  };
});
