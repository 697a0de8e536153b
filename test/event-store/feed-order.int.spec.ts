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

  it('reads the feed in windows (readFeedRange): the same events in the same order, only the categories asked for, metadata on request', async () => {
    const tag = randomUUID().slice(0, 8);
    const kept = `rangea${tag}`;
    const other = `rangeb${tag}`;
    for (let i = 0; i < 30; i++) {
      const category = i % 3 === 0 ? other : kept;
      await store.appendToStream(`${category}-${i % 4}`, [{ id: randomUUID(), type: 'Step', data: { i }, metadata: { actor: `a${i}` } }]);
    }
    const whole = await eventually(
      async () => (await readWholeFeed()).filter((e) => e.streamId.startsWith(kept) || e.streamId.startsWith(other)),
      (events) => events.length === 30,
    );
    const head = (await store.headPosition())!;
    const first = whole[0]!;
    // From just before our first event (the feed's own order), in windows of 7 events scanned.
    const start = (await store.readFeed(null, false, 100_000)).findLast((e) => e.position.commit < first.position.commit || (e.position.commit === first.position.commit && e.position.prepare < first.position.prepare));
    const read = async (withMetadata: boolean) => {
      const out: RecordedEvent[] = [];
      let after = start?.position ?? null;
      for (;;) {
        const { events, scannedTo } = await store.readFeedRange(after, head, [kept], 7, { withMetadata });
        out.push(...events);
        if (scannedTo === null || (scannedTo.commit === head.commit && scannedTo.prepare === head.prepare)) return out;
        after = scannedTo;
      }
    };
    const expected = whole.filter((e) => e.streamId.startsWith(`${kept}-`));
    const withMetadata = await read(true);
    expect(withMetadata).toEqual(expected);
    const without = await read(false);
    expect(without.map((e) => ({ ...e, metadata: {} }))).toEqual(expected.map((e) => ({ ...e, metadata: {} })));
    expect(without.every((e) => Object.keys(e.metadata).length === 0)).toBe(true);
    expect(expected[0]!.metadata).toMatchObject({ actor: expect.stringMatching(/^a\d+$/) });
  });

  it('subscribes without metadata on request: the same events in the same order, each with empty metadata', async () => {
    const stream = `nometa-${randomUUID()}`;
    const marker = await store.appendToStream(stream, [{ id: randomUUID(), type: 'Marker', data: {}, metadata: { actor: 'm' } }]);
    for (let i = 0; i < 5; i++) await store.appendToStream(stream, [{ id: randomUUID(), type: 'Step', data: { i }, metadata: { actor: `a${i}` } }]);
    const collect = async (withMetadata: boolean) => {
      const subscription = store.subscribeToAll({ fromPosition: marker.events[0]!.position, batchSize: 2, withMetadata });
      const out: RecordedEvent[] = [];
      for await (const batch of subscription.batches()) {
        out.push(...batch.filter((e) => e.streamId === stream));
        if (out.length >= 5) break;
      }
      await subscription.unsubscribe();
      return out;
    };
    const full = await collect(true);
    const bare = await collect(false);
    expect(full.map((e) => e.metadata)).toEqual([0, 1, 2, 3, 4].map((i) => expect.objectContaining({ actor: `a${i}` })));
    expect(bare.map((e) => e.metadata)).toEqual([{}, {}, {}, {}, {}]);
    expect(bare.map((e) => ({ ...e, metadata: {} }))).toEqual(full.map((e) => ({ ...e, metadata: {} })));
  });
});
