import { READ_MODELS_JOB } from '@lorestore/replay';
import os from 'node:os';
import { acquireDatabase, adminPool, checkpoint, dropSchemas, freshSchema, redactUrl } from './support/database';
import { envIntList, envNumber, log } from './support/env';
import { locatePostgres } from './replay/cpu';
import { describeMachine, durabilityWarnings, machineLine, type Machine } from './support/machine';
import { printReport } from './support/report';
import type { TrafficShape } from './projections/traffic';
import { runFold, type FoldResult } from './replay/fold';
import { perEventUpsert, quadraticFold } from './replay/naive-rebuild';
import { RebuildBench, type FeedRun, type ProjectionName, type RebuildRun, type WorkerRound } from './replay/rebuild';
import { runStateAt, type StateAtResult } from './replay/state-at';
import { summarize, TARGETS, type Outcome, type RebuildResult } from './replay/summary';

const PARTS = ['fold', 'state-at', 'rebuild'] as const;
type Part = (typeof PARTS)[number];
const PROJECTIONS: ProjectionName[] = ['entities', 'world_state', 'narrative_state', 'player_state', 'player_history'];

const shapeOf = (prefix: string, seed: number): TrafficShape => ({
  worlds: Array.from({ length: 4 }, (_, i) => `${prefix}${i}`),
  entitiesPerWorld: 2500,
  playersPerWorld: 500,
  seed,
});

const failure = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** run.ts sets exit code 130 on Ctrl-C: stop between phases and clean up. */
const stopIfInterrupted = (): void => {
  if (process.exitCode === 130) throw new Error('interrupted');
};

const partsFromEnv = (): Part[] => {
  const raw = process.env.BENCH_REPLAY_PARTS;
  if (!raw) return [...PARTS];
  const parts = raw.split(',').map((p) => p.trim());
  const unknown = parts.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (unknown.length > 0 || parts.length === 0) throw new Error(`BENCH_REPLAY_PARTS must be a comma-separated subset of ${PARTS.join(',')}, got "${raw}"`);
  return parts as Part[];
};

const projectionsFromEnv = (): ProjectionName[] => {
  const raw = process.env.BENCH_REPLAY_PROJECTIONS;
  if (!raw) return PROJECTIONS;
  const names = raw.split(',').map((p) => p.trim());
  if (names.length === 0 || names.some((n) => !(PROJECTIONS as string[]).includes(n))) throw new Error(`BENCH_REPLAY_PROJECTIONS must be a subset of ${PROJECTIONS.join(',')}, got "${raw}"`);
  return names as ProjectionName[];
};

/**
 * `npm run bench -- replay`: (1) the fold rate of the deciders in memory,
 * (2) state-at on a 100,000-event stream with snapshots, (3) the rebuild of
 * the PostgreSQL read models from a prefilled log by the RebuildWorker and by
 * one runner over every projection — each beside a naive baseline in the same run.
 */
export const runReplayBench = async (): Promise<void> => {
  const parts = partsFromEnv();
  const foldEvents = envNumber('BENCH_REPLAY_FOLD_EVENTS', 200_000, 1000, 5_000_000);
  const foldNaiveEvents = envNumber('BENCH_REPLAY_FOLD_NAIVE_EVENTS', 20_000, 100, 200_000);
  const foldReps = envNumber('BENCH_REPLAY_FOLD_REPS', 5, 1, 100);
  const streamEvents = envNumber('BENCH_REPLAY_STREAM_EVENTS', 100_000, 1000, 2_000_000);
  const snapshotEvery = envNumber('BENCH_REPLAY_SNAPSHOT_EVERY', 100, 10, 1_000_000);
  const stateAtCalls = envNumber('BENCH_REPLAY_STATE_AT_CALLS', 2000, 10, 1_000_000);
  const stateAtWarmup = envNumber('BENCH_REPLAY_STATE_AT_WARMUP', 200, 0, 100_000);
  const naiveCalls = envNumber('BENCH_REPLAY_NAIVE_CALLS', 20, 1, 10_000);
  const rebuildEvents = envNumber('BENCH_REPLAY_REBUILD_EVENTS', 1_000_000, 1000, 5_000_000);
  const batchSizes = envIntList('BENCH_REPLAY_BATCH_SIZES', [1000, 5000], 1, 100_000);
  const projections = projectionsFromEnv();
  const runWorker = envNumber('BENCH_REPLAY_WORKER', 1, 0, 1) === 1;
  const runAllPass = envNumber('BENCH_REPLAY_RUNNER', 1, 0, 1) === 1;
  // The one-pass job (read_models): every read model from one read of the log.
  const runOnePass = envNumber('BENCH_REPLAY_ONE_PASS', 1, 0, 1) === 1;
  const feedAlone = envNumber('BENCH_REPLAY_FEED', 1, 0, 1) === 1;
  const upsertEvents = envNumber('BENCH_REPLAY_UPSERT_EVENTS', 50_000, 100, 5_000_000);
  const quadraticEvents = envNumber('BENCH_REPLAY_QUADRATIC_EVENTS', 20_000, 0, 200_000);
  const progressIntervalMs = envNumber('BENCH_REPLAY_PROGRESS_MS', 100, 10, 10_000);
  // 1: create the other projections' empty __next tables before each job (see RebuildBench.worker); 0: the worker as it is.
  const otherShadows = envNumber('BENCH_REPLAY_OTHER_SHADOWS', 0, 0, 1) === 1;
  // The worker's bulk phase (page read, events per commit): its own defaults unless set.
  const bulkPage = envNumber('BENCH_REPLAY_BULK_PAGE', 0, 0, 1_000_000);
  const bulkFlush = envNumber('BENCH_REPLAY_BULK_FLUSH', 0, 0, 100_000_000);
  const bulk = bulkPage || bulkFlush ? { ...(bulkPage ? { pageSize: bulkPage } : {}), ...(bulkFlush ? { flushEvents: bulkFlush } : {}) } : null;

  const db = await acquireDatabase();
  const admin = adminPool(db.url);
  const schemas: string[] = [];
  const schema = (prefix: string) => {
    const name = freshSchema(prefix);
    schemas.push(name);
    return name;
  };
  const startedAt = new Date();
  let machine: Machine | undefined;
  let fold: Outcome<FoldResult> = { skipped: 'not in BENCH_REPLAY_PARTS' };
  let stateAt: Outcome<StateAtResult> = { skipped: 'not in BENCH_REPLAY_PARTS' };
  let rebuild: Outcome<RebuildResult> = { skipped: 'not in BENCH_REPLAY_PARTS' };
  const cleanup = { schemasLeft: [] as string[] };
  let loadAverageAtEnd: number[];
  try {
    machine = await describeMachine(admin, db.source, redactUrl(db.url));
    const postmaster = await locatePostgres(admin);
    log(postmaster ? `PostgreSQL CPU from /proc: postmaster ${postmaster} and its children` : 'PostgreSQL is not on this machine (or not visible): its CPU is not reported');
    log(machineLine(machine));
    for (const warning of durabilityWarnings(machine)) log(`WARNING: ${warning}`);

    if (parts.includes('fold')) {
      stopIfInterrupted();
      log(`(1) fold in memory: ${foldEvents} events, baseline on the first ${foldNaiveEvents}, ${foldReps} repetitions`);
      try {
        const result = runFold({ shape: shapeOf('fold-w', 3), events: foldEvents, naiveEvents: foldNaiveEvents, repetitions: foldReps });
        fold = { result };
        log(`  lorestore ${result.lorestore.eventsPerSecond} events/s, baseline ${result.baseline.eventsPerSecond} events/s (${result.ratio}x), states match: ${result.statesMatch}`);
      } catch (error) {
        fold = { failed: failure(error) };
        log(`(1) failed: ${fold.failed}`);
      }
    }

    if (parts.includes('state-at')) {
      stopIfInterrupted();
      log(`(2) state-at: one stream of ${streamEvents} events, snapshots every ${snapshotEvery}, ${stateAtCalls} calls, baseline ${naiveCalls} calls`);
      const stateAtSchema = schema('bench_replay_state_at');
      try {
        await checkpoint(admin);
        const result = await runStateAt({
          url: db.url,
          schema: stateAtSchema,
          events: streamEvents,
          snapshotEvery,
          calls: stateAtCalls,
          warmupCalls: stateAtWarmup,
          baselineCalls: naiveCalls,
          noSnapshotCalls: 3,
        });
        stateAt = { result };
        log(`  p50 ${result.lorestore.latency.p50Ms} ms, p99 ${result.lorestore.latency.p99Ms} ms; baseline p50 ${result.baseline.latency.p50Ms}, p99 ${result.baseline.latency.p99Ms} ms; checks ${result.check.compared - result.check.mismatches}/${result.check.compared}`);
      } catch (error) {
        stateAt = { failed: failure(error) };
        log(`(2) failed: ${stateAt.failed}`);
      } finally {
        await dropSchemas(admin, [stateAtSchema]).catch((error: unknown) => log(`could not drop ${stateAtSchema}: ${failure(error)}`));
      }
    }

    if (parts.includes('rebuild')) {
      stopIfInterrupted();
      const rebuildSchema = schema('bench_replay_rebuild');
      const naiveSchema = schema('bench_replay_naive');
      let bench: RebuildBench | null = null;
      try {
        log(`(3) rebuild: prefill ${rebuildEvents} events (4 worlds, ~10,000 entities, 2,000 players)`);
        bench = await RebuildBench.prepare({ url: db.url, schema: rebuildSchema, shape: shapeOf('bench-w', 1), events: rebuildEvents });
        const setup = bench.setup;
        log(`  ${setup.prefill.events} events (${setup.prefill.megabytes} MB of JSON), ${setup.prefill.streams} streams in ${setup.prefill.ms} ms`);

        stopIfInterrupted();
        await checkpoint(admin);
        log(`  baseline: per-event upsert over the first ${Math.min(upsertEvents, setup.prefill.events)} events`);
        const upsert = await perEventUpsert(db.url, rebuildSchema, naiveSchema, Math.min(upsertEvents, setup.prefill.events), setup.prefill.events);
        log(`    ${upsert.eventsPerSecond} events/s (${upsert.statements} statements, ${upsert.ms} ms)`);
        await dropSchemas(admin, [naiveSchema]);
        let quadratic = null;
        if (quadraticEvents > 0) {
          quadratic = await quadraticFold(db.url, rebuildSchema, Math.min(quadraticEvents, setup.prefill.events), setup.prefill.events, setup.prefill.streams);
          log(`  baseline: read all + filter per stream + fold, first ${quadratic.events} events: ${quadratic.eventsPerSecond} events/s; the whole log extrapolated ${quadratic.extrapolatedMsForLog} ms`);
        }

        const runner: RebuildRun[] = [];
        const worker: WorkerRound[] = [];
        const feed: FeedRun[] = [];
        for (const batchSize of batchSizes) {
          if (feedAlone) {
            stopIfInterrupted();
            for (const parse of [true, false]) {
              const f = await bench.feedAlone(batchSize, parse);
              feed.push(f);
              log(`  feed alone, ${f.label}: ${f.eventsPerSecond} events/s (${f.ms} ms)`);
            }
          }
          if (runWorker) {
            stopIfInterrupted();
            await checkpoint(admin);
            log(`  RebuildWorker, batch ${batchSize}, jobs ${projections.join(', ')} (progress every ${progressIntervalMs} ms)`);
            const round = await bench.worker(batchSize, projections, progressIntervalMs, otherShadows, bulk);
            worker.push(round);
            log(`    all jobs: ${round.eventsPerSecond} events/s of the log (${round.ms} ms)`);
          }
          if (runOnePass) {
            stopIfInterrupted();
            await checkpoint(admin);
            log(`  RebuildWorker, batch ${batchSize}, one job: ${READ_MODELS_JOB} (all five read models in one pass)`);
            const round = await bench.worker(batchSize, [READ_MODELS_JOB], progressIntervalMs, false, bulk);
            worker.push(round);
            log(`    one pass: ${round.eventsPerSecond} events/s of the log (${round.ms} ms)`);
          }
          if (runAllPass) {
            stopIfInterrupted();
            await checkpoint(admin);
            log(`  one ProjectionRunner over ALL_PROJECTIONS into __next, batch ${batchSize}`);
            const run = await bench.runner(batchSize);
            runner.push(run);
            const s = run.stages;
            log(`    ${run.eventsPerSecond} events/s (${run.ms} ms); feed ${s.feedReadMs}, load ${s.loadDocsMs}, plan ${s.planMs}, hot ${s.hotPutMs}, commit ${s.pgCommitMs}, rest ${s.restMs} ms`);
          }
        }
        rebuild = { result: { setup, feed, baselines: { upsert, quadratic }, runner, worker } };
      } catch (error) {
        rebuild = { failed: failure(error) };
        log(`(3) failed: ${rebuild.failed}`);
      } finally {
        await bench?.close().catch((error: unknown) => log(`could not close the rebuild bench: ${failure(error)}`));
        await dropSchemas(admin, [rebuildSchema, naiveSchema]).catch((error: unknown) => log(`could not drop ${rebuildSchema}: ${failure(error)}`));
      }
    }
  } finally {
    await dropSchemas(admin, schemas).catch((error: unknown) => log(`could not drop schemas ${schemas.join(', ')}: ${failure(error)}`));
    const { rows } = await admin
      .query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname = ANY ($1)', [schemas])
      .catch(() => ({ rows: [] as { nspname: string }[] }));
    cleanup.schemasLeft = rows.map((r) => r.nspname);
    loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
    log(`cleanup: ${schemas.length} schemas dropped (${cleanup.schemasLeft.length} left)`);
    await admin.end();
    await db.release();
  }

  const summary = summarize(fold, stateAt, rebuild);
  const report = {
    bench: 'replay',
    startedAt: startedAt.toISOString(),
    machine,
    settings: {
      parts,
      fold: { events: foldEvents, baselineEvents: foldNaiveEvents, repetitions: foldReps },
      stateAt: { streamEvents, snapshotEvery, calls: stateAtCalls, warmupCalls: stateAtWarmup, baselineCalls: naiveCalls },
      rebuild: {
        events: rebuildEvents,
        batchSizes,
        projections,
        rebuildWorker: runWorker,
        oneRunnerOverAllProjections: runAllPass,
        onePassJob: runOnePass,
        feedAlone,
        progressIntervalMs,
        otherShadowTablesCreatedBeforeEachJob: otherShadows,
        workerBulk: bulk ?? 'the worker\'s defaults',
        hotState: 'MemoryHotState (in process)',
        upsertBaselineEvents: upsertEvents,
        quadraticBaselineEvents: quadraticEvents,
        traffic: 'bench/projections/traffic.ts: 4 worlds, ~10,000 entities, 2,000 players',
      },
    },
    targets: TARGETS,
    fold,
    stateAt,
    rebuild,
    verdicts: summary.verdicts,
    loadAverageAtEnd,
    cleanup,
  };
  const notes = [
    ...(machine ? [machineLine(machine), ...durabilityWarnings(machine).map((w) => `WARNING: ${w}`)] : []),
    `load average at the end ${loadAverageAtEnd.join(' ')} (Node and PostgreSQL share the cores)`,
    `cleanup: schemas left ${cleanup.schemasLeft.length}`,
    ...('result' in rebuild
      ? [
          `rebuild: the RebuildWorker runs beside a live ProjectionRunner parked at the head (its checkpoints set to the last event beforehand), MemoryHotState,`,
          `one pool of 20 for both; a job is timed from RebuildJobs.request to the job reading 'succeeded' (progress every ${progressIntervalMs} ms); pg cpu counts`,
          'every process of the PostgreSQL server (other clients of it included); the ratio compares with the per-event upsert baseline.',
        ]
      : []),
    ...('result' in rebuild && rebuild.result.worker.some((w) => w.otherShadowsCreated)
      ? ['RebuildWorker jobs ran with the other projections\' empty __next tables created beforehand, untimed (BENCH_REPLAY_OTHER_SHADOWS=1)']
      : []),
  ];
  printReport(report, summary.tables, notes);
  if ([fold, stateAt, rebuild].some((o) => 'failed' in o)) process.exitCode = process.exitCode || 1;
};
