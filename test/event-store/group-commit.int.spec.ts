import { randomUUID } from 'node:crypto';
import { EventIdConflictError, PostgresEventStore } from '@lorestore/event-store';
import { createTestSchema, type TestSchema } from '../support/database';

describe('group commit and cross-instance races (PostgreSQL)', () => {
  let db: TestSchema;
  const batches: number[] = [];
  let a: PostgresEventStore;
  let b: PostgresEventStore;

  beforeAll(async () => {
    db = await createTestSchema('group');
    await PostgresEventStore.migrate(db.pool, db.schema);
    a = new PostgresEventStore({ pool: db.pool, schema: db.schema, onBatch: (size) => batches.push(size) });
    // A second store on the same schema stands for a second service instance with its own batches.
    b = new PostgresEventStore({ pool: db.pool, schema: db.schema });
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close()]);
    await db.drop();
  });

  it('batches concurrent appends into far fewer transactions than requests', async () => {
    batches.length = 0;
    const n = 400;
    await Promise.all(Array.from({ length: n }, (_, i) => a.appendToStream(`gc-${i % 40}-${randomUUID().slice(0, 4)}`, [{ id: randomUUID(), type: 'E', data: { i } }])));
    expect(batches.reduce((x, y) => x + y, 0)).toBe(n);
    expect(batches.length).toBeLessThan(n / 4);
  });

  it('one bad request does not fail the others in its batch', async () => {
    const s = `gc-bad-${randomUUID()}`;
    await a.appendToStream(s, [{ id: randomUUID(), type: 'E', data: {} }]);
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 10 }, () => a.appendToStream(`gc-ok-${randomUUID()}`, [{ id: randomUUID(), type: 'E', data: {} }])),
      a.appendToStream(s, [{ id: randomUUID(), type: 'E', data: {} }], { expectedRevision: 5n }),
      // An event with a null byte cannot be stored in jsonb: it breaks the whole batch, which is then retried one by one.
      a.appendToStream(`gc-nul-${randomUUID()}`, [{ id: randomUUID(), type: 'E', data: { text: 'a\u0000b' } }]),
    ]);
    expect(outcomes.slice(0, 10).every((o) => o.status === 'fulfilled')).toBe(true);
    expect(outcomes[10]!.status).toBe('rejected');
    expect(outcomes[11]!.status).toBe('rejected');
  });

  it('refuses one event id in two streams, whether the copies share a batch or race from two instances', async () => {
    for (const [first, second] of [[a, a], [a, b]] as const) {
      const id = randomUUID();
      const outcomes = await Promise.allSettled([
        first.appendToStream(`gc-id-${randomUUID()}`, [{ id, type: 'E', data: {} }]),
        second.appendToStream(`gc-id-${randomUUID()}`, [{ id, type: 'E', data: {} }]),
      ]);
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
      const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(rejected?.reason).toBeInstanceOf(EventIdConflictError);
    }
  });

  it('appends one commandId once when copies race through two instances', async () => {
    for (let round = 0; round < 10; round++) {
      const s = `gc-idem-${randomUUID()}`;
      const commandId = randomUUID();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).appendToStream(s, [{ id: randomUUID(), type: 'E', data: {} }], { commandId, commandHash: 'h' })),
      );
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(await a.readStream(s)).toHaveLength(1);
    }
  });

  it('keeps a stream gapless when two instances append to it concurrently', async () => {
    const s = `gc-two-${randomUUID()}`;
    await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).appendToStream(s, [{ id: randomUUID(), type: 'E', data: { i } }])));
    const read = await a.readStream(s);
    expect(read.map((e) => e.revision)).toEqual(Array.from({ length: 100 }, (_, i) => BigInt(i)));
    for (let i = 1; i < read.length; i++) expect(read[i]!.position.prepare).toBeGreaterThan(read[i - 1]!.position.prepare);
  });
});
