import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { PostgresEventStore, type AppendOptions, type EventData } from '@lorestore/event-store';
import { createTestSchema, type TestSchema } from '../support/database';

/**
 * append_batch_fast (migration 004) takes a batch that is all plain appends in
 * three statements and raises for anything else, and the adapter then runs
 * the batch through append_batch. Whatever path a batch takes, the answers and
 * the stored rows must be the ones append_batch alone gives.
 */
describe('the fast append path (PostgreSQL)', () => {
  let db: TestSchema;
  let fast: PostgresEventStore;
  let full: PostgresEventStore;

  beforeAll(async () => {
    db = await createTestSchema('fast_append');
    await PostgresEventStore.migrate(db.pool, db.schema);
    fast = new PostgresEventStore({ pool: db.pool, schema: db.schema });
    full = new PostgresEventStore({ pool: db.pool, schema: db.schema, fastAppend: false });
  });
  afterAll(async () => {
    await Promise.all([fast.close(), full.close()]);
    await db.drop();
  });

  const event = (type: string, data: Record<string, unknown> = {}, id: string = randomUUID()): EventData => ({
    id,
    type,
    data,
    metadata: { worldId: 'w1' },
  });

  /** A client of its own; a wait on a row gives up after 5 s, and a transaction left open by a failed expectation is rolled back. */
  const withClient = async <T>(fn: (c: PoolClient) => Promise<T>): Promise<T> => {
    const client = await db.pool.connect();
    await client.query("SET lock_timeout = '5s'");
    try {
      return await fn(client);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.query('RESET lock_timeout').catch(() => undefined);
      client.release();
    }
  };
  const errorCode = (p: Promise<unknown>) => p.then(() => 'no error', (e: { code?: string }) => e.code);

  /** An append's answer, without positions (they differ between runs): what a caller can tell apart. */
  const outcome = async (append: Promise<unknown>) => {
    try {
      const r = (await append) as { nextExpectedRevision: bigint; duplicate: boolean; events: { revision: bigint; type: string }[] };
      return { ok: { next: r.nextExpectedRevision, duplicate: r.duplicate, events: r.events.map((e) => [e.revision, e.type]) } };
    } catch (error) {
      const e = error as Error & { actualRevision?: bigint | null };
      return { error: e.name, actual: e.actualRevision ?? null };
    }
  };

  /**
   * One client's day, one append at a time (each a batch of its own): the
   * common case, then each case append_batch must decide, on streams named
   * `${p}-…` (so their category is `p`). Returns every answer in order.
   */
  const scenario = async (store: PostgresEventStore, p: string) => {
    const answers: unknown[] = [];
    const run = async (stream: string, events: EventData[], options: AppendOptions = {}) =>
      answers.push(await outcome(store.appendToStream(`${p}-${stream}`, events, options)));
    const cmd = randomUUID();
    const shared = randomUUID();
    // Plain appends.
    await run('a', [event('A1')], { expectedRevision: 'no_stream', commandId: cmd, commandHash: 'h1' });
    await run('a', [event('A2'), event('A3')], { expectedRevision: 0n, commandId: randomUUID(), commandHash: 'h2' });
    await run('a', [event('A4')], { expectedRevision: 'exists' });
    await run('a', [event('A5')], { expectedRevision: 'any' });
    await run('b', [event('B1', {}, shared)], { expectedRevision: 'any' });
    // What append_batch decides.
    await run('a', [event('A1 again')], { expectedRevision: 'no_stream', commandId: cmd, commandHash: 'h1' }); // a repeat
    await run('a', [event('A1 other')], { expectedRevision: 'any', commandId: cmd, commandHash: 'other' }); // reused id
    await run('a', [event('late')], { expectedRevision: 'no_stream' });
    await run('a', [event('stale')], { expectedRevision: 2n });
    await run('c', [event('none')], { expectedRevision: 'exists' });
    await run('c', [event('none')], { expectedRevision: 3n });
    await run('b', [event('B1 again', {}, shared)], { expectedRevision: 'any' }); // the same event again: a repeat
    await run('d', [event('D1', {}, shared)], { expectedRevision: 'any' }); // its id in another stream
    // And plain again after all that.
    await run('a', [event('A6')], { expectedRevision: 4n });
    await run('c', [event('C1')], { expectedRevision: 'no_stream' });
    return answers;
  };

  /** The rows a scenario left, with its prefix (stream ids and category) taken out. */
  const stored = async (p: string) => {
    const strip = (s: string) => s.slice(p.length);
    const streams = await db.pool.query<{ stream_id: string; revision: string; world_id: string; category: string; last_tx: string; newest: string | null }>(
      `SELECT s.stream_id, s.revision, s.world_id, s.category, s.last_tx::text,
              (SELECT max(e.transaction_id)::text FROM events e WHERE e.stream_id = s.stream_id) AS newest
         FROM streams s WHERE s.stream_id LIKE $1 || '-%' ORDER BY s.stream_id`,
      [p],
    );
    const commands = await db.pool.query<{ stream_id: string; first_revision: string; last_revision: string; command_hash: string }>(
      `SELECT stream_id, first_revision, last_revision, command_hash FROM commands WHERE stream_id LIKE $1 || '-%' ORDER BY stream_id, first_revision`,
      [p],
    );
    const events = await db.pool.query<{ stream_id: string; revision: string; type: string }>(
      `SELECT stream_id, revision, type FROM events WHERE stream_id LIKE $1 || '-%' ORDER BY position`,
      [p],
    );
    // A head names the transaction that wrote its last event (a head without events, the one that made it).
    for (const s of streams.rows) if (s.newest !== null) expect(s.last_tx).toBe(s.newest);
    return {
      streams: streams.rows.map((s) => [strip(s.stream_id), s.revision, s.world_id, strip(s.category)]),
      commands: commands.rows.map((c) => [strip(c.stream_id), c.first_revision, c.last_revision, c.command_hash]),
      events: events.rows.map((e) => [strip(e.stream_id), e.revision, e.type]),
    };
  };

  it('answers and stores exactly what append_batch alone does, taking the fast path only for plain appends', async () => {
    const before = fast.fastAppendFallbacks;
    const viaFast = await scenario(fast, `fa${randomUUID().slice(0, 8)}`);
    const fallbacks = fast.fastAppendFallbacks - before;
    const viaFull = await scenario(full, `fu${randomUUID().slice(0, 8)}`);
    expect(viaFast).toEqual(viaFull);
    // The eight cases append_batch decides, each after a fast attempt that gave way; the seven plain appends did not.
    expect(fallbacks).toBe(8);
    // The scenario's answers are the expected ones (not merely equal to each other).
    expect(viaFast.map((a) => ('ok' in (a as object) ? ((a as { ok: { duplicate: boolean } }).ok.duplicate ? 'dup' : 'ok') : (a as { error: string }).error))).toEqual([
      'ok', 'ok', 'ok', 'ok', 'ok',
      'dup', 'CommandIdReusedError', 'WrongExpectedVersionError', 'WrongExpectedVersionError', 'WrongExpectedVersionError', 'WrongExpectedVersionError', 'dup', 'EventIdConflictError',
      'ok', 'ok',
    ]); // prettier-ignore
  });

  it('leaves the same rows as append_batch alone, nothing of a fast attempt that gave way', async () => {
    const [pf, pu] = [`fr${randomUUID().slice(0, 8)}`, `ur${randomUUID().slice(0, 8)}`];
    await scenario(fast, pf);
    await scenario(full, pu);
    const [a, b] = [await stored(pf), await stored(pu)];
    expect(a).toEqual(b);
    expect(a.events.map((e) => e[2])).toEqual(['A1', 'A2', 'A3', 'A4', 'A5', 'B1', 'A6', 'C1']);
    // Streams c and d: their refused first appends left rows without events (-1) in append_batch; c got its event later.
    expect(a.streams).toEqual([
      ['-a', '5', 'w1', ''],
      ['-b', '0', 'w1', ''],
      ['-c', '0', 'w1', ''],
      ['-d', '-1', 'w1', ''],
    ]);
  });

  it('answers a batch that mixes plain appends with one append_batch must refuse: the plain ones append once, the bad one is refused', async () => {
    const p = `mix-${randomUUID().slice(0, 8)}`;
    await fast.appendToStream(`${p}-old`, [event('O1')]);
    const before = fast.fastAppendFallbacks;
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 12 }, (_, i) => fast.appendToStream(`${p}-n${i}`, [event('N')], { expectedRevision: 'no_stream', commandId: randomUUID(), commandHash: 'h' })),
      fast.appendToStream(`${p}-old`, [event('O2')], { expectedRevision: 7n }),
    ]);
    expect(outcomes.slice(0, 12).every((o) => o.status === 'fulfilled')).toBe(true);
    expect(outcomes[12]!.status).toBe('rejected');
    expect(fast.fastAppendFallbacks).toBeGreaterThan(before); // the bad request shared a batch with some of the others
    const { rows } = await db.pool.query<{ n: string; commands: string }>(
      `SELECT (SELECT count(*) FROM events WHERE stream_id LIKE $1 || '-%') AS n, (SELECT count(*) FROM commands WHERE stream_id LIKE $1 || '-%') AS commands`,
      [p],
    );
    expect(rows[0]).toEqual({ n: '13', commands: '12' });
  });

  it('does not take the fast path for a batch naming one stream or one command twice, and appends it right', async () => {
    const s = `twice-${randomUUID()}`;
    const commandId = randomUUID();
    const before = fast.fastAppendFallbacks;
    const results = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => fast.appendToStream(s, [event(`E${i}`)])),
      fast.appendToStream(`${s}-x`, [event('X')], { commandId, commandHash: 'h' }),
      fast.appendToStream(`${s}-x`, [event('X')], { commandId, commandHash: 'h' }),
    ]);
    expect(fast.fastAppendFallbacks).toBe(before); // known in advance: no attempt, so nothing to give way
    expect((await fast.readStream(s)).map((e) => e.revision)).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
    expect(results.slice(6).filter((r) => r.duplicate)).toHaveLength(1);
  });

  describe('against a newer writer of the same stream (per-stream feed order, migration 002)', () => {
    const request = (stream: string, expected = 'any') =>
      JSON.stringify([
        { stream, world: 'w1', category: 'order', expected, commandId: randomUUID(), commandHash: 'h', events: [{ id: randomUUID(), type: 'E', v: 1, data: {}, metadata: {} }] },
      ]);

    it('gives way (LSA01) when a newer transaction wrote the stream before it looked', async () => {
      const s = `order-${randomUUID()}`;
      await fast.appendToStream(s, [event('first')]);
      await withClient(async (older) => {
        await older.query('BEGIN');
        await older.query('SELECT pg_current_xact_id()'); // takes its id now, before the next append's
        await fast.appendToStream(s, [event('newer')]);
        expect(await errorCode(older.query('SELECT * FROM append_batch_fast($1::jsonb)', [request(s)]))).toBe('LSA01');
        await older.query('ROLLBACK');
      });
      expect((await fast.readStream(s)).map((e) => e.type)).toEqual(['first', 'newer']);
    });

    it('gives way (LSA01) when it waited for a newer transaction that then wrote the stream, and when it waited for another creating it', async () => {
      for (const existing of [true, false]) {
        const s = `order-${randomUUID()}`;
        if (existing) await fast.appendToStream(s, [event('first')]);
        await withClient((older) =>
          withClient(async (newer) => {
            await older.query('BEGIN');
            await older.query('SELECT pg_current_xact_id()');
            await newer.query('BEGIN');
            await newer.query('SELECT * FROM append_batch_fast($1::jsonb)', [request(s)]); // holds the head (or the new row)
            const waiting = errorCode(older.query('SELECT * FROM append_batch_fast($1::jsonb)', [request(s)]));
            // Until the newer one commits, the older one waits on the row.
            const early = await Promise.race([waiting, new Promise((r) => setTimeout(() => r('still waiting'), 300))]);
            expect(early).toBe('still waiting');
            await newer.query('COMMIT');
            expect(await waiting).toBe('LSA01');
            await older.query('ROLLBACK');
          }),
        );
        expect(await fast.readStream(s)).toHaveLength(existing ? 2 : 1);
      }
    });

    it('appends after waiting for an older transaction that wrote the stream (no newer writer: no reason to give way)', async () => {
      const s = `order-${randomUUID()}`;
      await fast.appendToStream(s, [event('first')]);
      await withClient((older) =>
        withClient(async (newer) => {
          await older.query('BEGIN');
          await older.query('SELECT * FROM append_batch_fast($1::jsonb)', [request(s)]);
          const waiting = errorCode(newer.query('SELECT * FROM append_batch_fast($1::jsonb)', [request(s)]));
          expect(await Promise.race([waiting, new Promise((r) => setTimeout(() => r('still waiting'), 300))])).toBe('still waiting');
          await older.query('COMMIT');
          expect(await waiting).toBe('no error');
        }),
      );
      expect((await fast.readStream(s)).map((e) => e.revision)).toEqual([0n, 1n, 2n]);
    });
  });

  it('locks existing heads in stream order, as append_batch does, so the two paths cannot deadlock', async () => {
    // zb is stored before za: a scan in the rows' physical order would lock zb first.
    const p = `lock-${randomUUID().slice(0, 8)}`;
    const [za, zb] = [`${p}-za`, `${p}-zb`];
    await fast.appendToStream(zb, [event('B')]);
    await fast.appendToStream(za, [event('A')]);
    const both = () =>
      JSON.stringify(
        [za, zb].map((stream) => ({ stream, world: 'w1', category: p, expected: 'any', commandId: null, commandHash: null, events: [{ id: randomUUID(), type: 'E', v: 1, data: {}, metadata: {} }] })),
      );
    await withClient((holder) =>
      withClient((full) =>
        withClient(async (short) => {
          await holder.query('BEGIN');
          await holder.query('SELECT 1 FROM streams WHERE stream_id = $1 FOR UPDATE', [za]);
          // append_batch locks za then zb: it waits on za. The short path starts after it and must wait on za too,
          // holding nothing; locking zb first would close a cycle once the holder lets za go.
          const viaFull = errorCode(full.query('SELECT * FROM append_batch($1::jsonb)', [both()]));
          await new Promise((r) => setTimeout(r, 100));
          const viaShort = errorCode(short.query('SELECT * FROM append_batch_fast($1::jsonb)', [both()]));
          await new Promise((r) => setTimeout(r, 100));
          await holder.query('COMMIT');
          expect(await viaFull).toBe('no error');
          expect(await viaShort).toBe('no error'); // no deadlock (40P01), and append_batch's transaction is older: nothing to give way to
        }),
      ),
    );
    expect((await fast.readStream(za)).map((e) => e.revision)).toEqual([0n, 1n, 2n]);
  });
});
