import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { PostgresEventStore, type RecordedEvent } from '@lorestore/event-store';
import { eventually } from '@lorestore/event-store/testing';
import { createTestSchema, type TestSchema } from '../support/database';

/**
 * Invariant 4: a reader of the global feed never skips an event that commits
 * later with a lower position. A slow transaction takes a position first and
 * commits last; faster appends commit higher positions in between.
 */
describe('gap-safe global order (PostgreSQL)', () => {
  let db: TestSchema;
  let store: PostgresEventStore;

  beforeAll(async () => {
    db = await createTestSchema('gap');
    await PostgresEventStore.migrate(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema, pollIntervalMs: 50 });
  });
  afterAll(async () => {
    await store.close();
    await db.drop();
  });

  /** Appends in an open transaction through the same function the store uses, and leaves it open. */
  const beginSlowAppend = async (streamId: string): Promise<{ client: PoolClient; position: bigint }> => {
    const client = await db.pool.connect();
    await client.query('BEGIN');
    const { rows } = await client.query<{ positions: string[] }>('SELECT positions FROM append_batch($1::jsonb)', [
      JSON.stringify([
        { stream: streamId, world: null, category: 'gap', expected: 'any', commandId: null, commandHash: null,
          events: [{ id: randomUUID(), type: 'Slow', v: 1, data: {}, metadata: {} }] },
      ]),
    ]);
    return { client, position: BigInt(rows[0]!.positions[0]!) };
  };

  it('does not pass a slow transaction holding a lower position, and delivers it once it commits', async () => {
    const streamId = `gap-${randomUUID()}`;
    const head = await store.headPosition();
    const received: RecordedEvent[] = [];
    const subscription = store.subscribeToAll({ fromPosition: head ?? 'start' });
    const consuming = (async () => {
      for await (const e of subscription) {
        received.push(e);
        if (received.length === 4) break;
      }
    })();

    const slow = await beginSlowAppend(streamId);
    const fast = await Promise.all([1, 2, 3].map((i) => store.appendToStream(`${streamId}-${i}`, [{ id: randomUUID(), type: 'Fast', data: { i } }])));
    for (const f of fast) expect(f.position.prepare).toBeGreaterThan(slow.position);

    // The fast events are committed and visible to a plain SELECT…
    const { rows: visible } = await db.pool.query<{ position: string }>(
      "SELECT position FROM events WHERE type = 'Fast' AND stream_id LIKE $1 ORDER BY position",
      [`${streamId}-%`],
    );
    expect(visible).toHaveLength(3);
    // …so a naive reader that checkpoints on position would move past the slow one here.
    const naiveCheckpoint = BigInt(visible[2]!.position);
    expect(naiveCheckpoint).toBeGreaterThan(slow.position);

    // The gap-safe reader holds back everything after the open transaction.
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toHaveLength(0);
    expect((await store.readAll({ fromPosition: head ?? 'start' })).filter((e) => e.streamId.startsWith(streamId))).toHaveLength(0);

    await slow.client.query('COMMIT');
    slow.client.release();
    await consuming;

    expect(received.map((e) => e.type)).toEqual(['Slow', 'Fast', 'Fast', 'Fast']);
    expect(received[0]!.position.prepare).toBe(slow.position);
    // The naive reader never sees the slow event: it committed below the naive checkpoint.
    const { rows: naive } = await db.pool.query('SELECT position FROM events WHERE position > $1', [naiveCheckpoint.toString()]);
    expect(naive.map((r: { position: string }) => BigInt(r.position))).not.toContain(slow.position);
  });

  it('a rolled-back slow transaction leaves a gap that readers pass once it ends', async () => {
    const streamId = `gap-rb-${randomUUID()}`;
    const head = await store.headPosition();
    const slow = await beginSlowAppend(streamId);
    await store.appendToStream(`${streamId}-after`, [{ id: randomUUID(), type: 'After', data: {} }]);
    expect((await store.readAll({ fromPosition: head ?? 'start' })).filter((e) => e.streamId.startsWith(streamId))).toHaveLength(0);
    await slow.client.query('ROLLBACK');
    slow.client.release();
    const after = await eventually(
      async () => (await store.readAll({ fromPosition: head ?? 'start' })).filter((e) => e.streamId.startsWith(streamId)),
      (events) => events.length > 0,
    );
    expect(after.map((e) => e.type)).toEqual(['After']);
  });

  it('subscribing from the end passes over events committed before it, even while an older transaction holds the feed back', async () => {
    const streamId = `gap-end-${randomUUID()}`;
    // An older transaction still running: the feed cannot pass it, so "Old" commits but is not yet
    // readable when the subscription starts (the gap-safe head is before it).
    const older = await db.pool.connect();
    await older.query('BEGIN');
    await older.query('SELECT pg_current_xact_id()');
    try {
      await store.appendToStream(streamId, [{ id: randomUUID(), type: 'Old', data: {} }]);
      const subscription = store.subscribeToAll({ fromPosition: 'end' });
      const received: RecordedEvent[] = [];
      const consuming = (async () => {
        for await (const e of subscription) {
          if (e.streamId !== streamId) continue;
          received.push(e);
          if (received.length === 1) break;
        }
      })();
      await new Promise((r) => setTimeout(r, 100));
      await store.appendToStream(streamId, [{ id: randomUUID(), type: 'New', data: {} }]);
      await older.query('COMMIT');
      await consuming;
      expect(received.map((e) => e.type)).toEqual(['New']);
    } finally {
      await older.query('ROLLBACK').catch(() => undefined);
      older.release();
    }
  });
});
