import { ratio, type Table } from '../support/report';
import type { CatchUpResult } from './catch-up';
import type { LagResult } from './lag';
import type { ReadResult, RedisBenchmarkResult } from './reads';
import type { SinkResult } from './sinks';

/** Issue #3's targets. */
export const TARGETS = {
  postgresEventsPerSecond: 20_000,
  redisEventsPerSecond: 50_000,
  lagWriteRate: 5_000,
  lagP99Ms: 100,
  readRate: 10_000,
  readP99Ms: 5,
};

/** A load target counts as offered when at least this share of it was achieved. */
const ACHIEVED_SHARE = 0.95;

export type BatchCell = {
  batchSize: number;
  /** The runner's catch-up batch size (equal to batchSize: none). */
  catchUpBatchSize: number;
  catchUp: CatchUpResult;
  redisSink: SinkResult | null;
  redisPlain: SinkResult | null;
  postgresSink: SinkResult;
  postgresPlain: SinkResult;
};

export type Outcome<T> = { result: T } | { skipped: string } | { failed: string };

/**
 * `service` and `redis` with staggered pacing (the judged pair), the
 * `…Aligned` pair with autocannon's own (see Pacing in reads.ts), and the
 * floors (floor-server.ts), staggered: bare Fastify + the same HMGET
 * (`floor`), node:http + the same HMGET (`floorNode`), node:http and a fixed
 * body without Redis (`floorStatic`).
 */
export type Reads = {
  service: Outcome<ReadResult>;
  redis: Outcome<ReadResult>;
  serviceAligned: Outcome<ReadResult>;
  redisAligned: Outcome<ReadResult>;
  floor: Outcome<ReadResult>;
  floorNode: Outcome<ReadResult>;
  floorStatic: Outcome<ReadResult>;
  redisBenchmark: RedisBenchmarkResult[];
};

type Verdict = { target: string; actual: string; met: boolean | null; judgedOn: string };

const met = (v: boolean | null) => (v === null ? 'n/a' : v ? 'met' : 'MISSED');
const fmt = (n: number) => n.toLocaleString('en-US');
const times = (r: number | null) => (r === null ? '' : `${r}x`);
/** "1,000" or, with catch-up batches, "1,000/5,000". */
export const batchLabel = (c: { batchSize: number; catchUpBatchSize: number }): string =>
  c.catchUpBatchSize > c.batchSize ? `${fmt(c.batchSize)}/${fmt(c.catchUpBatchSize)}` : fmt(c.batchSize);

export const summarize = (cells: BatchCell[], judgedRun: { batchSize: number; catchUpBatchSize: number }, lag: Outcome<LagResult>, reads: Reads, title: string) => {
  const judged = cells.find((c) => c.batchSize === judgedRun.batchSize && c.catchUpBatchSize === judgedRun.catchUpBatchSize) ?? cells.at(-1);
  const verdicts: Verdict[] = [];
  if (judged) {
    const a = judged.catchUp;
    // The same batch size without catch-up batches, if it ran: the approach before them.
    const plainBatches = judged.catchUpBatchSize > judged.batchSize ? cells.find((c) => c.batchSize === judged.batchSize && c.catchUpBatchSize === c.batchSize) : undefined;
    const before = plainBatches ? `; without catch-up batches ${fmt(plainBatches.catchUp.eventsPerSecond)} (${times(ratio(a.eventsPerSecond, plainBatches.catchUp.eventsPerSecond))})` : '';
    verdicts.push({
      target: `projection into PostgreSQL >= ${fmt(TARGETS.postgresEventsPerSecond)} events/s`,
      actual: `${fmt(a.eventsPerSecond)} events/s (runner, PostgreSQL + Redis); sink alone ${fmt(judged.postgresSink.eventsPerSecond)}${before}`,
      met: a.eventsPerSecond >= TARGETS.postgresEventsPerSecond,
      judgedOn: `(a) the runner catching up, batch ${batchLabel(judged)}`,
    });
    const b = judged.redisSink;
    verdicts.push({
      target: `projection into Redis >= ${fmt(TARGETS.redisEventsPerSecond)} events/s`,
      actual: b ? `${fmt(b.eventsPerSecond)} events/s (sink alone); in the runner ${fmt(a.stageEventsPerSecond.hotPut)}` : 'no Redis',
      met: b ? b.eventsPerSecond >= TARGETS.redisEventsPerSecond : null,
      judgedOn: `(b) RedisHotState.put alone, batch ${batchLabel(judged)}`,
    });
  }
  if ('result' in lag) {
    const l = lag.result;
    const offered = l.writer.achievedRate >= TARGETS.lagWriteRate * ACHIEVED_SHARE;
    verdicts.push({
      target: `lag p99 <= ${TARGETS.lagP99Ms} ms at ${fmt(TARGETS.lagWriteRate)} events/s written`,
      actual: `p99 ${l.lag.p99Ms} ms at ${fmt(l.writer.achievedRate)} appends/s${l.unprojected ? `, ${l.unprojected} never projected` : ''}`,
      met: l.lag.p99Ms <= TARGETS.lagP99Ms && offered && l.unprojected === 0 && l.writer.errors === 0,
      judgedOn: `paced writer + runner (batch ${l.runnerBatchSize})`,
    });
  } else {
    verdicts.push({ target: `lag p99 <= ${TARGETS.lagP99Ms} ms`, actual: 'skipped' in lag ? `skipped: ${lag.skipped}` : `failed: ${lag.failed}`, met: null, judgedOn: '' });
  }
  if ('result' in reads.service) {
    const s = reads.service.result;
    const offered = s.requestsPerSecond >= TARGETS.readRate * ACHIEVED_SHARE;
    verdicts.push({
      target: `GET entity p99 <= ${TARGETS.readP99Ms} ms at ${fmt(TARGETS.readRate)} req/s`,
      actual:
        `p99 ${s.latency.p99Ms} ms at ${fmt(s.requestsPerSecond)} req/s, non-2xx ${s.notOk}, errors ${s.errors}` +
        ('result' in reads.redis ? `; Redis alone p99 ${reads.redis.result.latency.p99Ms} ms` : '') +
        ('result' in reads.floor
          ? `; floor (Fastify + HMGET alone) p99 ${reads.floor.result.latency.p99Ms} ms at ${fmt(reads.floor.result.requestsPerSecond)} req/s` +
            `; CPU ${String(s.extra?.cpuUsPerRequest ?? '?')} µs/req vs floor ${String(reads.floor.result.extra?.cpuUsPerRequest ?? '?')}`
          : '') +
        ('result' in reads.floorNode ? `; node:http + HMGET p99 ${reads.floorNode.result.latency.p99Ms} ms` : '') +
        ('result' in reads.floorStatic ? `; node:http alone p99 ${reads.floorStatic.result.latency.p99Ms} ms` : '') +
        ('result' in reads.serviceAligned ? `; aligned bursts p99 ${reads.serviceAligned.result.latency.p99Ms} ms` : ''),
      met: s.latency.p99Ms <= TARGETS.readP99Ms && offered && s.notOk === 0 && s.errors === 0,
      judgedOn: 'state-api child process, autocannon, staggered',
    });
  } else {
    const s = reads.service;
    verdicts.push({ target: `GET entity p99 <= ${TARGETS.readP99Ms} ms`, actual: 'skipped' in s ? `skipped: ${s.skipped}` : `failed: ${s.failed}`, met: null, judgedOn: '' });
  }

  const throughput: Table = {
    title,
    headers: ['batch', 'what', 'events/s', 'writes/s', 'ms', 'vs plain', 'redis cpu ms'],
    rows: cells.flatMap((c) => {
      const rows: (string | number)[][] = [
        [
          batchLabel(c),
          `(a) runner from zero: PostgreSQL + ${c.catchUp.hotState === 'redis' ? 'Redis' : 'in-process hot state'}`,
          c.catchUp.eventsPerSecond,
          Math.round((c.catchUp.docsWritten + c.catchUp.historyRows) / (c.catchUp.ms / 1000)),
          c.catchUp.ms,
          '',
          c.catchUp.cpuMs.redisServer ?? '',
        ],
      ];
      if (c.redisSink && c.redisPlain) {
        rows.push([
          batchLabel(c),
          `(b) Redis sink: ${c.redisSink.label}`,
          c.redisSink.eventsPerSecond,
          c.redisSink.writesPerSecond,
          c.redisSink.ms,
          times(ratio(c.redisSink.eventsPerSecond, c.redisPlain.eventsPerSecond)),
          c.redisSink.serverCpuMs ?? '',
        ]);
        rows.push([batchLabel(c), `    baseline: ${c.redisPlain.label}`, c.redisPlain.eventsPerSecond, c.redisPlain.writesPerSecond, c.redisPlain.ms, '', c.redisPlain.serverCpuMs ?? '']);
      }
      rows.push([
        batchLabel(c),
        `(c) PostgreSQL sink: ${c.postgresSink.label}`,
        c.postgresSink.eventsPerSecond,
        c.postgresSink.writesPerSecond,
        c.postgresSink.ms,
        times(ratio(c.postgresSink.eventsPerSecond, c.postgresPlain.eventsPerSecond)),
        '',
      ]);
      rows.push([batchLabel(c), `    baseline: ${c.postgresPlain.label}`, c.postgresPlain.eventsPerSecond, c.postgresPlain.writesPerSecond, c.postgresPlain.ms, '', '']);
      return rows;
    }),
  };

  const breakdown: Table = {
    title: '(a) where the runner’s time goes (ms): feed reads (overlapping the batches), then per batch load docs, plan (fold + bookkeeping), PostgreSQL commit (its COMMIT waits for the hot put, which runs beside its statements)',
    headers: ['batch', 'total', 'feed read', 'per read', 'load docs', 'plan', 'hot put (beside)', 'pg commit', 'other', 'batch p50', 'batch p99', 'node cpu', 'redis cpu'],
    rows: cells.map((c) => {
      const b = c.catchUp.breakdown;
      return [
        batchLabel(c),
        c.catchUp.ms,
        b.feedReadMs,
        c.catchUp.feedReads.meanMs,
        b.loadDocsMs,
        b.planMs,
        b.hotPutMs,
        b.pgCommitMs,
        b.otherMs,
        c.catchUp.batchMs.p50Ms,
        c.catchUp.batchMs.p99Ms,
        c.catchUp.cpuMs.runnerNode,
        c.catchUp.cpuMs.redisServer ?? '',
      ];
    }),
  };

  const tables: Table[] = [throughput, breakdown];
  if ('result' in lag) {
    const l = lag.result;
    tables.push({
      title: `lag (ms): appends paced at ${fmt(l.targetRate)}/s for ${l.seconds}s (after ${l.warmupSeconds}s warm-up), runner batch ${l.runnerBatchSize}`,
      headers: ['appends/s', 'append p50', 'append p99', 'lag p50', 'lag p90', 'lag p99', 'lag max', 'p50 1st s', 'p50 last s', 'events/batch', 'batch p99', 'unprojected', 'skipped'],
      rows: [
        [
          l.writer.achievedRate,
          l.writer.appendLatency.p50Ms,
          l.writer.appendLatency.p99Ms,
          l.lag.p50Ms,
          l.lag.p90Ms,
          l.lag.p99Ms,
          l.lag.maxMs,
          l.trend.firstSecondP50Ms,
          l.trend.lastSecondP50Ms,
          l.runner.meanEventsPerBatch,
          l.runner.batchMs.p99Ms,
          l.unprojected,
          l.writer.skippedBusy + l.writer.skippedInFlight,
        ],
      ],
    });
    tables.push({
      title: 'lag in parts (ms, per append): until the runner starts the read that returns it, the read, then load + plan + hot put + commit',
      headers: ['part', 'p50', 'p90', 'p99', 'max'],
      rows: (
        [
          ['before the read', l.parts.beforeReadMs],
          ['feed read', l.parts.readMs],
          ['apply + commit', l.parts.applyMs],
          ['lag', l.lag],
        ] as const
      ).map(([name, s]) => [name, s.p50Ms, s.p90Ms, s.p99Ms, s.maxMs]),
    });
  }
  const readRows: (string | number)[][] = [];
  // The static floor reads no Redis: no ratio to Redis for it.
  const none: Outcome<ReadResult> = { skipped: 'not compared' };
  for (const [outcome, against] of [
    [reads.service, reads.redis],
    [reads.floor, reads.redis],
    [reads.floorNode, reads.redis],
    [reads.floorStatic, none],
    [reads.redis, reads.redis],
    [reads.serviceAligned, reads.redisAligned],
    [reads.redisAligned, reads.redisAligned],
  ] as const) {
    if (!('result' in outcome)) continue;
    const r = outcome.result;
    const baseline = 'result' in against ? against.result : null;
    readRows.push([
      r.label,
      r.requestsPerSecond,
      r.notOk + r.errors,
      r.latency.p50Ms,
      r.latency.p90Ms,
      r.latency.p99Ms,
      r.latency.maxMs,
      r === baseline || !baseline ? '' : `${ratio(r.latency.p99Ms, baseline.latency.p99Ms) ?? '-'}x`,
      typeof r.extra?.cpuUsPerRequest === 'number' ? r.extra.cpuUsPerRequest : '',
    ]);
  }
  for (const r of reads.redisBenchmark) readRows.push([r.label, r.requestsPerSecond, 0, r.p50Ms, '', r.p99Ms, r.maxMs, '', '']);
  if (readRows.length > 0) {
    tables.push({
      title: 'reads: GET one entity, hot in Redis, vs the floors (bare Fastify or node:http + the same HMGET; node:http alone) and Redis itself; server CPU per request from /proc',
      headers: ['what', 'req/s', 'failed', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'p99 vs redis', 'server cpu µs/req'],
      rows: readRows,
    });
  }
  tables.push({ title: 'targets (issue #3)', headers: ['target', 'actual', 'verdict', 'judged on'], rows: verdicts.map((v) => [v.target, v.actual, met(v.met), v.judgedOn]) });
  return { verdicts, tables };
};
