import { randomBytes, randomUUID } from 'node:crypto';
import { PostgresEventStore } from '@lorestore/event-store';
import { freePort } from '@lorestore/infra';
import { MemoryHotState, ProjectionRunner, ReadModelStore, RedisHotState, type ProjectionRunnerOptions } from '@lorestore/projections';
import { createTestSchema, type TestSchema } from '../support/database';

/** A schema of its own with the event store and the read models, made before and dropped after the describe block that calls this. */
const eventStoreSchema = (name: string): { db: TestSchema; store: PostgresEventStore } => {
  const schema = {} as { db: TestSchema; store: PostgresEventStore };
  beforeAll(async () => {
    schema.db = await createTestSchema(name);
    await PostgresEventStore.migrate(schema.db.pool, schema.db.schema);
    await ReadModelStore.migrate(schema.db.pool, schema.db.schema);
    schema.store = new PostgresEventStore({ pool: schema.db.pool, schema: schema.db.schema });
  });
  afterAll(async () => {
    await schema.store.close();
    await schema.db.drop();
  });
  return schema;
};

/** Transactions of the pool of the test schema `label`, but the asking one, that hold a transaction id and have been open over 200 ms. */
const longWriteTransactions = async (db: TestSchema, label: string): Promise<number> => {
  const { rows } = await db.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
        AND application_name = $1 AND now() - xact_start > interval '200 milliseconds'`,
    [`lorestore-test-${label}`],
  );
  return Number(rows[0]!.n);
};

/**
 * The runner while its hot store is down: it retries the hot write, and
 * meanwhile holds no PostgreSQL transaction open. An open transaction with an
 * id would hold back pg_snapshot_xmin, and with it the gap-safe feed of every
 * reader of the database, for as long as Redis stays away.
 */
describe('projection runner: failures and stopping', () => {
  const schema = eventStoreSchema('runner_hot_down');
  let db: TestSchema;
  let store: PostgresEventStore;
  beforeAll(() => ({ db, store } = schema));

  /** A runner into the live read models with an in-process hot store (or what `options` gives). */
  const memoryRunner = (lockName: string, options: Partial<ProjectionRunnerOptions> = {}) =>
    new ProjectionRunner({
      store,
      pool: db.pool,
      readModels: new ReadModelStore(db.pool),
      hot: new MemoryHotState({ ttlSeconds: 60, maxEntries: 1000 }),
      batchSize: 100,
      lockName: `${db.schema}.${lockName}`,
      partitions: { monthsBack: 1, monthsAhead: 1, retentionMonths: null },
      ...options,
    });
  /** Waits (up to 5 s) for the runner to have committed up to this position. */
  const until = async (runner: ProjectionRunner, prepare: bigint) => {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !(runner.position && runner.position.prepare >= prepare)) await new Promise((r) => setTimeout(r, 25));
    expect(runner.position?.prepare).toBeGreaterThanOrEqual(prepare);
  };

  it('retries the hot write without a PostgreSQL transaction open, and commits nothing until it succeeds', async () => {
    // Nothing listens on this port: every hot write fails.
    const hot = new RedisHotState({ url: `redis://127.0.0.1:${await freePort()}`, ttlSeconds: 60, keyPrefix: `t:${randomBytes(3).toString('hex')}:`, connectTimeoutMs: 200, commandTimeoutMs: 200 });
    const runner = new ProjectionRunner({
      store,
      pool: db.pool,
      readModels: new ReadModelStore(db.pool),
      hot,
      batchSize: 100,
      lockName: db.schema,
      partitions: { monthsBack: 1, monthsAhead: 1, retentionMonths: null },
    });
    runner.start();
    try {
      await store.appendToStream(`world-w${randomBytes(3).toString('hex')}`, [
        { id: randomUUID(), type: 'WeatherChanged', data: { weather: 'rain', regionId: null, from: null, at: new Date().toISOString() }, metadata: {} },
      ]);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await longWriteTransactions(db, 'runner_hot_down')).toBe(0);
      expect(await new ReadModelStore(db.pool).checkpoints()).toEqual([]);
    } finally {
      await runner.stop();
      await hot.close();
    }
  });

  it('writes the hot store beside the statements, but a slow hot write is waited for outside any transaction', async () => {
    /** An in-process hot store whose first write takes 600 ms. */
    class SlowFirstWrite extends MemoryHotState {
      pending = false;
      private slow = true;
      override async put(docs: Parameters<MemoryHotState['put']>[0]): Promise<void> {
        if (this.slow) {
          this.slow = false;
          this.pending = true;
          await new Promise((r) => setTimeout(r, 600));
          this.pending = false;
        }
        return super.put(docs);
      }
    }
    /** Records, per commit, whether it waited for the hot write before its COMMIT. */
    class Commits extends ReadModelStore {
      readonly waited: boolean[] = [];
      override commit(...args: Parameters<ReadModelStore['commit']>): Promise<void> {
        this.waited.push(args[4]?.beforeCommit !== undefined);
        return super.commit(...args);
      }
    }
    const hot = new SlowFirstWrite({ ttlSeconds: 60, maxEntries: 1000 });
    const readModels = new Commits(db.pool);
    const warnings: string[] = [];
    const runner = memoryRunner('slow-hot', {
      readModels,
      hot,
      logger: { info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) },
    });
    const world = `w${randomBytes(3).toString('hex')}`;
    const weather = (w: string) => [{ id: randomUUID(), type: 'WeatherChanged', data: { weather: w, regionId: null, from: null, at: new Date().toISOString() }, metadata: {} }];
    const first = await store.appendToStream(`world-${world}`, weather('fog'));
    runner.start();
    try {
      await new Promise((r) => setTimeout(r, 400));
      expect(hot.pending).toBe(true);
      // The batch's statements ran beside the write (a commit that waited for it), then rolled back after a short wait.
      expect(readModels.waited[0]).toBe(true);
      expect(await longWriteTransactions(db, 'runner_hot_down')).toBe(0);
      expect(runner.position?.prepare ?? -1n).toBeLessThan(first.position.prepare);
      await until(runner, first.position.prepare);
      expect(hot.pending).toBe(false);
      // Committed once the write was done, without waiting again; the next batch writes the hot store first (the pause).
      const second = await store.appendToStream(`world-${world}`, weather('rain'), { expectedRevision: 0n });
      await until(runner, second.position.prepare);
      expect(readModels.waited).toEqual([true, false, false]);
      expect(warnings.filter((w) => w.includes('took longer'))).toHaveLength(1);
      const { rows: stored } = await db.pool.query<{ data: { weather: { global: string } } }>('SELECT data FROM world_state WHERE world_id = $1', [world]);
      expect(stored[0]!.data.weather.global).toBe('rain');
    } finally {
      await runner.stop();
    }
  });

  it('retries a failed commit without waiting for another event, and stops at once on a quiet feed', async () => {
    const hot = new MemoryHotState({ ttlSeconds: 60, maxEntries: 1000 });
    const readModels = new ReadModelStore(db.pool);
    const runner = new ProjectionRunner({
      store,
      pool: db.pool,
      readModels,
      hot,
      batchSize: 100,
      lockName: `${db.schema}.retry`,
      partitions: { monthsBack: 1, monthsAhead: 1, retentionMonths: null },
    });
    await db.pool.query('TRUNCATE projection_checkpoints');
    const appended = await store.appendToStream(`narrative-n${randomBytes(3).toString('hex')}`, [
      { id: randomUUID(), type: 'NarrativeFlagSet', data: { flag: 'f', value: 1, at: new Date().toISOString() }, metadata: {} },
    ]);
    // Every batch fails (inside the feed loop) while the narrative table is away.
    await db.pool.query('ALTER TABLE narrative_state RENAME TO narrative_state_away');
    runner.start();
    try {
      await new Promise((r) => setTimeout(r, 400));
      await db.pool.query('ALTER TABLE narrative_state_away RENAME TO narrative_state');
      // No event is appended from here on: the retry must not wait for one.
      const deadline = Date.now() + 5000;
      const reached = () => (runner.position?.prepare ?? -1n) >= appended.position.prepare;
      while (Date.now() < deadline && !reached()) await new Promise((r) => setTimeout(r, 50));
      expect(runner.position?.prepare).toBe(appended.position.prepare);
    } finally {
      await db.pool.query('ALTER TABLE IF EXISTS narrative_state_away RENAME TO narrative_state');
      const started = Date.now();
      await runner.stop();
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });

  it('catches a document up from its stream when its rows were lost, instead of stopping', async () => {
    const runnerWith = () => memoryRunner('repair');
    const world = `w${randomBytes(3).toString('hex')}`;
    const entityId = randomUUID();
    const streamId = `entity-${world}-${entityId}`;
    const at = new Date().toISOString();
    const event = (type: string, data: object) => ({ id: randomUUID(), type, data: { entityId, at, ...data }, metadata: { worldId: world } });

    const first = runnerWith();
    first.start();
    await store.appendToStream(streamId, [event('EntitySpawned', { kind: 'npc', attributes: { hp: 1 }, locationId: null })]);
    const updated = await store.appendToStream(streamId, [event('EntityUpdated', { set: { hp: 2 }, unset: [] })]);
    await until(first, updated.position.prepare);
    await first.stop();

    // The row is lost (a restore from an older backup, a hand-made DELETE) while the checkpoint stays.
    await db.pool.query('DELETE FROM entities WHERE world_id = $1', [world]);

    const second = runnerWith();
    second.start();
    try {
      const moved = await store.appendToStream(streamId, [event('EntityUpdated', { set: { mood: 'calm' }, unset: [] })]);
      await until(second, moved.position.prepare);
      const { rows } = await db.pool.query<{ revision: string; data: { attributes: unknown } }>('SELECT revision, data FROM entities WHERE world_id = $1', [world]);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.revision).toBe('2');
      expect(rows[0]!.data.attributes).toEqual({ hp: 2, mood: 'calm' });
    } finally {
      await second.stop();
    }
  });

  it('after a switch (adopt) folds the switched table’s documents from the table, not from what it cached of the old one', async () => {
    const runner = memoryRunner('adopt');
    const world = `w${randomBytes(3).toString('hex')}`;
    const entityId = randomUUID();
    const playerId = randomUUID();
    const at = new Date().toISOString();
    const entity = (type: string, data: object) => ({ id: randomUUID(), type, data: { entityId, at, ...data }, metadata: { worldId: world } });
    const player = (delta: number) => ({
      id: randomUUID(),
      type: 'PlayerRelationshipChanged',
      data: { playerId, targetId: entityId, delta, from: 0, to: delta, reason: null, at },
      metadata: { worldId: world },
    });
    runner.start();
    try {
      await store.appendToStream(`entity-${world}-${entityId}`, [entity('EntitySpawned', { kind: 'npc', attributes: { hp: 1 }, locationId: null })]);
      const first = await store.appendToStream(`player-${world}-${playerId}`, [player(5)]);
      await until(runner, first.position.prepare);
      // A rebuild's switch put tables whose documents differ (a changed reducer) in place of the ones the runner
      // cached; it adopts the entities only.
      await db.pool.query(`UPDATE entities SET data = jsonb_set(data, '{attributes,rebuilt}', 'true') WHERE world_id = $1`, [world]);
      await db.pool.query(`UPDATE player_state SET data = jsonb_set(data, '{counters,relationshipChanges}', '7') WHERE world_id = $1`, [world]);
      await runner.runExclusive(async () => runner.adopt('entities', 2));
      await store.appendToStream(`entity-${world}-${entityId}`, [entity('EntityUpdated', { set: { hp: 2 }, unset: [] })]);
      const last = await store.appendToStream(`player-${world}-${playerId}`, [player(3)]);
      await until(runner, last.position.prepare);
      const { rows: entities } = await db.pool.query<{ data: { attributes: unknown } }>('SELECT data FROM entities WHERE world_id = $1', [world]);
      expect(entities[0]!.data.attributes).toEqual({ hp: 2, rebuilt: true });
      // The player documents were not switched: the runner still folds them from its cache.
      const { rows: players } = await db.pool.query<{ data: { counters: { relationshipChanges: number } } }>('SELECT data FROM player_state WHERE world_id = $1', [world]);
      expect(players[0]!.data.counters.relationshipChanges).toBe(2);
    } finally {
      await runner.stop();
    }
  });
});

/**
 * A runner behind the head reads and commits larger batches (catchUpBatchSize),
 * and such a batch sends its history rows by COPY; a row stored already (here
 * by hand; in life, a leader that lost its lease while committing) makes the
 * COPY fail, and the batch is committed again with the inserts that skip it.
 */
describe('projection runner: catch-up batches', () => {
  const schema = eventStoreSchema('runner_catch_up');
  let db: TestSchema;
  let store: PostgresEventStore;
  beforeAll(() => ({ db, store } = schema));

  /** 1,200 player actions (three players, 400 each) in a new world; the last position. */
  const appendActions = async (world: string, players: string[]): Promise<bigint> => {
    const at = new Date().toISOString();
    let last = 0n;
    for (const playerId of players) {
      for (let chunk = 0; chunk < 4; chunk++) {
        const appended = await store.appendToStream(
          `player-${world}-${playerId}`,
          Array.from({ length: 100 }, (_, i) => ({
            id: randomUUID(),
            type: 'PlayerActionRecorded',
            data: { playerId, action: `a${chunk * 100 + i}`, context: { n: i }, at, recordedAt: at },
            metadata: { worldId: world },
          })),
        );
        last = appended.position.prepare;
      }
    }
    return last;
  };
  /** Every player has 400 history rows, 400 distinct actions, and a document that counted 400. */
  const expectAllActions = async (world: string, players: string[]) => {
    const { rows } = await db.pool.query<{ player_id: string; n: string; actions: string }>(
      `SELECT player_id, count(*) AS n, count(DISTINCT action) AS actions FROM player_history WHERE world_id = $1 GROUP BY player_id ORDER BY player_id`,
      [world],
    );
    expect(rows.map((r) => [r.player_id, Number(r.n), Number(r.actions)])).toEqual([...players].sort().map((p) => [p, 400, 400]));
    const { rows: state } = await db.pool.query<{ data: { counters: { actions: number } } }>('SELECT data FROM player_state WHERE world_id = $1', [world]);
    expect(state.map((s) => s.data.counters.actions)).toEqual([400, 400, 400]);
  };
  const runnerWith = (options: { catchUpBatchSize?: number; onBatch?: (events: number) => void; warnings?: string[] }) =>
    new ProjectionRunner({
      store,
      pool: db.pool,
      readModels: new ReadModelStore(db.pool),
      hot: new MemoryHotState({ ttlSeconds: 60, maxEntries: 10_000 }),
      batchSize: 100,
      catchUpBatchSize: options.catchUpBatchSize,
      lockName: `${db.schema}.catch-up`,
      partitions: { monthsBack: 1, monthsAhead: 1, retentionMonths: null },
      onBatch: (info) => options.onBatch?.(info.events),
      logger: { info: () => undefined, warn: (m) => options.warnings?.push(m), error: (m) => options.warnings?.push(m) },
    });

  it('takes up to catchUpBatchSize events per batch while behind', async () => {
    const world = `w${randomBytes(3).toString('hex')}`;
    const players = [randomUUID(), randomUUID(), randomUUID()];
    const last = await appendActions(world, players);
    const batches: number[] = [];
    const runner = runnerWith({ catchUpBatchSize: 2000, onBatch: (n) => batches.push(n) });
    runner.start();
    try {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !(runner.position && runner.position.prepare >= last)) await new Promise((r) => setTimeout(r, 25));
      expect(runner.position?.prepare).toBe(last);
    } finally {
      await runner.stop();
    }
    // The first read asks for 100; once one comes back full, the next ask for up to 2,000 (1,100 are left).
    expect(batches[0]).toBeLessThanOrEqual(100);
    expect(Math.max(...batches)).toBeGreaterThan(100);
    expect(Math.max(...batches)).toBeLessThanOrEqual(2000);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(1200);
    await expectAllActions(world, players);
  });

  it('commits a batch by COPY, and again without it when one of its history rows is stored already', async () => {
    const world = `w${randomBytes(3).toString('hex')}`;
    const players = [randomUUID(), randomUUID(), randomUUID()];
    await appendActions(world, players);
    const events = (await Promise.all(players.map((p) => store.readStream(`player-${world}-${p}`)))).flat();
    expect(events).toHaveLength(1200);
    const stored = events[250]!;
    await db.pool.query(
      `INSERT INTO player_history (world_id, player_id, at, action, context, revision, position) VALUES ($1, $2, $3, 'a250', '{"n":50}', 250, $4)`,
      [world, players[0], (stored.data as { at: string }).at, stored.position.prepare.toString()],
    );
    const warnings: string[] = [];
    // One batch of 1,200 events delivered by hand: 1,200 history rows, over the COPY threshold.
    await runnerWith({ warnings }).apply(events);
    expect(warnings.filter((w) => w.includes('stored already'))).toHaveLength(1);
    await expectAllActions(world, players);
  });
});
