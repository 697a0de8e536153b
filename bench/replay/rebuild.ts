import type { Pool } from 'pg';
import { comparePositions, PostgresEventStore, type Position } from '@lorestore/event-store';
import { createPostgresPool } from '@lorestore/infra';
import { ALL_PROJECTIONS, MemoryHotState, ProjectionRunner, REBUILD_SUFFIX, ReadModelStore, type RunnerLogger } from '@lorestore/projections';
import { READ_MODELS_JOB, RebuildJobs, RebuildWorker, ShadowTables, migrateReplay, type RebuildJob } from '@lorestore/replay';
import { quoteIdent } from '../support/database';
import { log } from '../support/env';
import type { LatencySummary } from '../support/latency';
import { TimedHotState } from '../projections/instrumented';
import { prefillEventStore, type PrefillResult } from '../projections/prefill';
import { profiled } from '../projections/profile';
import { GameTraffic, type TrafficShape } from '../projections/traffic';
import { cpuMark, cpuSince } from './cpu';
import { TimedFeedStore, instrumentProjections, type Counters, type Instrumentation } from './timed';

export type ProjectionName = (typeof ALL_PROJECTIONS)[number]['name'];
/** A job name: one projection, or `read_models` (all five in one pass, READ_MODELS_JOB). */
export type JobName = ProjectionName | typeof READ_MODELS_JOB;

export type RebuildSetup = {
  schema: string;
  prefill: PrefillResult;
  head: { commit: string; prepare: string };
  /** Rows each read model must hold once rebuilt: a document per stream of its aggregate, a history row per recorded action. */
  expectedRows: Record<ProjectionName, number>;
  live: string;
};

/**
 * Where a rebuild's wall time went (ms). Reads of the log (readFeed for a
 * runner, readFeedRange for the worker's bulk phase) overlap the work: each
 * runner reads one batch ahead, the bulk phase one page ahead.
 */
export type Stages = {
  feedReadMs: number;
  feedReads: number;
  perReadMs: number;
  /** ProjectionRunner batches (the worker's bulk phase folds outside them). */
  batches: number;
  /** Inside ProjectionRunner.apply: load docs + plan + hot put + commit. */
  applyMs: number;
  loadDocsMs: number;
  /** Runner batches only: apply minus load, hot put and commit (docKeysOf, planBatch: fold, history rows, bookkeeping). */
  planMs: number;
  hotPutMs: number;
  pgCommitMs: number;
  commits: number;
  /** Documents and history rows per commit (a document is written once per commit it changed in). */
  docsPerCommit: number;
  historyRowsPerCommit: number;
  /** Wall minus load, plan, hot put and commit: for the worker its fold (bulk phase), waiting on reads the overlap did not hide, and the job's own steps; for a runner, waiting on reads. */
  restMs: number;
  /** Wall time outside any runner batch. */
  outsideBatchesMs: number;
  batchMs: LatencySummary;
};

export type RebuildRun = {
  mode: 'worker' | 'runner';
  /** A projection's name, or `all`. */
  projection: string;
  batchSize: number;
  /** Events applied by runner batches (the one-runner pass: the whole log), or the log positions a job passed (its bulk phase reads only its own streams' events). */
  eventsCovered: number;
  ms: number;
  /** The log's events per wall second. */
  eventsPerSecond: number;
  job: { jobId: string; state: string; dbMs: number | null; reportedEventsPerSecond: number | null; processed: number; total: number | null } | null;
  rows: number;
  expectedRows: number;
  /** The rebuilt documents' JSON size (bytes): what each write of one costs. Null for player_history and the one-runner pass. */
  docBytes: { mean: number; max: number } | null;
  ok: boolean;
  stages: Stages;
  cpuMs: { nodeMs: number; postgresMs: number | null };
};

/** The feed read alone, page after page to the head: the ceiling of any rebuild that reads the log through it. */
export type FeedRun = {
  label: string;
  batchSize: number;
  events: number;
  reads: number;
  ms: number;
  eventsPerSecond: number;
  cpuMs: { nodeMs: number; postgresMs: number | null };
};

export type WorkerRound = {
  batchSize: number;
  progressIntervalMs: number;
  /** The bulk-phase settings handed to the worker (null: its defaults). */
  bulk: { pageSize?: number; flushEvents?: number } | null;
  /** Whether the other projections' empty `__next` tables were created before each job (see RebuildBench.worker). */
  otherShadowsCreated: boolean;
  jobs: RebuildRun[];
  /** Sum of the jobs' wall times: all five read models rebuilt one job after another, as the worker takes them. */
  ms: number;
  /** The log's events per second of that total (each job reads the whole log). */
  eventsPerSecond: number;
  ok: boolean;
};

const rate = (events: number, ms: number) => (ms > 0 ? Math.round((events / ms) * 1000) : 0);
const r1 = (ms: number) => Math.round(ms * 10) / 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The runners' warnings and errors, kept so a job stuck on one fails fast instead of at the time limit. */
const problems: string[] = [];
const logger: RunnerLogger = {
  info: () => undefined,
  warn: (m) => {
    problems.push(m);
    log(`  warn: ${m}`);
  },
  error: (m) => {
    problems.push(m);
    log(`  error: ${m}`);
  },
};

type Mark = Counters & { feedMs: number; feedReads: number; hotPutMs: number };


/**
 * (3) The read models rebuilt from a prefilled log with the real machinery:
 * a RebuildWorker (beside a live ProjectionRunner parked at the head) taking
 * one job per projection, and one ProjectionRunner over ALL_PROJECTIONS into
 * the shadow tables. One pool for all of it, as in the service.
 */
export class RebuildBench {
  private constructor(
    private readonly pool: Pool,
    private readonly store: TimedFeedStore,
    private readonly liveStore: PostgresEventStore,
    private readonly hot: TimedHotState,
    private readonly live: ProjectionRunner,
    private readonly instrumentation: Instrumentation,
    private readonly head: Position,
    readonly setup: RebuildSetup,
  ) {}

  static async prepare(options: { url: string; schema: string; shape: TrafficShape; events: number }): Promise<RebuildBench> {
    const { url, schema } = options;
    const prefillPool = createPostgresPool({ url, schema, max: 2, applicationName: 'bench-replay-prefill' });
    let prefill: PrefillResult;
    try {
      await PostgresEventStore.migrate(prefillPool, schema);
      prefill = await prefillEventStore(prefillPool, schema, new GameTraffic(options.shape), options.events);
      await ReadModelStore.migrate(prefillPool, schema);
      await migrateReplay(prefillPool, schema);
    } finally {
      await prefillPool.end();
    }

    const pool = createPostgresPool({ url, schema, max: 20, applicationName: 'bench-replay-rebuild' });
    const store = new TimedFeedStore({ pool, schema });
    const liveStore = new PostgresEventStore({ pool, schema });
    const hot = new TimedHotState(new MemoryHotState({ ttlSeconds: 3600, maxEntries: 10_000_000 }), false);
    let live: ProjectionRunner | null = null;
    try {
      const head = await store.headPosition();
      if (!head) throw new Error('the prefilled store has no events');
      const { rows } = await pool.query<{ category: string; n: string }>(
        "SELECT category, count(*) AS n FROM streams GROUP BY category UNION ALL SELECT 'history', count(*) FROM events WHERE type = 'PlayerActionRecorded'",
      );
      const count = (category: string) => Number(rows.find((r) => r.category === category)?.n ?? 0);
      const expectedRows: Record<ProjectionName, number> = {
        entities: count('entity'),
        world_state: count('world'),
        narrative_state: count('narrative'),
        player_state: count('player'),
        player_history: count('history'),
      };

      // The live projector, parked at the head: its checkpoints are set to the last event (its
      // tables stay empty), so it leads, has nothing to do, and a rebuild may switch as soon as
      // its copy reaches the head. Projecting the log live first would only cost time.
      await pool.query(
        `INSERT INTO projection_checkpoints (name, commit, position, event_time, events)
         SELECT n, $1::text::xid8, $2::bigint, now(), $3::bigint FROM unnest($4::text[]) AS n`,
        [head.commit.toString(), head.prepare.toString(), prefill.events, ALL_PROJECTIONS.map((p) => p.name)],
      );
      live = new ProjectionRunner({
        store: liveStore,
        pool,
        readModels: new ReadModelStore(pool),
        hot,
        batchSize: 1000,
        lockName: `bench.replay.live.${schema}`,
        partitions: null,
        logger,
      });
      live.start();
      const deadline = Date.now() + 15_000;
      while (!(live.isLeader && live.position && comparePositions(live.position, head) >= 0)) {
        if (Date.now() > deadline) throw new Error('the parked live runner did not take the lead within 15 s');
        await sleep(20);
      }
      const instrumentation = instrumentProjections();
      return new RebuildBench(pool, store, liveStore, hot, live, instrumentation, head, {
        schema,
        prefill,
        head: { commit: head.commit.toString(), prepare: head.prepare.toString() },
        expectedRows,
        live: 'ProjectionRunner over ALL_PROJECTIONS, batch 1000, checkpoints set to the head beforehand (parked: leads, nothing to project)',
      });
    } catch (error) {
      await live?.stop().catch(() => undefined);
      await store.close().catch(() => undefined);
      await liveStore.close().catch(() => undefined);
      await pool.end();
      throw error;
    }
  }

  private mark(): Mark {
    return {
      ...this.instrumentation.counters,
      feedMs: this.store.feedMs + this.store.rangeMs,
      feedReads: this.store.feedReads + this.store.rangeReads,
      hotPutMs: this.hot.putMs,
    };
  }

  private stages(before: Mark, ms: number): Stages {
    const now = this.mark();
    const d = (k: keyof Mark) => now[k] - before[k];
    const applyMs = d('applyMs');
    const planMs = Math.max(0, applyMs - d('loadDocsMs') - d('hotPutMs') - d('pgCommitMs'));
    return {
      feedReadMs: r1(d('feedMs')),
      feedReads: d('feedReads'),
      perReadMs: d('feedReads') ? r1(d('feedMs') / d('feedReads')) : 0,
      batches: d('batches'),
      applyMs: r1(applyMs),
      loadDocsMs: r1(d('loadDocsMs')),
      planMs: r1(planMs),
      hotPutMs: r1(d('hotPutMs')),
      pgCommitMs: r1(d('pgCommitMs')),
      commits: d('commits'),
      docsPerCommit: d('commits') ? Math.round(d('docs') / d('commits')) : 0,
      historyRowsPerCommit: d('commits') ? Math.round(d('historyRows') / d('commits')) : 0,
      restMs: r1(Math.max(0, ms - d('loadDocsMs') - planMs - d('hotPutMs') - d('pgCommitMs'))),
      outsideBatchesMs: r1(Math.max(0, ms - applyMs)),
      batchMs: this.instrumentation.batchMs.summary(),
    };
  }

  private async countRows(table: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(table)}`);
    return Number(rows[0]!.n);
  }

  private async docBytes(table: string): Promise<{ mean: number; max: number }> {
    const { rows } = await this.pool.query<{ mean: string | null; max: string | null }>(
      `SELECT round(avg(octet_length(data::text))) AS mean, max(octet_length(data::text)) AS max FROM ${quoteIdent(table)}`,
    );
    return { mean: Number(rows[0]!.mean ?? 0), max: Number(rows[0]!.max ?? 0) };
  }

  /**
   * The feed alone: `PostgresEventStore.readFeed` page after page from the
   * start to the head (parsed into RecordedEvents, as the runners get them);
   * or, with `parse` false, the same statement with every column left as
   * text (rowMode array, no type parsers): what PostgreSQL and the wire cost
   * without the client's JSON, BigInt and Date parsing.
   */
  async feedAlone(batchSize: number, parse: boolean): Promise<FeedRun> {
    const columns = 'position, transaction_id::text AS transaction_id, stream_id, revision, event_id, type, schema_version, data, metadata, created_at';
    const sql = (first: boolean) =>
      `SELECT ${columns} FROM events
        WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ${first ? 'AND $1::text IS NULL AND $2::bigint IS NULL' : 'AND (transaction_id, position) > ($1::text::xid8, $2::bigint)'}
        ORDER BY events.transaction_id, events.position LIMIT $3`;
    const asText = { getTypeParser: () => (value: string) => value };
    let events = 0;
    let reads = 0;
    const cpu = cpuMark();
    const started = performance.now();
    if (parse) {
      let from: Position | null = null;
      for (;;) {
        const page = await this.liveStore.readFeed(from, false, batchSize);
        reads++;
        if (page.length === 0) break;
        events += page.length;
        from = page.at(-1)!.position;
      }
    } else {
      let from: [string, string] | null = null;
      for (;;) {
        const result: { rows: string[][] } = await this.pool.query({ text: sql(from === null), values: [from?.[0] ?? null, from?.[1] ?? null, batchSize], rowMode: 'array', types: asText });
        reads++;
        if (result.rows.length === 0) break;
        events += result.rows.length;
        const last = result.rows.at(-1)!;
        from = [last[1]!, last[0]!];
      }
    }
    const ms = performance.now() - started;
    return {
      label: parse ? `PostgresEventStore.readFeed, pages of ${batchSize}, parsed` : `the same statement, pages of ${batchSize}, columns as text (no parsing)`,
      batchSize,
      events,
      reads,
      ms: Math.round(ms),
      eventsPerSecond: rate(events, ms),
      cpuMs: cpuSince(cpu),
    };
  }

  private get limitMs(): number {
    return Math.max(600_000, this.setup.prefill.events * 2);
  }

  /** One ProjectionRunner over every projection into the `__next` tables, from position 0 to the head. */
  async runner(batchSize: number): Promise<RebuildRun> {
    const shadows = new ShadowTables(this.pool);
    for (const p of ALL_PROJECTIONS) await shadows.create(p.name);
    const runner = new ProjectionRunner({
      store: this.store,
      pool: this.pool,
      readModels: new ReadModelStore(this.pool, { suffix: REBUILD_SUFFIX }),
      hot: this.hot,
      projections: ALL_PROJECTIONS,
      batchSize,
      lockName: `bench.replay.rebuild-all.${this.setup.schema}`,
      partitions: null,
      generation: 2,
      logger,
    });
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    runner.onCommitted((position) => {
      if (comparePositions(position, this.head) >= 0) done();
    });
    let timer: NodeJS.Timeout | undefined;
    this.instrumentation.resetBatches();
    const before = this.mark();
    const cpu = cpuMark();
    const started = performance.now();
    try {
      await profiled(`replay-rebuild-runner-b${batchSize}`, async () => {
        runner.start();
        await Promise.race([
          finished,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`the rebuild runner did not reach the head within ${this.limitMs} ms`)), this.limitMs);
          }),
        ]);
      });
    } finally {
      clearTimeout(timer);
    }
    const ms = performance.now() - started;
    const cpuMs = cpuSince(cpu);
    const stages = this.stages(before, ms);
    const eventsCovered = this.instrumentation.counters.events - before.events;
    await runner.stop();
    let rows = 0;
    for (const p of ALL_PROJECTIONS) rows += await this.countRows(`${p.name}${REBUILD_SUFFIX}`);
    const expectedRows = Object.values(this.setup.expectedRows).reduce((a, b) => a + b, 0);
    for (const p of ALL_PROJECTIONS) await shadows.drop(p.name);
    return {
      mode: 'runner',
      projection: 'all',
      batchSize,
      eventsCovered,
      ms: Math.round(ms),
      eventsPerSecond: rate(this.setup.prefill.events, ms),
      job: null,
      rows,
      expectedRows,
      docBytes: null,
      ok: rows === expectedRows && eventsCovered === this.setup.prefill.events,
      stages,
      cpuMs,
    };
  }

  /**
   * A RebuildWorker as the service runs it (beside the live runner, same pool,
   * same hot store), one job per projection, each requested with
   * RebuildJobs.request once the one before has succeeded, timed from the
   * request until the job reads `succeeded` (polled every 25 ms).
   *
   * `otherShadows`: the other projections' empty `__next` tables are created
   * before each request (untimed) and dropped after the round; they receive
   * no rows. Needed on a tree whose shadow store's one commit statement names
   * every `<table>__next` while the worker creates only its own projection's
   * copy: there a job fails on its first commit ("relation … does not exist").
   * Not needed once the job's store writes its own table only (ReadModelStore `only`).
   */
  async worker(
    batchSize: number,
    projections: readonly JobName[],
    progressIntervalMs: number,
    otherShadows: boolean,
    bulk: { pageSize?: number; flushEvents?: number } | null,
  ): Promise<WorkerRound> {
    const jobs = new RebuildJobs(this.pool);
    const shadows = new ShadowTables(this.pool);
    const worker = new RebuildWorker({
      pool: this.pool,
      store: this.store,
      hot: this.hot,
      live: this.live,
      schema: this.setup.schema,
      batchSize,
      logger,
      progressIntervalMs,
      ...(bulk ? { bulk } : {}),
    });
    const runs: RebuildRun[] = [];
    worker.start();
    try {
      for (const name of projections) {
        if (otherShadows) {
          for (const p of ALL_PROJECTIONS) if (p.name !== name && name !== READ_MODELS_JOB && !(await shadows.exists(p.name))) await shadows.create(p.name);
        }
        const seen = problems.length;
        this.instrumentation.resetBatches();
        const before = this.mark();
        const cpu = cpuMark();
        const started = performance.now();
        const final = await profiled(`replay-rebuild-worker-${name}-b${batchSize}`, async () => {
          const job = await jobs.request(name, 'bench', `npm run bench -- replay, batch ${batchSize}`);
          const deadline = Date.now() + this.limitMs;
          for (;;) {
            await sleep(25);
            const now: RebuildJob | null = await jobs.get(job.jobId);
            if (!now) throw new Error(`rebuild job ${job.jobId} disappeared`);
            if (now.state === 'succeeded' || now.state === 'failed') return now;
            const missing = problems.slice(seen).find((m) => m.includes('does not exist'));
            if (missing) throw new Error(`rebuild job ${name} is stuck (state ${now.state}, ${now.processed} processed): its shadow runner keeps failing with "${missing}"`);
            if (Date.now() > deadline) throw new Error(`rebuild job ${name} not done within ${this.limitMs} ms (state ${now.state}, ${now.processed} processed)`);
          }
        });
        const ms = performance.now() - started;
        const cpuMs = cpuSince(cpu);
        const stages = this.stages(before, ms);
        if (final.state === 'failed') throw new Error(`rebuild job ${name} failed: ${final.error}`);
        // The one-pass job writes every read model: its rows are theirs together.
        const names = name === READ_MODELS_JOB ? ALL_PROJECTIONS.map((p) => p.name as ProjectionName) : [name];
        let rows = 0;
        for (const n of names) rows += await this.countRows(n);
        const expectedRows = names.reduce((sum, n) => sum + this.setup.expectedRows[n], 0);
        const docBytes = name === 'player_history' || name === READ_MODELS_JOB ? null : await this.docBytes(name);
        runs.push({
          mode: 'worker',
          projection: name,
          batchSize,
          eventsCovered: final.processed,
          ms: Math.round(ms),
          eventsPerSecond: rate(this.setup.prefill.events, ms),
          job: {
            jobId: final.jobId,
            state: final.state,
            dbMs: final.startedAt && final.finishedAt ? Date.parse(final.finishedAt) - Date.parse(final.startedAt) : null,
            reportedEventsPerSecond: final.eventsPerSecond,
            processed: final.processed,
            total: final.total,
          },
          rows,
          expectedRows,
          docBytes,
          // The job's progress counts log positions passed (older trees: events); the prefill's positions are 1..events.
          ok: rows === expectedRows && final.processed === this.setup.prefill.events,
          stages,
          cpuMs,
        });
        log(`  job ${name}: ${rate(this.setup.prefill.events, ms)} events/s (${Math.round(ms)} ms, ${rows}/${expectedRows} rows)`);
      }
    } finally {
      await worker.stop();
      if (otherShadows) for (const p of ALL_PROJECTIONS) await shadows.drop(p.name);
    }
    const ms = runs.reduce((sum, r) => sum + r.ms, 0);
    return { batchSize, progressIntervalMs, bulk, otherShadowsCreated: otherShadows, jobs: runs, ms, eventsPerSecond: rate(this.setup.prefill.events, ms), ok: runs.every((r) => r.ok) };
  }

  async close(): Promise<void> {
    this.instrumentation.restore();
    await this.live.stop().catch(() => undefined);
    await this.store.close().catch(() => undefined);
    await this.liveStore.close().catch(() => undefined);
    await this.hot.close().catch(() => undefined);
    await this.pool.end();
  }
}
