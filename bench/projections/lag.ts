import { fork } from 'node:child_process';
import path from 'node:path';
import { PostgresEventStore, comparePositions, type Position, type RecordedEvent } from '@lorestore/event-store';
import { createPostgresPool } from '@lorestore/infra';
import { MemoryHotState, ProjectionRunner, ReadModelStore, RedisHotState, type HotStateStore } from '@lorestore/projections';
import { log } from '../support/env';
import { LatencyRecorder, type LatencySummary } from '../support/latency';
import type { RedisTarget } from './catch-up';
import { wallClock } from './clock';
import type { WriterMessage, WriterResult, WriterTask } from './lag-writer';
import { profiled } from './profile';
import type { TrafficShape } from './traffic';

const WRITER = path.join(__dirname, 'lag-writer.js');

/** The store the runner reads through, noting when each non-empty feed read started and ended. */
class NotedEventStore extends PostgresEventStore {
  readonly reads: { last: Position; startedAt: number; endedAt: number }[] = [];

  override async readFeed(from: Position | null, inclusive: boolean, maxCount: number, options: { withMetadata?: boolean } = {}): Promise<RecordedEvent[]> {
    const startedAt = wallClock();
    const events = await super.readFeed(from, inclusive, maxCount, options);
    if (events.length > 0) this.reads.push({ last: events.at(-1)!.position, startedAt, endedAt: wallClock() });
    return events;
  }
}

/** Index of the first entry whose position is at or past `p` (entries in feed order); entries.length if none. */
const firstAtOrPast = <T>(entries: T[], position: (t: T) => Position, p: Position): number => {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (comparePositions(position(entries[mid]!), p) >= 0) hi = mid;
    else lo = mid + 1;
  }
  return lo;
};

export type LagResult = {
  targetRate: number;
  runnerBatchSize: number;
  seconds: number;
  warmupSeconds: number;
  writer: Omit<WriterResult, 'records' | 'startedAt' | 'measureFrom' | 'measureTo'> & { achievedRate: number };
  /** Commit of the runner's batch holding the event minus the append's acknowledgement, for appends meant inside the measured window. */
  lag: LatencySummary;
  /** Appends in the window whose event no runner commit covered before the end. */
  unprojected: number;
  /** Appends whose event was committed by the runner before the writer had its acknowledgement (counted as 0 ms). */
  committedBeforeAck: number;
  runner: { batches: number; meanEventsPerBatch: number; batchMs: LatencySummary };
  /** After the writer stopped, how long the runner took to commit its last event. */
  drainMs: number;
  /**
   * The lag in parts, per append: until the runner started the feed read that
   * returned it (NOTIFY, the batch before, rows held back by the gap-safe read),
   * that read, and from the read to the commit (load, plan, hot put, commit).
   */
  parts: { beforeReadMs: LatencySummary; readMs: LatencySummary; applyMs: LatencySummary };
  /** Median lag of the appends meant for the first and for the last second of the window: a runner that keeps up has both alike. */
  trend: { firstSecondP50Ms: number; lastSecondP50Ms: number };
};

const runWriter = (task: WriterTask, execArgv: string[]): Promise<WriterResult> =>
  new Promise((resolve, reject) => {
    const child = fork(WRITER, [], { stdio: ['ignore', 2, 2, 'ipc'], execArgv: [...process.execArgv, ...execArgv] });
    let settled = false;
    const limit = task.warmupMs + task.durationMs + 90_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`the writer did not finish within ${limit} ms`));
    }, limit);
    const finish = (error: Error | null, result?: WriterResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(result!);
    };
    child.once('message', (message: WriterMessage) => (message.ok ? finish(null, message.result) : finish(new Error(`writer failed: ${message.error}`))));
    child.once('error', (error) => finish(error));
    child.once('exit', (code, signal) => finish(new Error(`writer exited (code ${code}, signal ${signal}) before answering`)));
    child.send(task);
  });

const waitFor = async (condition: () => boolean, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
};

/**
 * (2) Lag under a paced write load: a runner follows the log (already caught
 * up, its read models and hot keys from the catch-up run) while a writer
 * process appends at `rate` per second; each append's lag is the commit time
 * of the runner batch covering it minus its acknowledgement time.
 */
export const runLag = async (options: {
  url: string;
  eventsSchema: string;
  readModelSchema: string;
  redis: RedisTarget | null;
  rate: number;
  warmupMs: number;
  durationMs: number;
  batchSize: number;
  catchUpBatchSize: number;
  shape: TrafficShape;
  ttlSeconds: number;
}): Promise<LagResult> => {
  const eventsPool = createPostgresPool({ url: options.url, schema: options.eventsSchema, max: 4, applicationName: 'bench-proj-feed' });
  const rmPool = createPostgresPool({ url: options.url, schema: options.readModelSchema, max: 4, applicationName: 'bench-proj-runner' });
  const hot: HotStateStore = options.redis
    ? new RedisHotState({ url: options.redis.url, keyPrefix: options.redis.prefix, ttlSeconds: options.ttlSeconds, connectTimeoutMs: 5000, commandTimeoutMs: 5000 })
    : new MemoryHotState({ ttlSeconds: options.ttlSeconds, maxEntries: 10_000_000 });
  const store = new NotedEventStore({ pool: eventsPool, schema: options.eventsSchema });
  const commits: { position: Position; at: number }[] = [];
  const batches: { at: number; events: number; ms: number }[] = [];
  const runner = new ProjectionRunner({
    store,
    pool: rmPool,
    readModels: new ReadModelStore(rmPool),
    hot,
    batchSize: options.batchSize,
    catchUpBatchSize: options.catchUpBatchSize,
    lockName: `bench.${options.readModelSchema}`,
    partitions: { monthsBack: 1, monthsAhead: 3, retentionMonths: null },
    onBatch: (info) => batches.push({ at: wallClock(), events: info.events, ms: info.ms }),
    logger: { info: () => undefined, warn: (m) => log(`  runner: ${m}`), error: (m) => log(`  runner: ${m}`) },
  });
  runner.onCommitted((position) => commits.push({ position, at: wallClock() }));
  try {
    await hot.ping();
    runner.start();
    if (!(await waitFor(() => runner.isLeader && runner.position !== null, 30_000))) throw new Error('the runner did not start following');
    // Its first read finds nothing new and it goes to sleep, LISTENing for appends.
    await new Promise((resolve) => setTimeout(resolve, 500));

    const execArgv = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
    const task: WriterTask = {
      url: options.url,
      schema: options.eventsSchema,
      rate: options.rate,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      shape: options.shape,
      maxInFlight: Math.max(1000, options.rate * 4),
      // The service's defaults (GROUP_COMMIT_CONCURRENCY, GROUP_COMMIT_MAX_BATCH).
      groupCommit: { maxConcurrentBatches: 2, maxBatchSize: 256 },
    };
    const writer = await profiled('projections-lag-runner', () => runWriter(task, execArgv));
    const { records } = writer;

    let last: Position | null = null;
    for (let i = 0; i < records.acked.length; i++) {
      const p = { commit: BigInt(records.commit[i]!), prepare: BigInt(records.prepare[i]!) };
      if (!last || comparePositions(p, last) > 0) last = p;
    }
    const drainStarted = wallClock();
    if (last) await waitFor(() => runner.position !== null && comparePositions(runner.position, last) >= 0, 60_000);
    const drainMs = Math.round(wallClock() - drainStarted);

    // For each append in the window: the first runner commit at or past its position.
    const lag = new LatencyRecorder();
    const firstSecond = new LatencyRecorder();
    const lastSecond = new LatencyRecorder();
    const beforeRead = new LatencyRecorder();
    const reading = new LatencyRecorder();
    const applying = new LatencyRecorder();
    let unprojected = 0;
    let committedBeforeAck = 0;
    let ackedInWindow = 0;
    for (let i = 0; i < records.acked.length; i++) {
      const acked = records.acked[i]!;
      if (acked >= writer.measureFrom && acked < writer.measureTo) ackedInWindow++;
      const intended = records.intended[i]!;
      if (intended < writer.measureFrom || intended >= writer.measureTo) continue;
      const p = { commit: BigInt(records.commit[i]!), prepare: BigInt(records.prepare[i]!) };
      const c = firstAtOrPast(commits, (x) => x.position, p);
      if (c === commits.length) {
        unprojected++;
        continue;
      }
      const ms = commits[c]!.at - acked;
      const read = store.reads[firstAtOrPast(store.reads, (x) => x.last, p)];
      if (read) {
        beforeRead.record(Math.max(0, read.startedAt - acked));
        reading.record(read.endedAt - read.startedAt);
        applying.record(commits[c]!.at - read.endedAt);
      }
      if (ms < 0) committedBeforeAck++;
      lag.record(Math.max(0, ms));
      if (intended < writer.measureFrom + 1000) firstSecond.record(Math.max(0, ms));
      if (intended >= writer.measureTo - 1000) lastSecond.record(Math.max(0, ms));
    }
    const inWindow = batches.filter((b) => b.at >= writer.measureFrom && b.at < writer.measureTo);
    const batchMs = new LatencyRecorder();
    for (const b of inWindow) batchMs.record(b.ms);
    const { records: _records, startedAt: _s, measureFrom: _f, measureTo: _t, ...writerSummary } = writer;
    return {
      targetRate: options.rate,
      runnerBatchSize: options.batchSize,
      seconds: options.durationMs / 1000,
      warmupSeconds: options.warmupMs / 1000,
      writer: { ...writerSummary, achievedRate: Math.round(ackedInWindow / (options.durationMs / 1000)) },
      lag: lag.summary(),
      unprojected,
      committedBeforeAck,
      runner: {
        batches: inWindow.length,
        meanEventsPerBatch: inWindow.length ? Math.round((inWindow.reduce((n, b) => n + b.events, 0) / inWindow.length) * 10) / 10 : 0,
        batchMs: batchMs.summary(),
      },
      drainMs,
      parts: { beforeReadMs: beforeRead.summary(), readMs: reading.summary(), applyMs: applying.summary() },
      trend: { firstSecondP50Ms: firstSecond.summary().p50Ms, lastSecondP50Ms: lastSecond.summary().p50Ms },
    };
  } finally {
    await runner.stop();
    await store.close().catch(() => undefined);
    await hot.close().catch(() => undefined);
    await eventsPool.end();
    await rmPool.end();
  }
};
