import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import Redis from 'ioredis';
import {
  ALL_PROJECTIONS,
  InlineReadModels,
  ProjectionRunner,
  ReadModelStore,
  RedisHotState,
  hotKey,
  planBatch,
  type Doc,
  type HistoryRow,
} from '@lorestore/projections';
import { PostgresEventStore } from '@lorestore/event-store';
import { gameLog, gameStep, redelivery } from '../../libs/projections/src/testing/game-log';
import { createTestSchema, type TestSchema } from '../support/database';
import { expectedOf, readBackPostgres, readBackRedis } from '../support/read-models';
import { describeWithRedis } from '../support/services';

describeWithRedis('projection sinks: PostgreSQL read models and Redis hot state', (redisUrl) => {
  let db: TestSchema;
  let redis: Redis;

  beforeAll(async () => {
    db = await createTestSchema('sinks');
    await PostgresEventStore.migrate(db.pool, db.schema);
    await ReadModelStore.migrate(db.pool, db.schema);
    redis = new Redis(redisUrl);
  });
  /** Every key prefix this file wrote under: their keys are removed afterwards, not left to their TTL. */
  const prefixes: string[] = [];
  const newPrefix = (): string => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    prefixes.push(prefix);
    return prefix;
  };
  afterAll(async () => {
    for (const prefix of prefixes) await dropKeys(prefix);
    redis.disconnect();
    await db.drop();
  });

  const dropKeys = async (prefix: string) => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  };
  const clean = async (prefix: string) => {
    await db.pool.query('TRUNCATE entities, world_state, narrative_state, player_state, player_history, projection_checkpoints');
    await dropKeys(prefix);
  };

  it('any batching and redelivery through the runner leaves both in the state of an ordered, once-only application', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(gameStep, { minLength: 1, maxLength: 60 }).chain((steps) => {
          const log = gameLog(steps, `w${randomBytes(3).toString('hex')}`);
          return fc.tuple(fc.constant(log), redelivery(log));
        }),
        async ([log, batches]) => {
          const prefix = newPrefix();
          await clean(prefix);
          const hot = new RedisHotState({ url: redisUrl, ttlSeconds: 600, keyPrefix: prefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
          const runner = new ProjectionRunner({
            store: undefined as never, // apply() never reads the feed
            pool: db.pool,
            readModels: new ReadModelStore(db.pool),
            hot,
            batchSize: 100,
            lockName: db.schema,
            partitions: { monthsBack: 1, monthsAhead: 1, retentionMonths: null },
          });
          try {
            // A fresh runner per delivery models a restart: only what PostgreSQL committed survives.
            for (const batch of batches) await runner.apply(batch);
            const expected = new InlineReadModels();
            expected.apply(log);
            const want = expectedOf(expected);
            const got = await readBackPostgres(db.pool);
            expect(got.docs).toEqual(want.docs);
            expect(got.history).toEqual(want.history);
            expect(await readBackRedis(redis, prefix, expected.docs.values())).toEqual(want.docs);
          } finally {
            await hot.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);

  it('document writes in any order and repeated land on the newest version in both sinks (the revision guards)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(gameStep, { minLength: 1, maxLength: 40 }).map((steps) => gameLog(steps, `w${randomBytes(3).toString('hex')}`)),
        fc.integer({ min: 0, max: 2 ** 31 }),
        async (log, seed) => {
          const prefix = newPrefix();
          await clean(prefix);
          // Every version of every document, as successive batches would write them …
          const versions: Doc[] = [];
          const models = new InlineReadModels();
          for (const event of log) {
            const changes = planBatch(ALL_PROJECTIONS, models.docs, [event]);
            versions.push(...changes.docs);
            models.apply([event]);
          }
          // … shuffled, some twice.
          const rng = fc.sample(fc.shuffledSubarray(versions.concat(versions.slice(0, seed % (versions.length + 1))), { minLength: versions.length + (seed % (versions.length + 1)) }), { seed, numRuns: 1 })[0]!;
          const hot = new RedisHotState({ url: redisUrl, ttlSeconds: 600, keyPrefix: prefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
          const store = new ReadModelStore(db.pool);
          try {
            for (let i = 0; i < rng.length; i += 3) {
              const chunk = rng.slice(i, i + 3);
              await hot.put(chunk);
              await store.commit({ docs: chunk, history: [], historyResets: [], checkpoint: { position: { commit: 1n, prepare: BigInt(i + 1) }, time: new Date() } }, ['p'], chunk.length);
            }
            const want = expectedOf(models).docs;
            expect((await readBackPostgres(db.pool)).docs).toEqual(want);
            expect(await readBackRedis(redis, prefix, models.docs.values())).toEqual(want);
          } finally {
            await hot.close();
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);

  it('history rows by COPY (the bulk rebuild) land as INSERT would put them, whatever their text; a row stored already fails the whole commit', async () => {
    await clean('sinks-copy');
    const store = new ReadModelStore(db.pool);
    const player = '00000000-0000-4000-8000-0000000000c0';
    const awkward = ['tab\there', 'line\nbreak\r\nand CR', 'back\\slash \\N \\t', '\\N', 'ünïcödé ✓ 🐉', '', '"quoted", \'single\''];
    const rows: HistoryRow[] = awkward.map((text, i) => ({
      worldId: 'copy-w',
      playerId: player,
      at: new Date(Date.UTC(2026, 10, 26, 12, 0, i, 250)).toISOString(),
      action: text,
      context: { text, nested: { list: [text, i, null, true] }, [text]: text },
      revision: BigInt(i),
      position: BigInt(100 + i),
      rolledBack: i % 2 === 1,
    }));
    const checkpoint = (n: number) => ({ position: { commit: 1n, prepare: BigInt(n) }, time: new Date() });
    await store.commit({ docs: [], history: rows, historyResets: [], checkpoint: checkpoint(1) }, ['player_history'], rows.length, 1, { historyByCopy: true });
    const read = async () =>
      (
        await db.pool.query<{ world_id: string; player_id: string; at: Date; action: string; context: unknown; revision: string; position: string; rolled_back: boolean }>(
          'SELECT world_id, player_id::text, at, action, context, revision, position, rolled_back FROM player_history ORDER BY revision',
        )
      ).rows.map((r) => ({ worldId: r.world_id, playerId: r.player_id, at: r.at.toISOString(), action: r.action, context: r.context, revision: BigInt(r.revision), position: BigInt(r.position), rolledBack: r.rolled_back }));
    expect(await read()).toEqual(rows);
    // The same rows again by COPY: a unique violation, and the batch (rows and checkpoint) is not there.
    const extra: HistoryRow = { ...rows[0]!, revision: 99n, position: 199n };
    await expect(
      store.commit({ docs: [], history: [extra, rows[1]!], historyResets: [], checkpoint: checkpoint(2) }, ['player_history'], 2, 1, { historyByCopy: true }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await read()).toEqual(rows);
    expect((await store.checkpoints()).find((c) => c.name === 'player_history')?.position.prepare).toBe(1n);
  });

  it('reads arriving together go out as one pipeline; each gets its own document, and a failing key fails only its own read', async () => {
    const prefix = newPrefix();
    const hot = new RedisHotState({ url: redisUrl, ttlSeconds: 600, keyPrefix: prefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
    try {
      const docs: Doc[] = Array.from({ length: 50 }, (_, i) => ({
        table: 'entities',
        streamId: `entity-g-${i}`,
        worldId: 'g',
        id: `e${i}`,
        revision: BigInt(i),
        position: BigInt(1000 + i),
        state: { i, name: `n${i}` },
        updatedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      }));
      await hot.put(docs);
      // A key of another type at a document's place: HMGET answers WRONGTYPE for it alone.
      await redis.set(prefix + hotKey('entities', 'g', 'wrong'), 'x');
      const before = { ...hot.groupReads };
      const ids = [...docs.map((d) => d.id), 'missing-1', 'wrong', 'missing-2'];
      const answers = await Promise.allSettled(ids.map((id) => hot.get('entities', 'g', id)));
      docs.forEach((d, i) => {
        expect(answers[i]).toEqual({ status: 'fulfilled', value: { revision: d.revision, position: d.position, state: d.state, updatedAt: d.updatedAt } });
      });
      expect(answers[50]).toEqual({ status: 'fulfilled', value: null });
      expect(answers[51]).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/WRONGTYPE/) } });
      expect(answers[52]).toEqual({ status: 'fulfilled', value: null });
      // Sent in one turn of the event loop: one pipeline for all 53.
      expect(hot.groupReads.reads - before.reads).toBe(53);
      expect(hot.groupReads.batches - before.batches).toBe(1);
      // One read alone is one pipeline of one, as soon as it is due.
      expect(await hot.get('entities', 'g', 'e7')).toMatchObject({ revision: 7n });
      expect(hot.groupReads.batches - before.batches).toBe(2);
    } finally {
      await hot.close();
    }
  });

  it('sets the TTL on every document it writes', async () => {
    const prefix = newPrefix();
    const hot = new RedisHotState({ url: redisUrl, ttlSeconds: 3600, keyPrefix: prefix, connectTimeoutMs: 2000, commandTimeoutMs: 2000 });
    const [event] = gameLog([{ op: 'spawn', target: 0, value: 1 }], 'ttl');
    const models = new InlineReadModels();
    models.apply([event!]);
    const doc = [...models.docs.values()][0]!;
    await hot.put([doc]);
    const ttl = await redis.ttl(prefix + hotKey(doc.table, doc.worldId, doc.id));
    expect(ttl).toBeGreaterThan(3500);
    expect(ttl).toBeLessThanOrEqual(3600);
    expect(await hot.get('entities', doc.worldId, doc.id)).toEqual({ revision: 0n, position: doc.position, state: doc.state, updatedAt: doc.updatedAt });
    await hot.close();
  });
});
