import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PostgresEventStore } from '@lorestore/event-store';
import { createPostgresPool } from '@lorestore/infra';
import { hotKey } from '@lorestore/projections';
import type { EntityState } from '@lorestore/domain';
import { runCatchUp, type CatchUpRecording, type RedisTarget } from './projections/catch-up';
import { runLag, type LagResult } from './projections/lag';
import { prefillEventStore, type PrefillResult } from './projections/prefill';
import { measureFloor, measureRedisReads, measureService, redisBenchmark, type EntityRef, type FloorKind, type ReadLoad, type ReadResult } from './projections/reads';
import { countKeys, deleteKeys, redisReachable } from './projections/redis';
import { postgresPlain, postgresSink, redisPlain, redisSink } from './projections/sinks';
import { batchLabel, summarize, TARGETS, type BatchCell, type Outcome, type Reads } from './projections/summary';
import { GameTraffic, type TrafficShape } from './projections/traffic';
import { acquireDatabase, adminPool, checkpoint, dropSchemas, freshSchema, redactUrl } from './support/database';
import { envIntList, envNumber, log } from './support/env';
import { describeMachine, durabilityWarnings, machineLine } from './support/machine';
import { printReport } from './support/report';

const SERVICE_MAIN = path.resolve(__dirname, '..', 'apps', 'state-api', 'src', 'main.js');
const FLOOR_SERVER = path.resolve(__dirname, 'projections', 'floor-server.js');
/** The floors, in the order they are measured, and where each one's result goes in `Reads`. */
const FLOOR_SLOTS: Record<FloorKind, 'floor' | 'floorNode' | 'floorStatic'> = { fastify: 'floor', node: 'floorNode', static: 'floorStatic' };
/** The service's PROJECTION_BATCH_SIZE and PROJECTION_CATCH_UP_BATCH_SIZE defaults: the run the targets are judged on. */
const SERVICE_BATCH_SIZE = 1000;
const SERVICE_CATCH_UP_BATCH_SIZE = 5000;
const TTL_SECONDS = 3600;
const REDIS_ROUNDS = 2;

const shapeOf = (prefix: string, worlds: number, entities: number, players: number, seed: number): TrafficShape => ({
  worlds: Array.from({ length: worlds }, (_, i) => `${prefix}${i}`),
  entitiesPerWorld: Math.max(1, Math.round(entities / worlds)),
  playersPerWorld: Math.max(2, Math.round(players / worlds)),
  seed,
});

/** run.ts sets exit code 130 on Ctrl-C: stop between phases and clean up (the writer and the service stop by themselves). */
const stopIfInterrupted = (): void => {
  if (process.exitCode === 130) throw new Error('interrupted');
};

const failure = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Active entities among the documents the runner wrote last: ids the read test can ask for and get 200. */
const activeEntities = (recording: CatchUpRecording, limit: number): EntityRef[] => {
  const latest = new Map<string, { worldId: string; entityId: string; active: boolean }>();
  for (const put of recording.puts) {
    for (const doc of put) {
      if (doc.table !== 'entities') continue;
      latest.set(doc.streamId, { worldId: doc.worldId, entityId: doc.id, active: (doc.state as EntityState).status === 'active' });
    }
  }
  return [...latest.values()].filter((e) => e.active).slice(0, limit).map(({ worldId, entityId }) => ({ worldId, entityId }));
};

/**
 * `npm run bench -- projections`: issue #3. Projection throughput from zero
 * into PostgreSQL and Redis (and each sink alone against a plain write of
 * the same data), lag under a paced 5,000 appends/s, and GET one entity from
 * Redis through the service at 10,000 req/s against Redis itself.
 */
export const runProjectionsBench = async (): Promise<void> => {
  // The sinks' inputs are kept in memory for (b) and (c): a couple of million events is the sensible top.
  const events = envNumber('BENCH_PROJ_EVENTS', 100_000, 1000, 2_000_000);
  const batchSizes = envIntList('BENCH_PROJ_BATCH_SIZES', [200, 1000], 1, 100_000);
  const worlds = envNumber('BENCH_PROJ_WORLDS', 4, 1, 1000);
  const entities = envNumber('BENCH_PROJ_ENTITIES', 10_000, 1, 10_000_000);
  const players = envNumber('BENCH_PROJ_PLAYERS', 2_000, 2, 10_000_000);
  const lagRate = envNumber('BENCH_PROJ_LAG_RATE', TARGETS.lagWriteRate, 0, 100_000);
  const lagSeconds = envNumber('BENCH_PROJ_LAG_SECONDS', 10, 1, 600);
  const lagWarmup = envNumber('BENCH_PROJ_LAG_WARMUP_SECONDS', 2, 0, 60);
  const lagBatch = envNumber('BENCH_PROJ_LAG_BATCH_SIZE', SERVICE_BATCH_SIZE, 1, 100_000);
  const readRate = envNumber('BENCH_PROJ_READ_RATE', TARGETS.readRate, 0, 1_000_000);
  const readConnections = envNumber('BENCH_PROJ_READ_CONNECTIONS', 32, 1, 1024);
  const readSeconds = envNumber('BENCH_PROJ_READ_SECONDS', 10, 1, 600);
  // 10 s: a freshly started service answers its first ~10 s of reads at 1.2-1.3x the CPU per request of later (its code still warming up, presumably); the floors settle in 1-2 s.
  const readWarmup = envNumber('BENCH_PROJ_READ_WARMUP_SECONDS', 10, 0, 60);
  const readIds = envNumber('BENCH_PROJ_READ_IDS', 10_000, 1, 1_000_000);
  const readFloor = envNumber('BENCH_PROJ_READ_FLOOR', 1, 0, 1) === 1;
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const catchUpBatch = envNumber('BENCH_PROJ_CATCH_UP_BATCH_SIZE', SERVICE_CATCH_UP_BATCH_SIZE, 1, 100_000);
  const judgedBatch = batchSizes.includes(SERVICE_BATCH_SIZE) ? SERVICE_BATCH_SIZE : batchSizes.at(-1)!;
  // Each size as it is (no catch-up batches: the approach before them), then the judged size with
  // catch-up batches, as the service runs it, last: the lag and read phases use its read models and hot keys.
  const judgedRun = { batchSize: judgedBatch, catchUpBatchSize: Math.max(judgedBatch, catchUpBatch) };
  const lagCatchUpBatch = Math.max(lagBatch, catchUpBatch);
  const order = [
    ...batchSizes.map((b) => ({ batchSize: b, catchUpBatchSize: b })).filter((r) => r.batchSize !== judgedRun.batchSize || r.catchUpBatchSize !== judgedRun.catchUpBatchSize),
    judgedRun,
  ];

  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const keyPrefix = `lorestore-bench-proj-${runId}-`;
  const db = await acquireDatabase();
  const admin = adminPool(db.url);
  const schemas: string[] = [];
  const schema = (prefix: string) => {
    const name = freshSchema(prefix);
    schemas.push(name);
    return name;
  };
  const drop = async (...names: string[]) => {
    await dropSchemas(admin, names).catch((error: unknown) => log(`could not drop ${names.join(', ')}: ${failure(error)}`));
  };
  const startedAt = new Date();
  const cells: BatchCell[] = [];
  let machine;
  let redisVersion: string | null = null;
  let prefill: PrefillResult | undefined;
  let lag: Outcome<LagResult>;
  const reads: Reads = {
    service: { skipped: 'not reached' },
    redis: { skipped: 'not reached' },
    serviceAligned: { skipped: 'not reached' },
    redisAligned: { skipped: 'not reached' },
    floor: { skipped: 'not reached' },
    floorNode: { skipped: 'not reached' },
    floorStatic: { skipped: 'not reached' },
    redisBenchmark: [],
  };
  let loadAverageAtEnd: number[];
  const cleanup = { schemasLeft: [] as string[], redisKeysLeft: null as number | null };
  const prefillShape = shapeOf('bench-w', worlds, entities, players, 1);
  try {
    machine = await describeMachine(admin, db.source, redactUrl(db.url));
    log(machineLine(machine));
    for (const warning of durabilityWarnings(machine)) log(`WARNING: ${warning}`);
    redisVersion = await redisReachable(redisUrl);
    log(redisVersion ? `Redis ${redisVersion} at ${redactUrl(redisUrl)}, keys under ${keyPrefix}*` : `WARNING: no Redis at ${redactUrl(redisUrl)}: the runner uses the in-process hot state, Redis parts are skipped`);
    const redisAt = (suffix: string): RedisTarget | null => (redisVersion ? { url: redisUrl, prefix: `${keyPrefix}${suffix}:` } : null);

    // The log: N events of game traffic, analyzed.
    const eventsSchema = schema('bench_proj_events');
    const eventsPool = createPostgresPool({ url: db.url, schema: eventsSchema, max: 2, applicationName: 'bench-proj-prefill' });
    try {
      await PostgresEventStore.migrate(eventsPool, eventsSchema);
      log(`prefill: ${events} events over ${worlds} worlds, ~${entities} entities, ${players} players`);
      prefill = await prefillEventStore(eventsPool, eventsSchema, new GameTraffic(prefillShape), events);
      log(`  ${prefill.events} events (${prefill.megabytes} MB of JSON), ${prefill.streams} streams in ${prefill.ms} ms`);
    } finally {
      await eventsPool.end();
    }

    let last: { readModelSchema: string; redis: RedisTarget | null; refs: EntityRef[] } | null = null;
    for (const { batchSize, catchUpBatchSize } of order) {
      stopIfInterrupted();
      const tag = `b${batchSize}c${catchUpBatchSize}`;
      const label = batchLabel({ batchSize, catchUpBatchSize });
      const readModelSchema = schema(`bench_proj_rm_${tag}`);
      const redis = redisAt(tag);
      await checkpoint(admin);
      log(`(a) runner from zero, batch ${label}`);
      const { result: catchUp, recording } = await runCatchUp({
        url: db.url,
        eventsSchema,
        readModelSchema,
        redis,
        batchSize,
        catchUpBatchSize,
        expectedEvents: prefill.events,
        ttlSeconds: TTL_SECONDS,
      });
      const b = catchUp.breakdown;
      log(`  ${catchUp.eventsPerSecond} events/s (${catchUp.ms} ms, ${catchUp.batches} batches); feed ${b.feedReadMs}, load ${b.loadDocsMs}, plan ${b.planMs}, hot ${b.hotPutMs}, commit ${b.pgCommitMs}, other ${b.otherMs} ms`);

      let redisSinkResult = null;
      let redisPlainResult = null;
      if (redis) {
        // Alternated, best of each kept: a 2-3 s measurement on a shared 2-core machine is noisy.
        log(`(b) Redis sink alone, batch ${label}: ${recording.puts.length} puts, ${REDIS_ROUNDS} rounds`);
        for (let round = 0; round < REDIS_ROUNDS; round++) {
          const sinkPrefix = `${keyPrefix}${tag}-sink${round}:`;
          const plainPrefix = `${keyPrefix}${tag}-plain${round}:`;
          const sink = await redisSink(redisUrl, sinkPrefix, recording.puts, catchUp.events, TTL_SECONDS);
          const plain = await redisPlain(redisUrl, plainPrefix, recording.puts, catchUp.events, TTL_SECONDS);
          log(`  round ${round + 1}: guarded ${sink.eventsPerSecond} events/s, plain ${plain.eventsPerSecond} events/s`);
          if (!redisSinkResult || sink.eventsPerSecond > redisSinkResult.eventsPerSecond) redisSinkResult = sink;
          if (!redisPlainResult || plain.eventsPerSecond > redisPlainResult.eventsPerSecond) redisPlainResult = plain;
          await deleteKeys(redisUrl, sinkPrefix);
          await deleteKeys(redisUrl, plainPrefix);
        }
      }

      stopIfInterrupted();
      log(`(c) PostgreSQL sink alone, batch ${label}: ${recording.commits.length} commits`);
      const sinkSchema = schema(`bench_proj_sink_${tag}`);
      const plainSchema = schema(`bench_proj_plain_${tag}`);
      const postgresSinkResult = await postgresSink(db.url, admin, sinkSchema, recording.commits, catchUp.events);
      const postgresPlainResult = await postgresPlain(db.url, admin, readModelSchema, plainSchema, recording.commits, catchUp.events);
      log(`  guarded ${postgresSinkResult.eventsPerSecond} events/s, plain ${postgresPlainResult.eventsPerSecond} events/s`);
      await drop(sinkSchema, plainSchema);

      cells.push({ batchSize, catchUpBatchSize, catchUp, redisSink: redisSinkResult, redisPlain: redisPlainResult, postgresSink: postgresSinkResult, postgresPlain: postgresPlainResult });
      if (last) {
        // Only the last run's read models and keys are used further on.
        await drop(last.readModelSchema);
        if (last.redis) await deleteKeys(redisUrl, last.redis.prefix);
      }
      // The recording (every document and row of the run) is not kept: a big heap would slow the load generators below.
      last = { readModelSchema, redis, refs: activeEntities(recording, readIds) };
    }
    const final = last!;
    const refs = final.refs;

    // (2) Lag under a paced write load, on the read models the last catch-up left.
    stopIfInterrupted();
    if (lagRate > 0) {
      await checkpoint(admin);
      log(`lag: ${lagRate} appends/s for ${lagWarmup}s + ${lagSeconds}s, runner batch ${lagBatch}`);
      try {
        const result = await runLag({
          url: db.url,
          eventsSchema,
          readModelSchema: final.readModelSchema,
          redis: final.redis,
          rate: lagRate,
          warmupMs: lagWarmup * 1000,
          durationMs: lagSeconds * 1000,
          batchSize: lagBatch,
          catchUpBatchSize: lagCatchUpBatch,
          shape: shapeOf('bench-live', worlds, entities, players, 2),
          ttlSeconds: TTL_SECONDS,
        });
        lag = { result };
        log(`  ${result.writer.achievedRate} appends/s, lag p50 ${result.lag.p50Ms} ms, p99 ${result.lag.p99Ms} ms, max ${result.lag.maxMs} ms, errors ${result.writer.errors}`);
        for (const sample of result.writer.errorSamples) log(`  error: ${sample}`);
      } catch (error) {
        lag = { failed: failure(error) };
        log(`lag failed: ${lag.failed}`);
      }
    } else lag = { skipped: 'BENCH_PROJ_LAG_RATE=0' };

    // (3) GET one entity through the service, from Redis, against Redis alone.
    stopIfInterrupted();
    const load: ReadLoad = { rate: readRate, connections: readConnections, seconds: readSeconds, warmupSeconds: readWarmup };
    const skipReads = (skipped: string) => {
      reads.service = reads.redis = reads.serviceAligned = reads.redisAligned = reads.floor = reads.floorNode = reads.floorStatic = { skipped };
    };
    if (readRate === 0) {
      skipReads('BENCH_PROJ_READ_RATE=0');
    } else if (!final.redis) {
      skipReads('no Redis');
    } else if (refs.length === 0) {
      skipReads('no active entity was projected');
    } else {
      if (!existsSync(SERVICE_MAIN)) {
        reads.service = reads.serviceAligned = { skipped: `${path.relative(process.cwd(), SERVICE_MAIN)} does not exist: build first (npm run build)` };
      } else {
        log(`reads: the service over ${refs.length} entities hot in Redis`);
        try {
          const [staggered, aligned]: ReadResult[] = await measureService({
            script: SERVICE_MAIN,
            databaseUrl: db.url,
            schema: final.readModelSchema,
            redisUrl,
            prefix: final.redis.prefix,
            refs,
            load,
            pacings: ['staggered', 'aligned'],
            execArgv: process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [],
          });
          reads.service = { result: staggered! };
          reads.serviceAligned = { result: aligned! };
          for (const sample of [...staggered!.notOkSamples, ...aligned!.notOkSamples]) log(`  non-2xx: ${sample}`);
        } catch (error) {
          reads.service = reads.serviceAligned = { failed: failure(error) };
          log(`service reads failed: ${failure(error)}`);
        }
      }
      for (const [kind, slot] of Object.entries(FLOOR_SLOTS) as [FloorKind, (typeof FLOOR_SLOTS)[FloorKind]][]) {
        stopIfInterrupted();
        if (!readFloor) reads[slot] = { skipped: 'BENCH_PROJ_READ_FLOOR=0' };
        else if (!existsSync(FLOOR_SERVER)) reads[slot] = { skipped: `${path.relative(process.cwd(), FLOOR_SERVER)} does not exist: build first (npm run build)` };
        else {
          try {
            reads[slot] = { result: await measureFloor({ script: FLOOR_SERVER, kind, redisUrl, prefix: final.redis.prefix, refs, load, pacing: 'staggered' }) };
          } catch (error) {
            reads[slot] = { failed: failure(error) };
            log(`floor (${kind}) reads failed: ${failure(error)}`);
          }
        }
      }
      for (const pacing of ['staggered', 'aligned'] as const) {
        let outcome: Outcome<ReadResult>;
        try {
          const result = await measureRedisReads(redisUrl, final.redis.prefix, refs, load, pacing);
          outcome = { result };
          log(`  ${result.requestsPerSecond} HGETALL/s, p50 ${result.latency.p50Ms} ms, p99 ${result.latency.p99Ms} ms`);
        } catch (error) {
          outcome = { failed: failure(error) };
          log(`Redis reads (${pacing}) failed: ${outcome.failed}`);
        }
        if (pacing === 'staggered') reads.redis = outcome;
        else reads.redisAligned = outcome;
      }
      const key = `${final.redis.prefix}${hotKey('entities', refs[0]!.worldId, refs[0]!.entityId)}`;
      for (const pipeline of [1, 16]) {
        const result = await redisBenchmark(redisUrl, key, 50, pipeline);
        if (result) reads.redisBenchmark.push(result);
      }
      if (reads.redisBenchmark.length === 0) log('  redis-benchmark not on PATH (or it failed): its line is left out');
    }
  } finally {
    await dropSchemas(admin, schemas).catch((error: unknown) => log(`could not drop schemas ${schemas.join(', ')}: ${failure(error)}`));
    const { rows } = await admin
      .query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname = ANY ($1)', [schemas])
      .catch(() => ({ rows: [] as { nspname: string }[] }));
    cleanup.schemasLeft = rows.map((r) => r.nspname);
    if (redisVersion) {
      await deleteKeys(redisUrl, keyPrefix).catch((error: unknown) => log(`could not delete Redis keys ${keyPrefix}*: ${failure(error)}`));
      cleanup.redisKeysLeft = await countKeys(redisUrl, keyPrefix).catch(() => null);
    }
    loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
    log(`cleanup: ${schemas.length} schemas dropped (${cleanup.schemasLeft.length} left), Redis keys under ${keyPrefix}* left: ${cleanup.redisKeysLeft ?? 'n/a'}`);
    await admin.end();
    await db.release();
  }

  const title =
    `projections: the runner from zero over ${prefill?.events ?? events} events ` +
    `(${worlds} worlds, ~${entities} entities, ${players} players, ${prefill?.streams ?? '?'} streams), and each sink alone`;
  const summary = summarize(cells, judgedRun, lag, reads, title);
  const report = {
    bench: 'projections',
    startedAt: startedAt.toISOString(),
    machine,
    redis: redisVersion ? { version: redisVersion, url: redactUrl(redisUrl) } : null,
    settings: {
      events,
      batchSizes,
      judgedBatchSize: judgedBatch,
      judgedCatchUpBatchSize: judgedRun.catchUpBatchSize,
      traffic: { worlds, entities, players, mix: 'see bench/projections/traffic.ts' },
      lag: { rate: lagRate, seconds: lagSeconds, warmupSeconds: lagWarmup, runnerBatchSize: lagBatch, runnerCatchUpBatchSize: lagCatchUpBatch, groupCommit: { maxConcurrentBatches: 2, maxBatchSize: 256 } },
      reads: { rate: readRate, connections: readConnections, seconds: readSeconds, warmupSeconds: readWarmup, ids: readIds, floor: readFloor },
    },
    prefill,
    catchUp: cells,
    lag,
    reads,
    targets: summary.verdicts,
    loadAverageAtEnd,
    cleanup,
  };
  const notes = [
    ...(machine ? [machineLine(machine), ...durabilityWarnings(machine).map((w) => `WARNING: ${w}`)] : []),
    `load average at the end ${loadAverageAtEnd.join(' ')} (the load generators, the service, PostgreSQL and Redis share the cores)`,
    `cleanup: schemas left ${cleanup.schemasLeft.length}, Redis keys left ${cleanup.redisKeysLeft ?? 'n/a'}`,
  ];
  printReport(report, summary.tables, notes);
  if ('failed' in lag || 'failed' in reads.service || 'failed' in reads.redis || 'failed' in reads.serviceAligned || 'failed' in reads.redisAligned || 'failed' in reads.floor || 'failed' in reads.floorNode || 'failed' in reads.floorStatic) process.exitCode = 1;
};
