import { randomUUID } from 'node:crypto';
import { PostgresEventStore, type RecordedEvent } from '@lorestore/event-store';
import { eventually } from '@lorestore/event-store/testing';
import { createTestSchema, type TestSchema } from '../support/database';

/**
 * The global feed's order is (writing transaction, position), and each
 * stream's events must come in revision order within it: projections fold
 * streams from the feed and cannot take revision n+1 before n.
 */
describe('global feed order (PostgreSQL)', () => {
  let db: TestSchema;
  let store: PostgresEventStore;

  beforeAll(async () => {
    db = await createTestSchema('feed_order');
    await PostgresEventStore.migrate(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema, groupCommit: { maxConcurrentBatches: 4, maxBatchSize: 8 } });
  });
  afterAll(async () => {
    await store.close();
    await db.drop();
  });

  const readWholeFeed = async (): Promise<RecordedEvent[]> => {
    const out: RecordedEvent[] = [];
    for (let from: RecordedEvent['position'] | null = null; ; ) {
      const page = await store.readFeed(from, false, 500);
      if (page.length === 0) return out;
      out.push(...page);
      from = page.at(-1)!.position;
    }
  };

  it('orders transactions by number, not by the text of their ids (9 before 10)', async () => {
    // Transaction ids are sent to clients as text; sorting that text puts '1000' before '999'.
    // Ids of different lengths (old ones, below any running transaction, so the feed shows them at once):
    const insert = (xid: string, type: string) =>
      db.pool.query(
        `INSERT INTO events (transaction_id, stream_id, revision, event_id, type, data)
         VALUES ($1::xid8, $2, 0, $3, $4, '{}') RETURNING position`,
        [xid, `order-${randomUUID()}`, randomUUID(), type],
      );
    await insert('10', 'Second');
    await insert('9', 'First');
    const feed = (await readWholeFeed()).filter((e) => e.type === 'First' || e.type === 'Second');
    expect(feed.map((e) => e.type)).toEqual(['First', 'Second']);
    const head = await store.headPosition();
    // The newest transaction is 10 (text order would say '9').
    expect(head!.commit).toBe(10n);
    await db.pool.query("DELETE FROM events WHERE type IN ('First', 'Second')");
  });

  it('keeps every stream in revision order when concurrent batches contend for the same streams', async () => {
    const streams = Array.from({ length: 6 }, () => `order-${randomUUID()}`);
    // Many concurrent single-event appends over a few shared streams, from several group-commit batches in
    // flight at once: a batch that takes its transaction id, then waits for a stream another batch is
    // writing, must not put its events before that batch's in the feed.
    await Promise.all(
      Array.from({ length: 600 }, (_, i) =>
        store.appendToStream(streams[(i * 7) % streams.length]!, [{ id: randomUUID(), type: 'Step', data: { i } }]),
      ),
    );
    // The feed shows a transaction once every older one has ended (the store's own wake-up NOTIFYs included).
    const feed = await eventually(
      async () => (await readWholeFeed()).filter((e) => streams.includes(e.streamId)),
      (events) => events.length === 600,
    );
    expect(feed).toHaveLength(600);
    const next = new Map<string, bigint>();
    const outOfOrder: string[] = [];
    for (const event of feed) {
      const expected = next.get(event.streamId) ?? 0n;
      if (event.revision !== expected) outOfOrder.push(`${event.streamId}: revision ${event.revision} where ${expected} was due`);
      next.set(event.streamId, event.revision + 1n);
    }
    expect(outOfOrder).toEqual([]);
  });
});
