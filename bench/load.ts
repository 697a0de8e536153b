import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { ServerCounters, STATS_SETTLE_MS, costPerRequest, type CounterDelta, type CounterSnapshot } from './load/counters';
import {
  API_KEY,
  BASELINE_MAIN,
  PROJECTOR_MAIN,
  SERVICE_MAIN,
  checkReads,
  createBaselineTables,
  maxLag,
  projectionStatuses,
  seedWorld,
  startBaseline,
  startLorestore,
  waitCaughtUp,
  type Deployment,
} from './load/deployment';
import { driveMix, type DriveResult } from './load/drive';
import { describeMix, MIX, requestSequence, seededWorld, type World } from './load/mix';
import { judge, searchMaxRate, type Criteria, type Step } from './load/search';
import { metricsDelta, scrapeMetrics, type MetricsDelta, type MetricsSample } from './load/service-metrics';
import { kindsTable, mainTable, maxRateLabel, ratios, stepsTable, type ProfileRun, type TargetOutcome } from './load/summary';
import { deleteKeys, redisReachable } from './projections/redis';
import { acquireDatabase, adminPool, checkpoint, dropSchemas, freshSchema, redactUrl } from './support/database';
import { envNumber, log } from './support/env';
import { describeMachine, durabilityWarnings, machineLine } from './support/machine';
import { printReport } from './support/report';

const WORLD = 'bench-world';
const SEED = 20261126;
/** 10,000 players × 10 requests a minute each. */
const PROFILE_RATE = Math.round((10_000 * 10) / 60);
const CATCH_UP_TIMEOUT_MS = 180_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** run.ts sets exit code 130 on Ctrl-C: stop between phases and clean up. */
const stopIfInterrupted = (): void => {
  if (process.exitCode === 130) throw new Error('interrupted');
};

const failure = (error: unknown): string => (error instanceof Error ? error.message : String(error));

type Settings = {
  rate: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
  stagger: number;
  entities: number;
  players: number;
  seedConcurrency: number;
  idleSeconds: number;
  stepSeconds: number;
  stepWarmupSeconds: number;
  stepFactor: number;
  bisections: number;
  maxRate: number;
  criteria: Criteria;
};

type Target = {
  name: string;
  start: () => Promise<Deployment>;
  /** After start: the world the mix reads (lorestore: through the API, then the projections caught up). */
  prepare?: (d: Deployment) => Promise<{ commands: number; seconds: number; catchUpMs: number }>;
  /** After a run: wait until the deployment is quiet again (lorestore: projections caught up). */
  settle?: (d: Deployment) => Promise<{ lagAfterEvents: number; catchUpMs: number }>;
  /** After it stopped: its schema and Redis keys go at once, so its tables' autovacuum does not run into the next target. */
  cleanup: () => Promise<void>;
};

/** lorestore_hot_state_reads_total by result: a timeout (REDIS_READ_TIMEOUT_MS) or an error answers from PostgreSQL instead. */
const hotReads = (m: MetricsDelta): string =>
  Object.entries(m.counters)
    .map(([key, n]) => [/^lorestore_hot_state_reads_total\{result="([^"]+)"/.exec(key)?.[1], n] as const)
    .filter(([result]) => result !== undefined)
    .map(([result, n]) => `${result} ${n}`)
    .join(', ') || 'none';

const driveLine = (r: DriveResult): string =>
  `${r.achievedRate}/s answered of ${r.offeredRate}/s, p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms, max ${r.latency.maxMs} ms, ` +
  `non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}`;

/** Starts a target, measures the profile rate for the long run, then searches its highest sustained rate. */
const measureTarget = async (target: Target, s: Settings, world: World, counters: ServerCounters, admin: Pool): Promise<TargetOutcome> => {
  let deployment: Deployment | undefined;
  try {
    log(`${target.name}: starting`);
    deployment = await target.start();
    const d = deployment;
    const seed = target.prepare ? await target.prepare(d) : undefined;
    // The seed's dirty pages are flushed before measuring, not during.
    await checkpoint(admin);
    let phase = 0;
    const drive = (rate: number, warmupSeconds: number, seconds: number, onWindowStart?: () => void) =>
      driveMix({
        url: d.base,
        apiKey: API_KEY,
        rate,
        connections: s.connections,
        warmupSeconds,
        seconds,
        stagger: s.stagger,
        next: requestSequence(world, SEED + phase++),
        onWindowStart,
      });

    let idle: CounterDelta | null = null;
    if (s.idleSeconds > 0) {
      await sleep(STATS_SETTLE_MS);
      const before = await counters.snapshot();
      await sleep(s.idleSeconds * 1000);
      idle = counters.delta(before, await counters.snapshot());
      log(`  idle ${idle.seconds}s: ${idle.dbTransactions} db transactions, ${idle.redisCommands} redis commands`);
    }

    stopIfInterrupted();
    log(`  profile: ${s.rate}/s over ${s.connections} connections, ${s.warmupSeconds}s warm-up then ${s.seconds}s measured`);
    let windowStart: Promise<[CounterSnapshot, MetricsSample | null]> | undefined;
    const result = await drive(s.rate, s.warmupSeconds, s.seconds, () => {
      windowStart = Promise.all([counters.snapshot(), scrapeMetrics(d.base)]);
    });
    if (!windowStart) throw new Error('the measured window never opened');
    const [before, metricsBefore] = await windowStart;
    const metricsAfter = await scrapeMetrics(d.base);
    const serviceMetrics = metricsBefore && metricsAfter ? metricsDelta(metricsBefore, metricsAfter) : undefined;
    log(`  profile: ${driveLine(result)}`);
    for (const sample of result.samples) log(`    ${sample}`);
    let projections: ProfileRun['projections'];
    if (target.settle) {
      try {
        projections = await target.settle(d);
        log(`  projections: ${projections.lagAfterEvents} events behind at the end, caught up in ${projections.catchUpMs} ms`);
      } catch (error) {
        projections = { lagAfterEvents: -1, catchUpMs: null, error: failure(error) };
        log(`  projections: ${projections.error}`);
      }
    }
    await sleep(STATS_SETTLE_MS);
    const delta = counters.delta(before, await counters.snapshot());
    const cost = costPerRequest(delta, result.responsesFromWindowStart, idle);
    log(`  cost: ${cost.dbTransactionsPerRequest} db transactions and ${cost.redisCommandsPerRequest} redis commands per request`);
    const reasons = judge(result, s.criteria);
    const profile: ProfileRun = { result, pass: reasons.length === 0, reasons, cost, delta, idle, projections, serviceMetrics };

    let search = null;
    if (s.maxRate > 0) {
      log(`  max sustained rate: steps of ${s.stepWarmupSeconds}s + ${s.stepSeconds}s`);
      search = await searchMaxRate({
        start: { rate: s.rate, pass: profile.pass },
        factor: s.stepFactor,
        bisections: s.bisections,
        cap: s.maxRate,
        floor: 50,
        step: async (rate): Promise<Step> => {
          stopIfInterrupted();
          const stepResult = await drive(rate, s.stepWarmupSeconds, s.stepSeconds);
          log(`    ${driveLine(stepResult)}`);
          let note: string | undefined;
          if (target.settle) {
            try {
              const settled = await target.settle(d);
              note = `projections ${settled.lagAfterEvents} events behind, caught up in ${settled.catchUpMs} ms`;
            } catch (error) {
              note = failure(error);
            }
          }
          await sleep(2000);
          const stepReasons = judge(stepResult, s.criteria);
          return { rate, result: stepResult, pass: stepReasons.length === 0, reasons: stepReasons, note };
        },
      });
      log(`  ${target.name}: max sustained ${maxRateLabel(search)} req/s`);
    }
    return { name: target.name, profile, search, seed };
  } catch (error) {
    log(`${target.name} failed: ${failure(error)}`);
    return { name: target.name, failed: failure(error) };
  } finally {
    await deployment?.stop();
    await target.cleanup().catch((error: unknown) => log(`${target.name}: cleanup failed: ${failure(error)}`));
  }
};

/**
 * `npm run bench -- load`: the 10,000-CCU profile (1,667 player requests/s, a
 * mix of commands and reads) for 60 s against the production shape (built
 * state-api + standalone projector, Redis hot state), then the highest rate
 * held at p99 <= 150 ms; the same against a bare Fastify process that does
 * literally the profile's per-request cost (2 queries, 3 Redis operations).
 */
export const runLoadBench = async (): Promise<void> => {
  const s: Settings = {
    rate: envNumber('BENCH_LOAD_RATE', PROFILE_RATE, 1, 100_000),
    seconds: envNumber('BENCH_LOAD_SECONDS', 60, 1, 3600),
    warmupSeconds: envNumber('BENCH_LOAD_WARMUP_SECONDS', 10, 0, 600),
    connections: envNumber('BENCH_LOAD_CONNECTIONS', 256, 1, 4096),
    stagger: envNumber('BENCH_LOAD_STAGGER', 16, 1, 4096),
    entities: envNumber('BENCH_LOAD_ENTITIES', 2000, 1, 1_000_000),
    players: envNumber('BENCH_LOAD_PLAYERS', 10_000, 1, 1_000_000),
    seedConcurrency: envNumber('BENCH_LOAD_SEED_CONCURRENCY', 32, 1, 1024),
    idleSeconds: envNumber('BENCH_LOAD_IDLE_SECONDS', 5, 0, 600),
    stepSeconds: envNumber('BENCH_LOAD_STEP_SECONDS', 10, 1, 600),
    stepWarmupSeconds: envNumber('BENCH_LOAD_STEP_WARMUP_SECONDS', 3, 0, 600),
    stepFactor: envNumber('BENCH_LOAD_STEP_FACTOR', 1.5, 1.05, 10),
    bisections: envNumber('BENCH_LOAD_BISECT', 2, 0, 10),
    maxRate: envNumber('BENCH_LOAD_MAX_RATE', 20_000, 0, 1_000_000),
    criteria: { p99Ms: envNumber('BENCH_LOAD_P99_MS', 150, 1, 60_000), maxBadFraction: 0.001, minAchievedFraction: 0.95 },
  };
  const only = (process.env.BENCH_LOAD_TARGETS || 'baseline,lorestore').split(',').map((t) => t.trim());
  if (only.some((t) => t !== 'baseline' && t !== 'lorestore')) throw new Error(`BENCH_LOAD_TARGETS must list baseline and/or lorestore, got "${only.join(',')}"`);
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const redisVersion = await redisReachable(redisUrl);
  if (!redisVersion) throw new Error(`no Redis answers at ${redactUrl(redisUrl)} (REDIS_URL): the load bench needs one`);
  for (const script of [SERVICE_MAIN, PROJECTOR_MAIN, BASELINE_MAIN]) {
    if (!existsSync(script)) throw new Error(`${path.relative(process.cwd(), script)} does not exist: build first (npm run build)`);
  }

  const world = seededWorld(WORLD, s.entities, s.players, SEED);
  const prefix = `lorestore-bench-load-${randomBytes(4).toString('hex')}:`;
  const db = await acquireDatabase();
  const admin = adminPool(db.url);
  const counters = new ServerCounters(admin, redisUrl);
  const schemas: string[] = [];
  const startedAt = new Date();
  const outcomes: TargetOutcome[] = [];
  let machine;
  /** A target's schema and Redis keys, under names no other run uses. */
  const space = (schemaPrefix: string, keyPrefix: string) => {
    const schema = freshSchema(schemaPrefix);
    const keys = `${prefix}${keyPrefix}`;
    return {
      schema,
      keys,
      claim: () => schemas.push(schema),
      release: async () => {
        await dropSchemas(admin, [schema]);
        if (schemas.includes(schema)) schemas.splice(schemas.indexOf(schema), 1);
        log(`dropped ${schema}, deleted ${await deleteKeys(redisUrl, keys)} redis keys under ${keys}`);
      },
    };
  };
  try {
    await counters.connect();
    machine = await describeMachine(admin, db.source, redactUrl(db.url));
    log(machineLine(machine));
    for (const warning of durabilityWarnings(machine)) log(`WARNING: ${warning}`);
    log(`mix per player request: ${describeMix()}`);

    const targets: Target[] = [];
    if (only.includes('baseline')) {
      const own = space('bench_load_baseline', 'baseline:');
      targets.push({
        name: 'baseline',
        start: async () => {
          own.claim();
          await createBaselineTables(admin, own.schema, s.entities);
          return startBaseline({ databaseUrl: db.url, schema: own.schema, redisUrl, prefix: own.keys, rows: s.entities });
        },
        cleanup: own.release,
      });
    }
    if (only.includes('lorestore')) {
      const own = space('bench_load_api', 'api:');
      targets.push({
        name: 'lorestore',
        start: async () => {
          own.claim();
          return startLorestore({ databaseUrl: db.url, schema: own.schema, redisUrl, prefix: own.keys });
        },
        prepare: async (d) => {
          log(`  seeding ${s.entities} entities and ${s.players} players through the API (${s.seedConcurrency} in flight)`);
          const seeded = await seedWorld(d.base, world, s.seedConcurrency);
          const caught = await waitCaughtUp(d.base, CATCH_UP_TIMEOUT_MS);
          log(`  projections caught up ${caught.ms} ms after the last seed command`);
          const sample = (ids: string[], n: number) => ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / n)) === 0).slice(0, n);
          await checkReads(d.base, [
            ...sample(world.entityIds, 25).map((id) => `/v1/worlds/${WORLD}/entities/${id}`),
            ...sample(world.playerIds, 25).map((id) => `/v1/worlds/${WORLD}/players/${id}`),
          ]);
          return { ...seeded, catchUpMs: caught.ms };
        },
        cleanup: own.release,
        settle: async (d) => {
          const lagAfterEvents = maxLag(await projectionStatuses(d.base));
          const caught = await waitCaughtUp(d.base, CATCH_UP_TIMEOUT_MS);
          return { lagAfterEvents, catchUpMs: caught.ms };
        },
      });
    }
    for (const target of targets) {
      stopIfInterrupted();
      outcomes.push(await measureTarget(target, s, world, counters, admin));
    }
  } finally {
    counters.close();
    await deleteKeys(redisUrl, prefix).then(
      (n) => log(`deleted ${n} redis keys under ${prefix}`),
      (error: unknown) => log(`could not delete redis keys under ${prefix}: ${failure(error)}`),
    );
    await dropSchemas(admin, schemas).catch((error: unknown) => log(`could not drop schemas ${schemas.join(', ')}: ${failure(error)}`));
    await admin.end();
    await db.release();
  }

  const baseline = outcomes.find((o) => o.name === 'baseline');
  const lorestore = outcomes.find((o) => o.name === 'lorestore');
  const r = ratios(baseline, lorestore);
  const verdict =
    lorestore && !('failed' in lorestore)
      ? { pass: lorestore.profile.pass, reasons: lorestore.profile.reasons, p99Ms: lorestore.profile.result.latency.p99Ms }
      : null;
  const title =
    `load: the 10,000-CCU profile, ${s.rate.toLocaleString('en-US')} req/s for ${s.seconds}s (${s.warmupSeconds}s warm-up), ` +
    `${s.connections} connections, ${s.entities.toLocaleString('en-US')} entities, ${s.players.toLocaleString('en-US')} players`;
  const tables = [mainTable(title, outcomes, s.criteria.p99Ms), kindsTable(outcomes, s.rate), stepsTable(outcomes, s.stepSeconds, s.criteria.p99Ms)];

  const notes: string[] = [];
  if (machine) notes.push(machineLine(machine), ...durabilityWarnings(machine).map((w) => `WARNING: ${w}`));
  notes.push(`mix per player request: ${describeMix()}; fresh commandId per command, kinds and ids from a seeded shuffle (same sequence for both targets)`);
  if (verdict) {
    notes.push(
      `target (p99 <= ${s.criteria.p99Ms} ms at ${s.rate.toLocaleString('en-US')} req/s for ${s.seconds}s, non-2xx+errors <= 0.1%): ` +
        `${verdict.pass ? 'PASS' : 'FAIL'} (lorestore p99 ${verdict.p99Ms} ms${verdict.reasons.length ? `; ${verdict.reasons.join('; ')}` : ''})`,
    );
  }
  notes.push(
    `ratios: lorestore max sustained / baseline max sustained = ${r.maxRate ?? 'n/a'}${'maxRateNote' in r && r.maxRateNote ? ` (${r.maxRateNote})` : ''}; ` +
      `lorestore p99 / baseline p99 at ${s.rate.toLocaleString('en-US')} req/s = ${r.p99AtProfile ?? 'n/a'}`,
  );
  for (const o of outcomes) {
    if ('failed' in o) {
      notes.push(`${o.name} failed: ${o.failed}`);
      continue;
    }
    const c = o.profile.cost;
    const top = Object.entries(c.redisByCommandPerRequest).slice(0, 6).map(([cmd, n]) => `${cmd} ${n}`).join(', ');
    const idle = o.profile.idle;
    notes.push(
      `${o.name} cost at the profile rate (server-wide counters from the window's start to a few seconds after its end: ` +
        `the projector, health checks and this bench's admin polling included; redis counts commands run inside Lua scripts too): ` +
        `${c.dbTransactionsPerRequest} db transactions/request (${c.dbTransactionsPerRequestLessIdle} less the idle rate), ` +
        `${c.redisCommandsPerRequest} redis commands/request (${c.redisCommandsPerRequestLessIdle} less idle; ${top || 'none'})` +
        (idle ? `; idle: ${Math.round(idle.dbTransactions / idle.seconds)} tx/s, ${Math.round(idle.redisCommands / idle.seconds)} redis cmds/s` : ''),
    );
    const timeline = o.profile.result.timeline.filter((t) => t.second >= 0 && t.second < s.seconds);
    if (timeline.length > 0) {
      const worst = timeline.reduce((a, b) => (b.p99Ms > a.p99Ms ? b : a));
      const counts = timeline.map((t) => t.responses);
      notes.push(
        `${o.name} per second of the window: ${Math.min(...counts)}–${Math.max(...counts)} responses, p99 ${Math.min(...timeline.map((t) => t.p99Ms))}–${worst.p99Ms} ms (worst: second ${worst.second}); ` +
          `before the window (${s.warmupSeconds}s warm-up): ${o.profile.result.beforeWindow.responses} responses, max ${o.profile.result.beforeWindow.maxMs} ms, ` +
          `${o.profile.result.beforeWindow.non2xx + o.profile.result.beforeWindow.errors + o.profile.result.beforeWindow.timeouts} non-2xx/errors`,
      );
    }
    const m = o.profile.serviceMetrics;
    if (m) {
      notes.push(
        `${o.name} API process over the window (its /metrics): event-loop delay p99 ${m.eventLoopDelayMs.p99} ms, max ${m.eventLoopDelayMs.max} ms; ` +
          `GC ${Object.entries(m.gcMs).map(([k, v]) => `${k} ${v} ms`).join(', ')}; mean wait for a connection ${m.meanPoolWaitMs} ms; ` +
          `mean group-commit batch ${m.meanAppendBatch} commands; hot-state reads ${hotReads(m)}`,
      );
    }
    notes.push(
      `${o.name}: the load generator's own event-loop delay in the window: p99 ${o.profile.result.generatorEventLoopDelayMs.p99} ms, max ${o.profile.result.generatorEventLoopDelayMs.max} ms`,
    );
    if (o.profile.projections) {
      const p = o.profile.projections;
      notes.push(`${o.name} projections after the profile run: ${p.error ?? `${p.lagAfterEvents} events behind, caught up in ${p.catchUpMs} ms`}`);
    }
    if (o.seed) notes.push(`${o.name} seeded with ${o.seed.commands} commands in ${o.seed.seconds}s; projections caught up ${o.seed.catchUpMs} ms later`);
    for (const sample of o.profile.result.samples) notes.push(`${o.name} non-2xx/error sample: ${sample}`);
    for (const step of o.search?.steps ?? []) if (step.note) notes.push(`${o.name} at ${step.rate}/s: ${step.note}`);
  }
  notes.push(
    'caveats: one 2-core box runs the load generator, the API, the projector, PostgreSQL and Redis together; ' +
      `autocannon paces by a quota per connection per second (bursts), spread here over ${s.stagger} staggered instances of ${s.connections}/${s.stagger} connections; ` +
      'latency is per response (request written to last byte), every status.',
  );

  const report = {
    bench: 'load',
    startedAt: startedAt.toISOString(),
    machine,
    redis: { version: redisVersion, url: redactUrl(redisUrl) },
    settings: { ...s, mix: MIX, world: WORLD, seed: SEED },
    outcomes,
    ratios: r,
    target: verdict,
  };
  printReport(report, tables, notes);
  if (outcomes.some((o) => 'failed' in o)) process.exitCode = 1;
};
