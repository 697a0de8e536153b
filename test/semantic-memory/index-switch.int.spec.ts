import { randomUUID } from 'node:crypto';
import { streamIds, uuidV7 } from '@lorestore/domain';
import { PostgresEventStore, type EventData } from '@lorestore/event-store';
import { ReadModelStore } from '@lorestore/projections';
import { migrateReplay } from '@lorestore/replay';
import { MEMORY_PROJECTION, MemoryProjector, MemoryStore, PineconeVectorIndex, migrateSemanticMemory } from '@lorestore/semantic-memory';
import { createTestSchema, type TestSchema } from '../support/database';
import { startPineconeTestServer, type PineconeTestServer } from '../support/pinecone-test-server';

/**
 * The memory rows are the outbox of an external index. Switching VECTOR_INDEX
 * from embedded to Pinecone sends every searchable memory to Pinecone, and a
 * memory Pinecone would refuse (a zero vector or another dimension, from
 * events written before the API checked them) is left out with a warning
 * instead of blocking every later change.
 */
describe('memory index: switching to Pinecone, and rows Pinecone would refuse', () => {
  let db: TestSchema;
  let server: PineconeTestServer;
  let store: PostgresEventStore;

  beforeAll(async () => {
    db = await createTestSchema('mem_switch');
    await PostgresEventStore.migrate(db.pool, db.schema);
    await ReadModelStore.migrate(db.pool, db.schema);
    await migrateReplay(db.pool, db.schema);
    await migrateSemanticMemory(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema, pollIntervalMs: 20 });
    server = await startPineconeTestServer({ dimension: 3 });
  });
  afterAll(async () => {
    await store?.close();
    await server?.close();
    await db?.drop();
  });

  const event = (type: string, data: Record<string, unknown>): EventData => ({ id: randomUUID(), type, data: { ...data, at: new Date().toISOString() }, metadata: {} });

  it('sends every searchable memory after the switch, skips what Pinecone would refuse, and switches back', async () => {
    const npc = randomUUID();
    const stream = streamIds.entity('w', npc);
    await store.appendToStream(stream, [event('EntitySpawned', { entityId: npc, kind: 'npc', attributes: {}, locationId: null })]);
    const memory = (embedding: number[]) => event('NpcMemoryRecorded', { npcId: npc, memoryId: uuidV7(Date.now(), randomUUID()), text: 't', embedding, importance: 5, subjects: [] });
    await store.appendToStream(stream, [memory([1, 0, 0]), memory([0, 1, 0]), memory([0, 0, 0]), memory([1, 1])]);
    const log = await store.readStream(stream);

    const embedded = new MemoryStore(db.pool, MEMORY_PROJECTION, false);
    expect(await embedded.adoptIndexKind('embedded')).toBeNull();
    await new MemoryProjector({ store, pool: db.pool, memories: embedded, index: null, checkpointName: MEMORY_PROJECTION, batchSize: 100, lockName: 'x' }).apply(log);
    expect((await embedded.stats()).pendingSync).toBe(0);

    const external = new MemoryStore(db.pool, MEMORY_PROJECTION, true);
    expect(await external.adoptIndexKind('pinecone')).toBe('embedded');
    expect((await external.stats()).pendingSync).toBe(4);
    const index = new PineconeVectorIndex({ apiKey: 'test', host: server.host, backoffMs: 1, maxAttempts: 2 });
    const warnings: string[] = [];
    const projector = new MemoryProjector({
      store,
      pool: db.pool,
      memories: external,
      index,
      checkpointName: MEMORY_PROJECTION,
      dimension: 3,
      batchSize: 100,
      lockName: 'y',
      logger: { info: () => undefined, warn: (m) => warnings.push(m), error: () => undefined },
    });
    expect(await projector.syncOnce(index)).toBe(4);
    expect(server.counts().w).toBe(2);
    expect(warnings).toHaveLength(2);
    expect((await external.stats()).pendingSync).toBe(0);

    expect(await embedded.adoptIndexKind('embedded')).toBe('pinecone');
    expect((await embedded.stats()).pendingSync).toBe(0);
  });
});
