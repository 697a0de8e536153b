import { randomBytes, randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { PostgresEventStore, comparePositions, type Position, type RecordedEvent } from '@lorestore/event-store';
import { InlineReadModels, ReadModelStore } from '@lorestore/projections';
import { gameCommands, type GameStep } from '../../libs/projections/src/testing/game-log';
import { createTestSchema, type TestSchema } from '../support/database';
import { expectedOf, readBackPostgres, readBackRedis } from '../support/read-models';
import { describeWithRedis } from '../support/services';
import { cleanUpServiceProcesses, startProjectorProcess, type ServiceProcess } from '../support/service-process';

/**
 * Invariant 5: projections are exactly-once in effect. The projector runs as a
 * real process and is SIGKILLed again and again while events stream into the
 * log; after a last restart has caught up, every PostgreSQL row and every
 * Redis key equals a fresh, ordered, once-only fold of the whole log.
 */
describeWithRedis('crash: SIGKILL of the projector while events stream in', (redisUrl) => {
  let db: TestSchema;
  let store: PostgresEventStore;
  let redis: Redis;
  let projector: ServiceProcess | null = null;
  const prefix = `crash:${randomBytes(4).toString('hex')}:`;
  const world = 'crash-world';

  beforeAll(async () => {
    db = await createTestSchema('projector_crash');
    await PostgresEventStore.migrate(db.pool, db.schema);
    await ReadModelStore.migrate(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema });
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    await projector?.kill();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await store.close();
    await db.drop();
    await cleanUpServiceProcesses();
  });

  const startProjector = async () => {
    projector = await startProjectorProcess({
      DATABASE_URL: db.url,
      DATABASE_SCHEMA: db.schema,
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      // Small batches: many commits, so the kills land between and inside them.
      PROJECTION_BATCH_SIZE: '40',
    });
  };

  /** A long valid game over many streams; every step that the domain accepts is one append. */
  const traffic = () => {
    const steps: GameStep[] = [];
    for (let i = 0; i < 3000; i++) {
      const r = (i * 7919) % 101;
      if (r < 8) steps.push({ op: 'spawn', target: i % 40, value: r % 5 });
      else if (r < 40) steps.push({ op: 'update', target: i % 40, value: r % 6 });
      else if (r < 55) steps.push({ op: 'move', target: (i * 3) % 40, value: r % 6 });
      else if (r < 57) steps.push({ op: 'despawn', target: (i * 5) % 40, value: 0 });
      else if (r < 85) steps.push({ op: 'action', target: i % 12, value: r - 70, monthOffset: -(i % 14) });
      else if (r < 92) steps.push({ op: 'relationship', target: i % 12, value: (r % 9) - 4, monthOffset: 0 });
      else if (r < 95) steps.push({ op: 'weather', value: r % 5 });
      else if (r < 98) steps.push({ op: 'flag', value: r % 5 });
      else steps.push({ op: 'time', value: r % 3 });
    }
    return gameCommands(steps, world);
  };

  const checkpointOf = async (): Promise<Position | null> => {
    const checkpoints = await new ReadModelStore(db.pool).checkpoints();
    if (checkpoints.length < 5) return null;
    return checkpoints.map((c) => c.position).reduce((a, b) => (comparePositions(a, b) <= 0 ? a : b));
  };

  it('leaves every read model equal to a fresh fold of the log after repeated kills', async () => {
    const commands = traffic();
    let last: Position | null = null;
    let written = 0;
    let writing = true;
    const writer = (async () => {
      for (const { streamId, events } of commands) {
        if (!writing) break;
        const result = await store.appendToStream(
          streamId,
          events.map((e) => ({ id: randomUUID(), type: e.type, data: e.data, metadata: { worldId: world } })),
          { expectedRevision: 'any' },
        );
        last = result.position;
        written++;
        if (written % 20 === 0) await new Promise((r) => setTimeout(r, 2));
      }
    })();

    const kills = 5;
    for (let k = 0; k < kills; k++) {
      await startProjector();
      await new Promise((r) => setTimeout(r, 250 + ((k * 211) % 400)));
      await projector!.kill('SIGKILL');
      projector = null;
    }
    writing = false;
    await writer;
    expect(written).toBeGreaterThan(200);

    await startProjector();
    const deadline = Date.now() + 30_000;
    for (;;) {
      const at = await checkpointOf();
      if (at && last && comparePositions(at, last) >= 0) break;
      if (Date.now() > deadline) throw new Error(`projector did not catch up:\n${projector?.output?.().slice(-3000)}\ncheckpoint ${JSON.stringify(at, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const log: RecordedEvent[] = [];
    for (let from: RecordedEvent['position'] | undefined; ; ) {
      const page = await store.readAll({ ...(from ? { fromPosition: from } : {}), maxCount: 1000 });
      const fresh = from ? page.slice(1) : page;
      log.push(...fresh);
      if (fresh.length === 0) break;
      from = page.at(-1)!.position;
    }
    const fold = new InlineReadModels();
    fold.apply(log);
    const want = expectedOf(fold);

    const postgres = await readBackPostgres(db.pool);
    expect(postgres.docs.size).toBe(want.docs.size);
    for (const [key, doc] of want.docs) expect([key, postgres.docs.get(key)]).toEqual([key, doc]);
    expect(postgres.history).toEqual(want.history);
    expect(want.history.length).toBeGreaterThan(50);

    const hot = await readBackRedis(redis, prefix, fold.docs.values());
    for (const [key, doc] of want.docs) expect([key, hot.get(key)]).toEqual([key, doc]);
  }, 120_000);
});
