import { isDeepStrictEqual } from 'node:util';
import { randomUUID } from 'node:crypto';
import { streamIds } from '@lorestore/domain';
import { comparePositions, PostgresEventStore, type Position, type StreamAppend } from '@lorestore/event-store';
import { InlineReadModels, MemoryHotState, ProjectionRunner, ReadModelStore } from '@lorestore/projections';
import {
  LED_BY_PLAYER,
  migrateReplay,
  READ_MODELS_JOB,
  RebuildInProgressError,
  RebuildJobs,
  RebuildWorker,
  Rollbacks,
  ShadowTables,
  SnapshotStore,
  StateAt,
  UnknownProjectionError,
  type RebuildJob,
} from '@lorestore/replay';
import { gameCommands, gameStep } from '../../libs/projections/src/testing/game-log';
import fc from 'fast-check';
import { createTestSchema, type TestSchema } from '../support/database';
import { expectedOf, readBackPostgres, runnerCaughtUp, wholeLog } from '../support/read-models';

/**
 * Blue-green rebuilds while the game keeps writing and reading: the rebuilt
 * tables end equal to a fresh replay of the whole log, no read fails or
 * misses during the switch, a second rebuild of the same projection is
 * refused, and a rebuild interrupted by a crash resumes from its own checkpoint.
 */
describe('projection rebuild (blue-green) under concurrent writes and reads', () => {
  let db: TestSchema;
  let store: PostgresEventStore;
  let hot: MemoryHotState;
  let readModels: ReadModelStore;
  let live: ProjectionRunner;
  let jobs: RebuildJobs;
  const logs: string[] = [];
  const note = (m: string) => (logs.push(m), process.env.REBUILD_TEST_LOG ? process.stderr.write(`${m}\n`) : undefined);
  const logger = { info: note, warn: note, error: note };
  const worker = (batchSize = 200, bulk?: { pageSize: number; flushEvents: number }) =>
    new RebuildWorker({ pool: db.pool, store, hot, live, schema: db.schema, batchSize, logger, progressIntervalMs: 50, ...(bulk ? { bulk } : {}) });

  /** The game's own history: entities, players, world, narrative across 3 worlds, appended 200 commands per transaction. */
  const prefill = async () => {
    for (const w of ['rba', 'rbb', 'rbc']) {
      const steps = fc.sample(gameStep, { numRuns: 700, seed: w.charCodeAt(2) });
      const commands = gameCommands(steps, w);
      const revisions = new Map<string, bigint>();
      const appends: StreamAppend[] = commands.map(({ streamId, events }) => {
        const expected = revisions.get(streamId);
        revisions.set(streamId, (expected ?? -1n) + BigInt(events.length));
        return {
          streamId,
          expectedRevision: expected === undefined ? 'no_stream' : expected,
          events: events.map((e) => ({ id: randomUUID(), type: e.type, data: e.data, metadata: { worldId: w, actor: 'game:k' } })),
        };
      });
      // One append per stream and transaction (a transaction may hold a stream once).
      for (const append of appends) await store.appendToStream(append.streamId, append.events, { expectedRevision: append.expectedRevision });
    }
    // Rollbacks and a restore in the history, so rebuilt rows must come out marked as the live ones are.
    const rollbacks = new Rollbacks({ store, pool: db.pool, stateAt: new StateAt({ store, pool: db.pool, snapshots: new SnapshotStore(db.pool), snapshotEvery: 50 }) });
    const { rows } = await db.pool.query<{ stream_id: string; revision: string }>(
      "SELECT stream_id, revision FROM streams WHERE world_id = 'rba' AND category IN ('player', 'entity') AND revision >= 2 ORDER BY stream_id LIMIT 6",
    );
    const done = [];
    for (const r of rows) {
      done.push(await rollbacks.rollback({ worldId: 'rba', scope: { type: 'stream', streamId: r.stream_id, toRevision: Math.floor(Number(r.revision) / 2) }, reason: 'test', actor: 'admin:t' }));
    }
    await rollbacks.restore({ operationId: done[0]!.operation.operationId, actor: 'admin:t' });
    await rollbacks.rollback({ worldId: 'rbb', scope: { type: 'world', toTime: new Date(Date.now() - 1000).toISOString() }, reason: 'test', actor: 'admin:t' }).catch(() => undefined);
  };

  beforeAll(async () => {
    db = await createTestSchema('rebuild', 30);
    await PostgresEventStore.migrate(db.pool, db.schema);
    await ReadModelStore.migrate(db.pool, db.schema);
    await migrateReplay(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema, pollIntervalMs: 20 });
    hot = new MemoryHotState({ ttlSeconds: 600, maxEntries: 100_000 });
    readModels = new ReadModelStore(db.pool);
    jobs = new RebuildJobs(db.pool);
    await prefill();
    live = new ProjectionRunner({
      store,
      pool: db.pool,
      readModels,
      hot,
      batchSize: 100,
      lockName: `${db.schema}.live`,
      partitions: { monthsBack: 60, monthsAhead: 3, retentionMonths: null },
      logger,
    });
    live.start();
    await caughtUp();
  }, 120_000);

  afterAll(async () => {
    await live?.stop();
    await store?.close();
    await db?.drop();
  });

  /** Until the live projector has applied `position` (default: the gap-safe head now). */
  const caughtUp = (position?: Position) => runnerCaughtUp(live, db.pool, position, 30_000);

  const finished = async (jobId: string, timeoutMs = 60_000): Promise<RebuildJob> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = (await jobs.get(jobId))!;
      if (job.state === 'succeeded' || job.state === 'failed') return job;
      if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job.state} (${job.processed}/${job.total}); log:\n${logs.slice(-30).join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  /** Writers: new entities and updates in world rbw while the rebuild runs. */
  const startWriters = () => {
    let stop = false;
    let written = 0;
    const ids: string[] = [];
    let last: Position | null = null;
    const loops = Array.from({ length: 3 }, async () => {
      while (!stop) {
        const entityId = randomUUID();
        const stream = streamIds.entity('rbw', entityId);
        const at = new Date().toISOString();
        await store.appendToStream(stream, [{ id: randomUUID(), type: 'EntitySpawned', data: { entityId, kind: 'npc', attributes: { n: written }, locationId: null, at }, metadata: { worldId: 'rbw' } }]);
        const result = await store.appendToStream(stream, [{ id: randomUUID(), type: 'EntityUpdated', data: { entityId, set: { hp: 1 }, unset: [], at }, metadata: { worldId: 'rbw' } }]);
        ids.push(entityId);
        if (!last || comparePositions(result.position, last) > 0) last = result.position;
        written += 2;
      }
    });
    return { ids, last: () => last, stop: async () => ((stop = true), await Promise.all(loops), written) };
  };

  /**
   * The writers' first 50 entities, once the live projector has applied them:
   * only ids whose appends had returned before `caughtUp` read the position it
   * waits for. An id taken after that (a loaded machine may not have written 50
   * in 300 ms) can still be on its way through the gap-safe feed, held back by
   * any older open transaction: a miss then is lag, not a failed read.
   */
  const projectedIds = async (writers: { ids: string[] }): Promise<string[]> => {
    for (const deadline = Date.now() + 10_000; writers.ids.length < 50 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    const known = writers.ids.slice(0, 50);
    await caughtUp();
    return known;
  };

  /** Readers: documents that exist must always be found, and every read-model query must succeed. */
  const startReaders = (known: string[]) => {
    let stop = false;
    const failures: string[] = [];
    let reads = 0;
    const loops = Array.from({ length: 3 }, async (_, r) => {
      while (!stop) {
        const id = known[(reads + r) % known.length]!;
        try {
          const doc = await readModels.getDoc('entities', 'rbw', id);
          if (!doc && failures.length < 20) failures.push(`entity ${id} missing`);
          await db.pool.query("SELECT count(*) FROM entities WHERE world_id = 'rba' AND status = 'active'");
          await db.pool.query("SELECT action FROM player_history WHERE world_id = 'rba' AND NOT rolled_back ORDER BY revision DESC LIMIT 5");
        } catch (error) {
          if (failures.length < 20) failures.push(String(error));
        }
        reads++;
      }
    });
    return { stop: async () => ((stop = true), await Promise.all(loops), { reads, failures }) };
  };

  it('rebuilds entities and player_history while writes and reads go on: equal to a fresh replay, no failed read', async () => {
    const writers = startWriters();
    await new Promise((r) => setTimeout(r, 300));
    const readers = startReaders(await projectedIds(writers));
    // Pages of 97 events and a commit every 500: the bulk phase's page and flush boundaries fall everywhere.
    const rebuilds = worker(200, { pageSize: 97, flushEvents: 500 });
    rebuilds.start();
    let readResult: { reads: number; failures: string[] };
    try {
      for (const name of ['entities', 'player_history']) {
        // The events the gap-safe feed could deliver when the job was asked for (an older transaction still
        // open elsewhere on the server, as another suite's, holds back the later ones, for the rebuild too).
        const before = Number(
          (await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())')).rows[0]!.n,
        );
        const job = await jobs.request(name, 'admin:test', 'test');
        await expect(jobs.request(name, 'admin:test', 'again')).rejects.toBeInstanceOf(RebuildInProgressError);
        const done = await finished(job.jobId);
        expect({ state: done.state, error: done.error }).toEqual({ state: 'succeeded', error: null });
        // It read the whole log up to (at least) where it was when the job was asked for.
        expect(done.processed).toBeGreaterThanOrEqual(before);
        expect(done.total).toBe(done.processed);
      }
    } finally {
      await rebuilds.stop();
      await writers.stop();
      readResult = await readers.stop();
    }
    const { reads, failures } = readResult;
    expect(failures).toEqual([]);
    expect(reads).toBeGreaterThan(10);
    // The writers' last event, not the gap-safe head (another suite's open transaction may hold that back).
    await caughtUp(writers.last()!);

    const inline = new InlineReadModels();
    inline.apply(await wholeLog(store, db.pool));
    expect(await readBackPostgres(db.pool)).toEqual(expectedOf(inline));
    // The history had rollbacks in it: the rebuilt rows carry their marks.
    expect(Number((await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM player_history WHERE rolled_back')).rows[0]!.n)).toBeGreaterThan(0);
    // The live projector writes the new hot-state generation now; the old tables are gone.
    expect(live.generationOf('entities')).toBe(2);
    const last = writers.ids.at(-1)!;
    expect((await hot.get('entities', 'rbw', last, 2))?.state).toMatchObject({ attributes: { hp: 1 } });
    const { rows } = await db.pool.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '%\\_\\_%'", [db.schema]);
    expect(rows).toEqual([]);
    // Indexes kept their names, so later migrations find them.
    const { rows: indexes } = await db.pool.query<{ i: string }>("SELECT indexname AS i FROM pg_indexes WHERE schemaname = $1 AND tablename = 'entities' ORDER BY 1", [db.schema]);
    expect(indexes.map((r) => r.i)).toEqual(['entities_kind', 'entities_location', 'entities_pkey', 'entities_updated']);
  }, 120_000);

  it('resumes a rebuild interrupted by a crash from its own checkpoint', async () => {
    const job = await jobs.request('narrative_state', 'admin:test', null);
    // Small pages and a commit every 10 events, so the first worker dies with part of the log behind it.
    const first = worker(5, { pageSize: 5, flushEvents: 10 });
    first.start();
    for (let i = 0; i < 400; i++) {
      const now = (await jobs.get(job.jobId))!;
      if (now.state === 'running' && now.processed > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await first.stop(); // the process dies mid-way: the job stays 'running', its tables and checkpoint stay
    const interrupted = (await jobs.get(job.jobId))!;
    expect(interrupted.state).toBe('running');
    expect(interrupted.processed).toBeLessThan(interrupted.total!);

    const second = worker(500);
    second.start();
    try {
      const done = await finished(job.jobId);
      expect(done.state).toBe('succeeded');
    } finally {
      await second.stop();
    }
    expect(logs.some((line) => line.includes(`rebuild ${job.jobId}: resuming narrative_state__next`))).toBe(true);
    await caughtUp();
    const inline = new InlineReadModels();
    inline.apply(await wholeLog(store, db.pool));
    expect(await readBackPostgres(db.pool)).toEqual(expectedOf(inline));
  }, 120_000);

  it('rebuilds all five read models in one job (read_models) under writes and reads: equal to a fresh replay, one switch, overlapping jobs refused', async () => {
    const generations = Object.fromEntries(['entities', 'world_state', 'narrative_state', 'player_state', 'player_history'].map((n) => [n, live.generationOf(n)]));
    const writers = startWriters();
    await new Promise((r) => setTimeout(r, 300));
    const readers = startReaders(await projectedIds(writers));
    const rebuilds = worker(200, { pageSize: 113, flushEvents: 700 });
    let readResult: { reads: number; failures: string[] };
    try {
      const job = await jobs.request(READ_MODELS_JOB, 'admin:test', 'all of them');
      // The job shares every read model's tables: neither it again nor any one of them may start beside it.
      await expect(jobs.request(READ_MODELS_JOB, 'admin:test', 'again')).rejects.toBeInstanceOf(RebuildInProgressError);
      await expect(jobs.request('player_state', 'admin:test', 'one')).rejects.toMatchObject({ projection: 'player_state', jobId: job.jobId, blockedBy: READ_MODELS_JOB });
      rebuilds.start();
      const done = await finished(job.jobId);
      expect({ state: done.state, error: done.error }).toEqual({ state: 'succeeded', error: null });
      expect(logs.some((line) => line.includes(`rebuild ${job.jobId}: building entities__next, world_state__next, narrative_state__next, player_state__next, player_history__next`))).toBe(true);
    } finally {
      await rebuilds.stop();
      await writers.stop();
      readResult = await readers.stop();
    }
    expect(readResult.failures).toEqual([]);
    await caughtUp(writers.last()!);
    const inline = new InlineReadModels();
    inline.apply(await wholeLog(store, db.pool));
    expect(await readBackPostgres(db.pool)).toEqual(expectedOf(inline));
    // One generation above the highest before, for all five (the hot state of each moved to new keys).
    const next = Math.max(...Object.values(generations)) + 1;
    for (const name of Object.keys(generations)) expect({ name, generation: live.generationOf(name) }).toEqual({ name, generation: next });
    // Every document is hot under the new generation, in its last state: the bulk phase writes each once, at its end,
    // and the copy's runner and then the live projector the ones that changed after.
    const cold: string[] = [];
    for (const doc of inline.docs.values()) {
      const hotDoc = await hot.get(doc.table, doc.worldId, doc.id, next);
      // Key order aside: a reader may have filled a key from the table (jsonb orders keys its own way).
      if (hotDoc?.revision !== doc.revision || !isDeepStrictEqual(hotDoc.state, doc.state)) cold.push(doc.streamId);
    }
    expect({ documents: inline.docs.size, cold }).toEqual({ documents: inline.docs.size, cold: [] });
    const { rows } = await db.pool.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '%\\_\\_%'", [db.schema]);
    expect(rows).toEqual([]);
    // A single projection's job may start again once it is done, and is refused while it runs.
    const single = await jobs.request('world_state', 'admin:test', null);
    await expect(jobs.request(READ_MODELS_JOB, 'admin:test', 'all')).rejects.toMatchObject({ projection: READ_MODELS_JOB, jobId: single.jobId, blockedBy: 'world_state' });
    const again = worker(500);
    again.start();
    try {
      expect((await finished(single.jobId)).state).toBe('succeeded');
    } finally {
      await again.stop();
    }
  }, 120_000);

  it('a copy loads without its secondary indexes and gets each back once, as the live table defines it (partitions too)', async () => {
    const shadows = new ShadowTables(db.pool);
    const definitions = async (table: string) =>
      (await db.pool.query<{ def: string }>('SELECT indexdef AS def FROM pg_indexes WHERE schemaname = $1 AND tablename = $2', [db.schema, table])).rows
        .map((r) => r.def.replace(/^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ /, '$1'))
        .sort();
    const partitionIndexes = async (table: string) =>
      Number(
        (
          await db.pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_inherits p JOIN pg_index i ON i.indrelid = p.inhrelid WHERE p.inhparent = to_regclass($1)`,
            [table],
          )
        ).rows[0]!.n,
      );
    for (const [name, secondary] of [['entities', 3], ['player_state', 1], ['player_history', 2], ['world_state', 0]] as const) {
      await shadows.create(name);
      const live = await definitions(name);
      expect(await definitions(`${name}__next`)).toEqual(live);
      const withAll = await partitionIndexes(`${name}__next`);
      expect(await shadows.dropSecondaryIndexes(name)).toBe(secondary);
      expect((await definitions(`${name}__next`)).length).toBe(live.length - secondary);
      // What an erasure needs first: the indexes led by player_id (player_state_player, player_history_player).
      expect(await shadows.restoreIndexes(name, LED_BY_PLAYER)).toBe(name.startsWith('player_') ? 1 : 0);
      expect(await shadows.restoreIndexes(name)).toBe(name.startsWith('player_') ? secondary - 1 : secondary);
      expect(await shadows.restoreIndexes(name)).toBe(0);
      expect({ name, defs: await definitions(`${name}__next`) }).toEqual({ name, defs: live });
      // Each partition of player_history's copy has its indexes again.
      expect(await partitionIndexes(`${name}__next`)).toBe(withAll);
      await shadows.drop(name);
    }
    // A copy short of an index never goes live: the switch fails and changes nothing.
    await shadows.create('entities');
    expect(await shadows.dropSecondaryIndexes('entities')).toBe(3);
    await expect(shadows.switch('entities', 9)).rejects.toThrow(/entities__next has no index like entities_\w+ of entities/);
    expect(await definitions('entities')).toHaveLength(4);
    expect(await shadows.exists('entities')).toBe(true);
    await shadows.drop('entities');
  });

  it('a bulk phase that finds its rows written by another process leaves the copy to its runner, and the job still succeeds', async () => {
    // Another process took the job over and wrote the copy already: here, the copy exists with one history row of the
    // log in it (and no checkpoint), and the job is 'running', as a resumed job is.
    const shadows = new ShadowTables(db.pool);
    const job = await jobs.request('player_history', 'admin:test', 'contended');
    await shadows.create('player_history');
    const { rows: stored } = await db.pool.query<{ n: string }>(
      'INSERT INTO player_history__next SELECT * FROM player_history ORDER BY position LIMIT 1 RETURNING 1 AS n',
    );
    expect(stored).toHaveLength(1);
    await db.pool.query("UPDATE projection_jobs SET state = 'running' WHERE job_id = $1", [job.jobId]);
    const rebuilds = worker(500);
    rebuilds.start();
    try {
      const done = await finished(job.jobId);
      expect({ state: done.state, error: done.error }).toEqual({ state: 'succeeded', error: null });
    } finally {
      await rebuilds.stop();
    }
    expect(logs.some((line) => line.includes('another process wrote player_history__next too'))).toBe(true);
    await caughtUp();
    const inline = new InlineReadModels();
    inline.apply(await wholeLog(store, db.pool));
    expect(await readBackPostgres(db.pool)).toEqual(expectedOf(inline));
  });

  it('refuses an unknown projection', async () => {
    await expect(jobs.request('nope', 'admin:test', null)).rejects.toBeInstanceOf(UnknownProjectionError);
  });
});
