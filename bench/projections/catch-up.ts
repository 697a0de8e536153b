import { comparePositions, type Position } from '@lorestore/event-store';
import { createPostgresPool } from '@lorestore/infra';
import { MemoryHotState, ProjectionRunner, ReadModelStore, RedisHotState, docKey, type Doc, type HotStateStore } from '@lorestore/projections';
import { log } from '../support/env';
import { LatencyRecorder, type LatencySummary } from '../support/latency';
import { TimedEventStore, TimedHotState, TimedReadModels, type RecordedCommit } from './instrumented';
import { profiled } from './profile';
import { countKeys, redisCpuMs } from './redis';

export type RedisTarget = { url: string; prefix: string };

export type CatchUpResult = {
  batchSize: number;
  /** Per read and transaction while behind (equal to batchSize: no catch-up batches). */
  catchUpBatchSize: number;
  hotState: 'redis' | 'memory';
  events: number;
  ms: number;
  eventsPerSecond: number;
  batches: number;
  docsWritten: number;
  distinctDocs: number;
  historyRows: number;
  /** Per batch, from the runner's onBatch: load + plan + hot put + commit. */
  batchMs: LatencySummary;
  /** Reads of the feed, and their mean time. */
  feedReads: { count: number; meanMs: number };
  /** Where the wall time went (ms): feed reads, then per batch load, plan, PostgreSQL commit (the hot put runs beside its statements); other = the rest. */
  breakdown: { feedReadMs: number; loadDocsMs: number; planMs: number; hotPutMs: number; pgCommitMs: number; otherMs: number };
  /** CPU used meanwhile by this Node process (the runner) and by the Redis server; PostgreSQL has the rest of the machine. */
  cpuMs: { runnerNode: number; redisServer: number | null };
  /** Each stage's own rate: events / time spent in it. */
  stageEventsPerSecond: { feedRead: number; hotPut: number; pgCommit: number; plan: number };
  /** Read back after the run: rows and keys match what the runner wrote. */
  check: { pgDocs: number; pgHistory: number; redisKeys: number | null; ok: boolean };
};

export type CatchUpRecording = { puts: Doc[][]; commits: RecordedCommit[] };

const rate = (events: number, ms: number) => (ms > 0 ? Math.round((events / ms) * 1000) : 0);
const r1 = (ms: number) => Math.round(ms * 10) / 10;

/**
 * (a) A ProjectionRunner catching up from zero over the prefilled log, every
 * projection, into a fresh read-model schema and Redis (or the in-process hot
 * store when there is no Redis), timed from start() to the commit of the
 * head's batch. The sinks' inputs are recorded for (b) and (c).
 */
export const runCatchUp = async (options: {
  url: string;
  eventsSchema: string;
  readModelSchema: string;
  redis: RedisTarget | null;
  batchSize: number;
  /** The runner's catchUpBatchSize (equal to batchSize: none). */
  catchUpBatchSize: number;
  expectedEvents: number;
  ttlSeconds: number;
}): Promise<{ result: CatchUpResult; recording: CatchUpRecording }> => {
  const eventsPool = createPostgresPool({ url: options.url, schema: options.eventsSchema, max: 4, applicationName: 'bench-proj-feed' });
  const rmPool = createPostgresPool({ url: options.url, schema: options.readModelSchema, max: 4, applicationName: 'bench-proj-runner' });
  const inner: HotStateStore = options.redis
    ? new RedisHotState({ url: options.redis.url, keyPrefix: options.redis.prefix, ttlSeconds: options.ttlSeconds, connectTimeoutMs: 5000, commandTimeoutMs: 30_000 })
    : new MemoryHotState({ ttlSeconds: options.ttlSeconds, maxEntries: 10_000_000 });
  const hot = new TimedHotState(inner, true);
  const store = new TimedEventStore({ pool: eventsPool, schema: options.eventsSchema });
  try {
    await ReadModelStore.migrate(rmPool, options.readModelSchema);
    const readModels = new TimedReadModels(rmPool, true);
    await hot.ping();
    const head = await store.headPosition();
    if (!head) throw new Error('the event store is empty');

    const batchMs = new LatencyRecorder();
    let events = 0;
    let docs = 0;
    let history = 0;
    let applyMs = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const runner = new ProjectionRunner({
      store,
      pool: rmPool,
      readModels,
      hot,
      batchSize: options.batchSize,
      catchUpBatchSize: options.catchUpBatchSize,
      lockName: `bench.${options.readModelSchema}`,
      partitions: { monthsBack: 1, monthsAhead: 3, retentionMonths: null },
      onBatch: (info) => {
        events += info.events;
        docs += info.docs;
        history += info.history;
        applyMs += info.ms;
        batchMs.record(info.ms);
      },
      logger: { info: () => undefined, warn: (m) => log(`  runner: ${m}`), error: (m) => log(`  runner: ${m}`) },
    });
    runner.onCommitted((position: Position) => {
      if (comparePositions(position, head) >= 0) done();
    });

    const limitMs = Math.max(120_000, options.expectedEvents * 2);
    let timer: NodeJS.Timeout | undefined;
    const redisCpuBefore = options.redis ? await redisCpuMs(options.redis.url) : null;
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await profiled(`projections-catchup-b${options.batchSize}-c${options.catchUpBatchSize}`, async () => {
      runner.start();
      await Promise.race([
        finished,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the runner did not catch up within ${limitMs} ms (${events} events projected)`)), limitMs);
        }),
      ]);
    }).finally(() => clearTimeout(timer));
    const ms = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const redisCpuAfter = options.redis ? await redisCpuMs(options.redis.url) : null;
    await runner.stop();
    if (events !== options.expectedEvents) throw new Error(`the runner projected ${events} events, expected ${options.expectedEvents}`);

    // The hot put runs beside the commit's statements and the commit waits for it: it is inside commitMs.
    const planMs = Math.max(0, applyMs - readModels.loadMs - readModels.commitMs);
    const otherMs = Math.max(0, ms - store.feedMs - applyMs);

    const distinct = new Set<string>();
    for (const put of hot.puts) for (const doc of put) distinct.add(docKey(doc.table, doc.streamId));
    const { rows } = await rmPool.query<{ docs: string; history: string }>(
      `SELECT (SELECT count(*) FROM entities) + (SELECT count(*) FROM world_state) + (SELECT count(*) FROM narrative_state)
              + (SELECT count(*) FROM player_state) AS docs, (SELECT count(*) FROM player_history) AS history`,
    );
    const redisKeys = options.redis ? await countKeys(options.redis.url, options.redis.prefix) : null;
    const check = {
      pgDocs: Number(rows[0]!.docs),
      pgHistory: Number(rows[0]!.history),
      redisKeys,
      ok: Number(rows[0]!.docs) === distinct.size && Number(rows[0]!.history) === history && (redisKeys === null || redisKeys === distinct.size),
    };
    if (!check.ok) log(`  WARNING: read back ${JSON.stringify(check)}, expected ${distinct.size} documents and ${history} history rows`);

    const result: CatchUpResult = {
      batchSize: options.batchSize,
      catchUpBatchSize: options.catchUpBatchSize,
      hotState: options.redis ? 'redis' : 'memory',
      events,
      ms: Math.round(ms),
      eventsPerSecond: rate(events, ms),
      batches: batchMs.count,
      docsWritten: docs,
      distinctDocs: distinct.size,
      historyRows: history,
      batchMs: batchMs.summary(),
      cpuMs: {
        runnerNode: Math.round((cpu.user + cpu.system) / 1000),
        redisServer: redisCpuBefore !== null && redisCpuAfter !== null ? Math.round(redisCpuAfter - redisCpuBefore) : null,
      },
      feedReads: { count: store.feedReads, meanMs: store.feedReads ? r1(store.feedMs / store.feedReads) : 0 },
      breakdown: {
        feedReadMs: r1(store.feedMs),
        loadDocsMs: r1(readModels.loadMs),
        planMs: r1(planMs),
        hotPutMs: r1(hot.putMs),
        pgCommitMs: r1(readModels.commitMs),
        otherMs: r1(otherMs),
      },
      stageEventsPerSecond: {
        feedRead: rate(events, store.feedMs),
        hotPut: rate(events, hot.putMs),
        pgCommit: rate(events, readModels.commitMs),
        plan: rate(events, planMs),
      },
      check,
    };
    return { result, recording: { puts: hot.puts, commits: readModels.commits } };
  } finally {
    await store.close().catch(() => undefined);
    await hot.close().catch(() => undefined);
    await eventsPool.end();
    await rmPool.end();
  }
};
