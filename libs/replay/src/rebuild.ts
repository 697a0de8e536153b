import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { comparePositions, PostgresEventStore, type EventStore, type Position, type RecordedEvent } from '@lorestore/event-store';
import { isUniqueViolation, withTransaction } from '@lorestore/infra';
import {
  ALL_PROJECTIONS,
  applyHistoryReset,
  docKey,
  applyHistoryErasure,
  docKeysOf,
  erasedPlayersOf,
  planBatch,
  type Erasure,
  ProjectionRunner,
  ReadModelStore,
  REBUILD_SUFFIX,
  type Doc,
  type DocTable,
  type HistoryReset,
  type HistoryRow,
  type HotStateStore,
  type Projection,
  type RunnerLogger,
} from '@lorestore/projections';

export type JobState = 'pending' | 'running' | 'switching' | 'succeeded' | 'failed';

/** The job that rebuilds every PostgreSQL read model in one pass over the log (one read, one parse, five folds). */
export const READ_MODELS_JOB = 'read_models';

export type RebuildJob = {
  jobId: string;
  projection: string;
  state: JobState;
  processed: number;
  total: number | null;
  eventsPerSecond: number | null;
  /** Seconds left at the current rate; null when unknown. */
  etaSeconds: number | null;
  requestedBy: string;
  reason: string | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
};

export class UnknownProjectionError extends Error {
  override readonly name = 'UnknownProjectionError';
}

export class RebuildInProgressError extends Error {
  override readonly name = 'RebuildInProgressError';
  constructor(
    readonly projection: string,
    readonly jobId: string,
    /** The unfinished job's own name when it is another one that includes this projection (`read_models`, or one of its five). */
    readonly blockedBy: string = projection,
  ) {
    super(
      blockedBy === projection
        ? `projection ${projection} is being rebuilt already (job ${jobId})`
        : `projection ${projection} is being rebuilt already, by the ${blockedBy} job ${jobId}`,
    );
  }
}

type JobRow = {
  job_id: string;
  projection: string;
  state: JobState;
  processed: string;
  total: string | null;
  events_per_second: number | null;
  requested_by: string;
  reason: string | null;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
};

const toJob = (r: JobRow): RebuildJob => {
  const processed = Number(r.processed);
  const total = r.total === null ? null : Number(r.total);
  const rate = r.events_per_second;
  const running = r.state === 'running' || r.state === 'switching';
  return {
    jobId: r.job_id,
    projection: r.projection,
    state: r.state,
    processed,
    total,
    eventsPerSecond: rate,
    etaSeconds: running && total !== null && rate && rate > 0 ? Math.max(0, Math.round((total - processed) / rate)) : r.state === 'succeeded' ? 0 : null,
    requestedBy: r.requested_by,
    reason: r.reason,
    error: r.error,
    createdAt: r.created_at.toISOString(),
    startedAt: r.started_at?.toISOString() ?? null,
    finishedAt: r.finished_at?.toISOString() ?? null,
    updatedAt: r.updated_at.toISOString(),
  };
};

const JOB_COLUMNS = 'job_id, projection, state, processed, total, events_per_second, requested_by, reason, error, created_at, started_at, finished_at, updated_at';

/** The rebuild jobs table: what the API writes and reads, and what the worker takes. */
export class RebuildJobs {
  /**
   * `known`: the projections this instance requests and takes jobs for (the
   * read models by default; the vector index's own rebuild runs elsewhere).
   */
  constructor(
    private readonly pool: Pool,
    private readonly known: readonly string[] = [...ALL_PROJECTIONS.map((p) => p.name), READ_MODELS_JOB],
  ) {}

  static projection(name: string): Projection {
    const projection = ALL_PROJECTIONS.find((p) => p.name === name);
    if (!projection) throw new UnknownProjectionError(`unknown projection "${name}"; known: ${ALL_PROJECTIONS.map((p) => p.name).join(', ')}`);
    return projection;
  }

  /** What a job rebuilds: one projection, or (`read_models`) all five read models in one pass over the log. */
  static projections(name: string): Projection[] {
    return name === READ_MODELS_JOB ? [...ALL_PROJECTIONS] : [RebuildJobs.projection(name)];
  }

  /** The job names whose tables a job of this name would share: one may be unfinished at a time. */
  private static overlapping(name: string): string[] {
    if (name === READ_MODELS_JOB) return [READ_MODELS_JOB, ...ALL_PROJECTIONS.map((p) => p.name)];
    return ALL_PROJECTIONS.some((p) => p.name === name) ? [name, READ_MODELS_JOB] : [name];
  }

  /** A new pending job; refused while another rebuild of the projection (or one that includes it) is unfinished. */
  async request(projection: string, requestedBy: string, reason: string | null): Promise<RebuildJob> {
    if (!this.known.includes(projection)) throw new UnknownProjectionError(`unknown projection "${projection}"; known: ${this.known.join(', ')}`);
    try {
      return await withTransaction(this.pool, async (client) => {
        // Requests one at a time: the overlap check and the insert must not interleave with another request's.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['lorestore.rebuild-request']);
        const { rows: active } = await client.query<{ job_id: string; projection: string }>(
          `SELECT job_id, projection FROM projection_jobs WHERE projection = ANY ($1::text[]) AND state IN ('pending', 'running', 'switching') ORDER BY created_at LIMIT 1`,
          [RebuildJobs.overlapping(projection)],
        );
        if (active[0]) throw new RebuildInProgressError(projection, active[0].job_id, active[0].projection);
        const { rows } = await client.query<JobRow>(
          `INSERT INTO projection_jobs (job_id, projection, state, requested_by, reason) VALUES ($1, $2, 'pending', $3, $4) RETURNING ${JOB_COLUMNS}`,
          [randomUUID(), projection, requestedBy, reason],
        );
        return toJob(rows[0]!);
      });
    } catch (error) {
      if ((error as { constraint?: string }).constraint === 'projection_jobs_one_active') {
        const active = await this.active(projection);
        throw new RebuildInProgressError(projection, active?.jobId ?? 'unknown');
      }
      throw error;
    }
  }

  async get(jobId: string): Promise<RebuildJob | null> {
    const { rows } = await this.pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM projection_jobs WHERE job_id = $1`, [jobId]);
    return rows[0] ? toJob(rows[0]) : null;
  }

  async active(projection: string): Promise<RebuildJob | null> {
    const { rows } = await this.pool.query<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM projection_jobs WHERE projection = $1 AND state IN ('pending', 'running', 'switching')`,
      [projection],
    );
    return rows[0] ? toJob(rows[0]) : null;
  }

  /** Unfinished jobs, oldest first: the ones a worker takes (a running one after a crash is resumed). */
  async unfinished(): Promise<RebuildJob[]> {
    const { rows } = await this.pool.query<JobRow>(
      `SELECT ${JOB_COLUMNS} FROM projection_jobs WHERE state IN ('pending', 'running', 'switching') AND projection = ANY ($1::text[]) ORDER BY created_at`,
      [this.known],
    );
    return rows.map(toJob);
  }

  async update(jobId: string, fields: { state?: JobState; processed?: number; total?: number; eventsPerSecond?: number | null; error?: string | null }): Promise<void> {
    await this.pool.query(
      `UPDATE projection_jobs SET
         state = coalesce($2, state),
         processed = coalesce($3, processed),
         total = coalesce($4, total),
         events_per_second = CASE WHEN $5::boolean THEN $6 ELSE events_per_second END,
         error = CASE WHEN $7::boolean THEN $8 ELSE error END,
         started_at = CASE WHEN $2 = 'running' AND started_at IS NULL THEN now() ELSE started_at END,
         finished_at = CASE WHEN $2 IN ('succeeded', 'failed') THEN now() ELSE finished_at END,
         updated_at = now()
       WHERE job_id = $1`,
      [
        jobId,
        fields.state ?? null,
        fields.processed ?? null,
        fields.total ?? null,
        'eventsPerSecond' in fields,
        fields.eventsPerSecond ?? null,
        'error' in fields,
        fields.error ?? null,
      ],
    );
  }
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** An index's definition without its own name and table, to pair a table's indexes with its copy's. */
const shapeOf = (indexdef: string) => indexdef.replace(/^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ /, '$1');

/**
 * The tables of a blue-green rebuild: the copy (`<name>__next`, with the
 * live table's columns, constraints, indexes and, for `player_history`, its
 * partitions) and the switch, which renames in one transaction.
 */
export class ShadowTables {
  constructor(private readonly pool: Pool) {}

  async exists(name: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [`${name}${REBUILD_SUFFIX}`]);
    return rows[0]!.t !== null;
  }

  /** Drops any leftover copy and makes an empty one, with no checkpoint. */
  async create(name: string): Promise<void> {
    const next = `${name}${REBUILD_SUFFIX}`;
    await withTransaction(this.pool, async (client) => {
      await client.query(`DROP TABLE IF EXISTS ${quote(next)} CASCADE`);
      await client.query('DELETE FROM projection_checkpoints WHERE name = $1', [next]);
      const partitioned = await this.partitionKey(client, name);
      if (!partitioned) {
        await client.query(`CREATE TABLE ${quote(next)} (LIKE ${quote(name)} INCLUDING ALL)`);
        return;
      }
      await client.query(`CREATE TABLE ${quote(next)} (LIKE ${quote(name)} INCLUDING ALL) PARTITION BY ${partitioned}`);
      for (const part of await this.partitions(client, name)) {
        await client.query(`CREATE TABLE ${quote(next + part.suffix)} PARTITION OF ${quote(next)} ${part.bound}`);
      }
    });
  }

  /**
   * Drops the copy's secondary indexes (neither unique nor backing a
   * constraint) before a bulk load: maintained row by row they are most of
   * the load's work, built once after it (`restoreIndexes`) a fraction.
   * (The load itself looks rows up by player only for an erasure: it brings
   * back the indexes led by `player_id` at the first, `LED_BY_PLAYER`.)
   * Returns how many were dropped.
   */
  async dropSecondaryIndexes(name: string): Promise<number> {
    const next = `${name}${REBUILD_SUFFIX}`;
    const { rows } = await this.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = to_regclass($1) AND NOT i.indisunique
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)`,
      [next],
    );
    for (const row of rows) await this.pool.query(`DROP INDEX IF EXISTS ${quote(row.name)}`);
    return rows.length;
  }

  /**
   * Makes on the copy every index of the live table it has no twin of (same
   * definition; of those, the ones `only` takes), each on a connection of its
   * own, side by side; returns how many. Idempotent.
   */
  async restoreIndexes(name: string, only: (shape: string) => boolean = () => true): Promise<number> {
    const next = `${name}${REBUILD_SUFFIX}`;
    const client = await this.pool.connect();
    let missing: { name: string; shape: string }[];
    try {
      const live = await this.indexes(client, name);
      const copy = await this.indexes(client, next);
      missing = live.filter((index) => only(index.shape) && !copy.some((twin) => twin.shape === index.shape));
    } finally {
      client.release();
    }
    await Promise.all(
      missing.map((index) => {
        // On a partitioned copy the index is made on every partition too.
        const unique = index.shape.startsWith('UNIQUE ');
        return this.pool.query(`CREATE ${unique ? 'UNIQUE ' : ''}INDEX ON ${quote(next)} ${unique ? index.shape.slice('UNIQUE '.length) : index.shape}`);
      }),
    );
    return missing.length;
  }

  async drop(name: string): Promise<void> {
    await this.pool.query(`DROP TABLE IF EXISTS ${quote(`${name}${REBUILD_SUFFIX}`)} CASCADE`);
    await this.pool.query('DELETE FROM projection_checkpoints WHERE name = $1', [`${name}${REBUILD_SUFFIX}`]);
  }

  /**
   * The switch, in one transaction: the live table (and its partitions and
   * indexes) is renamed away, the copy takes its names, the projection's hot
   * state moves to the new key generation, and the copy's checkpoint goes.
   * Readers wait on the rename's lock for its few milliseconds, never fail;
   * the live projector is held between batches by the caller. The old table
   * is dropped afterwards (`dropRetired`).
   */
  async switch(name: string, generation: number): Promise<string> {
    return (await this.switchAll([name], generation))[0]!;
  }

  /** The switch of several projections' tables, all in one transaction (readers see all old or all new). */
  async switchAll(names: readonly string[], generation: number): Promise<string[]> {
    return withTransaction(this.pool, async (client) => {
      await client.query("SET LOCAL lock_timeout = '2s'");
      const retired: string[] = [];
      for (const name of names) retired.push(await this.switchIn(client, name, generation));
      return retired;
    });
  }

  private async switchIn(client: PoolClient, name: string, generation: number): Promise<string> {
    const next = `${name}${REBUILD_SUFFIX}`;
    const retired = `${name}__old${generation - 1}`;
    {
      await client.query(`DROP TABLE IF EXISTS ${quote(retired)} CASCADE`);
      const liveIndexes = await this.indexes(client, name);
      const nextIndexes = await this.indexes(client, next);
      const livePartitions = await this.partitions(client, name);
      const nextPartitions = await this.partitions(client, next);
      await client.query(`ALTER TABLE ${quote(name)} RENAME TO ${quote(retired)}`);
      for (const part of livePartitions) await client.query(`ALTER TABLE ${quote(name + part.suffix)} RENAME TO ${quote(retired + part.suffix)}`);
      for (const [i, index] of liveIndexes.entries()) await client.query(`ALTER INDEX ${quote(index.name)} RENAME TO ${quote(`${retired.slice(0, 40)}_i${i}`)}`);
      await client.query(`ALTER TABLE ${quote(next)} RENAME TO ${quote(name)}`);
      for (const part of nextPartitions) await client.query(`ALTER TABLE ${quote(next + part.suffix)} RENAME TO ${quote(name + part.suffix)}`);
      // The copy's indexes take the live ones' names, so later migrations find them.
      for (const index of liveIndexes) {
        const twin = nextIndexes.find((n) => n.shape === index.shape);
        // A copy without one of the live table's indexes (`restoreIndexes` did not run, or a migration added one
        // since) must not go live: the whole switch is undone, and the job fails saying which.
        if (!twin) throw new Error(`${next} has no index like ${index.name} of ${name} (${index.shape}); not switching`);
        await client.query(`ALTER INDEX ${quote(twin.name)} RENAME TO ${quote(index.name)}`);
      }
      await client.query('UPDATE projection_checkpoints SET generation = $2 WHERE name = $1', [name, generation]);
      await client.query('DELETE FROM projection_checkpoints WHERE name = $1', [next]);
    }
    return retired;
  }

  async dropRetired(retired: string): Promise<void> {
    await this.pool.query(`DROP TABLE IF EXISTS ${quote(retired)} CASCADE`);
  }

  private async partitionKey(client: PoolClient, table: string): Promise<string | null> {
    const { rows } = await client.query<{ key: string | null }>('SELECT pg_get_partkeydef(to_regclass($1)) AS key', [table]);
    return rows[0]?.key ?? null;
  }

  /** The partitions of a table, each as the suffix after the table's name and its bound. */
  private async partitions(client: PoolClient, table: string): Promise<{ suffix: string; bound: string }[]> {
    const { rows } = await client.query<{ name: string; bound: string }>(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass($1) ORDER BY c.relname`,
      [table],
    );
    return rows.filter((r) => r.name.startsWith(table)).map((r) => ({ suffix: r.name.slice(table.length), bound: r.bound }));
  }

  private async indexes(client: PoolClient, table: string): Promise<{ name: string; shape: string }[]> {
    const { rows } = await client.query<{ name: string; def: string }>(
      `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = to_regclass($1) ORDER BY c.relname`,
      [table],
    );
    return rows.map((r) => ({ name: r.name, shape: shapeOf(r.def) }));
  }
}

/**
 * Takes unfinished rebuild jobs one at a time, every `intervalMs`, while the
 * process leads the projection the jobs are for: the loop both rebuild
 * workers (the read models' and the memory index's) run on.
 */
export class RebuildJobPoller {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;

  constructor(
    private readonly options: {
      jobs: RebuildJobs;
      leads: () => boolean;
      run: (job: RebuildJob) => Promise<void>;
      intervalMs: number;
      onError: (error: unknown) => void;
    },
  ) {}

  start(): void {
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      if (!this.running && this.options.leads()) {
        this.running = this.takeNext()
          .catch((error: unknown) => this.options.onError(error))
          .finally(() => (this.running = null));
      }
      this.timer = setTimeout(tick, this.options.intervalMs);
      this.timer.unref();
    };
    tick();
  }

  /** Stops taking jobs; `interrupt` ends the one in progress, which is then waited for. */
  async stop(interrupt?: () => Promise<void> | undefined): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await interrupt?.();
    await this.running;
  }

  private async takeNext(): Promise<void> {
    const [job] = await this.options.jobs.unfinished();
    if (job) await this.options.run(job);
  }
}

export type RebuildWorkerOptions = {
  pool: Pool;
  store: EventStore;
  hot: HotStateStore;
  /** The live projector: a rebuild runs beside it and switches between two of its batches. */
  live: ProjectionRunner;
  schema: string;
  batchSize: number;
  logger?: RunnerLogger;
  /** How often progress is written to the job (and unfinished jobs looked for). */
  progressIntervalMs?: number;
  /** Bulk phase: events per read (10,000) and per commit (250,000). */
  bulk?: { pageSize?: number; flushEvents?: number };
};

/** Events of the log scanned per read of the bulk phase (those of the projection's streams come back). */
const BULK_PAGE = 10_000;
/** The bulk phase commits (documents changed since the last commit, rows, checkpoint) this often. */
const BULK_FLUSH_EVENTS = 250_000;
const BULK_FLUSH_ROWS = 50_000;
/** Documents kept in memory by the bulk phase; beyond this, clean ones are read back from the copy when needed. */
const BULK_MAX_DOCS = 200_000;

/** An index led by `player_id` (by its definition without name and table): what an erasure's lookups need. */
export const LED_BY_PLAYER = (shape: string): boolean => /^(UNIQUE )?USING \w+ \(player_id[,)]/.test(shape);

/** The stream categories whose events a projection reads. */
const categoriesOf = (projection: Projection): string[] =>
  // The player projections read erasures too (PlayerErased, on the player's privacy stream).
  projection.kind === 'doc' ? (projection.aggregate === 'player' ? ['player', 'privacy'] : [projection.aggregate]) : ['player', 'privacy'];

/** Failures in a row (each retried with back-off, up to 5 s apart) after which a rebuild job is failed. */
const MAX_CONSECUTIVE_FAILURES = 5;

const silent: RunnerLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Runs rebuild jobs in the process that leads the live projections: builds
 * the projection into `<name>__next` (and the next hot-state key generation)
 * from position 0 with its own checkpoint, so a crash resumes it; when it has
 * caught up with the live projector, holds that one between two batches,
 * switches the tables in one transaction and drops the old ones.
 */
export class RebuildWorker {
  private readonly jobs: RebuildJobs;
  private readonly shadows: ShadowTables;
  private readonly logger: RunnerLogger;
  private readonly poller: RebuildJobPoller;
  private current: ProjectionRunner | null = null;
  private stopped = false;

  constructor(private readonly options: RebuildWorkerOptions) {
    this.jobs = new RebuildJobs(options.pool);
    this.shadows = new ShadowTables(options.pool);
    this.logger = options.logger ?? silent;
    this.poller = new RebuildJobPoller({
      jobs: this.jobs,
      leads: () => options.live.isLeader,
      run: (job) => this.run(job),
      intervalMs: options.progressIntervalMs ?? 1000,
      onError: (error) => this.logger.error(`rebuild: ${(error as Error).message}`),
    });
  }

  start(): void {
    this.stopped = false;
    this.poller.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.poller.stop(() => this.current?.stop());
  }

  /** One job, start (or resume) to switch. */
  async run(job: RebuildJob): Promise<void> {
    const projections = RebuildJobs.projections(job.projection);
    const names = projections.map((p) => p.name);
    // Every table of the job is written by the same commits: the first one's checkpoint speaks for all.
    const name = names[0]!;
    const label = job.projection;
    const live = this.options.live;
    const exists = await Promise.all(names.map((n) => this.shadows.exists(n)));
    if (job.state === 'switching' && !exists.some(Boolean)) {
      // The process died after the switch committed (it renames the copies away) and before the job was marked.
      await this.jobs.update(job.jobId, { state: 'succeeded' });
      this.logger.info(`rebuild ${job.jobId}: ${label} had switched before a restart; marked succeeded`);
      return;
    }
    const fresh = job.state === 'pending' || !exists.every(Boolean);
    if (fresh) {
      for (const n of names) await this.shadows.create(n);
      // The bulk phase loads the empty copies: their secondary indexes are built after it, once.
      if (this.options.store instanceof PostgresEventStore) for (const n of names) await this.shadows.dropSecondaryIndexes(n);
    }
    // One generation for the job's projections: above each one's current, so every reader moves to new keys.
    const generation = Math.max(...names.map((n) => live.generationOf(n))) + 1;
    const shadowStore = new ReadModelStore(this.options.pool, { suffix: REBUILD_SUFFIX, only: names });
    // The log's head position: as good as a count (positions only skip the few of rolled-back appends) and an index lookup, not a scan.
    const { rows } = await this.options.pool.query<{ n: string }>('SELECT coalesce(max(position), 0) AS n FROM events');
    const total = Number(rows[0]!.n);
    await this.jobs.update(job.jobId, { state: 'running', total, error: null });
    this.logger.info(
      `rebuild ${job.jobId}: ${fresh ? 'building' : 'resuming'} ${names.map((n) => `${n}${REBUILD_SUFFIX}`).join(', ')} (hot-state generation ${generation}) from ${total} events`,
    );

    // The copy's runner retries like any projector; a rebuild that keeps failing is a failed job, not a silent loop.
    let failures: unknown[] = [];
    const shadow = new ProjectionRunner({
      store: this.options.store,
      pool: this.options.pool,
      readModels: shadowStore,
      hot: this.options.hot,
      projections,
      batchSize: this.options.batchSize,
      lockName: `lorestore.rebuild.${this.options.schema}.${label}`,
      partitions: null,
      generation,
      clearsHotStateOnLead: false,
      logger: this.logger,
      onBatch: () => (failures = []),
      onError: (error) => failures.push(error),
    });
    this.current = shadow;
    let processed = 0;
    const sample = { at: performance.now(), processed: 0, rate: null as number | null };
    // Progress is measured in positions of the log passed (positions are event numbers, but for the
    // few that rolled-back appends skipped), so the bulk phase, which reads only the projection's
    // own events, and the catch-up count alike.
    const progress = async (state?: JobState) => {
      const checkpoint = (await shadowStore.checkpoints()).find((c) => c.name === name);
      processed = checkpoint ? Number(checkpoint.position.prepare) : 0;
      const now = performance.now();
      const seconds = (now - sample.at) / 1000;
      if (seconds >= 0.5) {
        const rate = (processed - sample.processed) / seconds;
        sample.rate = sample.rate === null ? rate : 0.5 * sample.rate + 0.5 * rate;
        sample.at = now;
        sample.processed = processed;
      }
      await this.jobs.update(job.jobId, { ...(state ? { state } : {}), processed, total: Math.max(total, processed), eventsPerSecond: sample.rate === null ? null : Math.round(sample.rate) });
      return checkpoint?.position ?? null;
    };

    try {
      await this.bulk(projections, shadowStore, generation, () => progress().then(() => undefined));
      if (this.stopped || !live.isLeader) return;
      // Before the copy's runner and the switch: the indexes the bulk phase went without (also after a resume).
      // One table at a time (each builds its indexes side by side): a few connections of the pool, not one per index.
      for (const n of names) await this.shadows.restoreIndexes(n);
      shadow.start();
      for (;;) {
        if (this.stopped) return;
        if (!live.isLeader) {
          // Another process leads the projections now: its worker resumes this job from the copy's checkpoint.
          await shadow.stop();
          this.logger.warn(`rebuild ${job.jobId}: this process no longer leads the projections; leaving the job to the one that does`);
          return;
        }
        await new Promise((r) => setTimeout(r, this.options.progressIntervalMs ?? 1000));
        if (failures.length >= MAX_CONSECUTIVE_FAILURES) throw failures.at(-1);
        const at = await progress();
        const livePosition = live.position;
        if (at && (livePosition === null || comparePositions(at, livePosition) >= 0)) {
          const switched = await this.trySwitch(job, names, generation, shadow, shadowStore);
          if (switched !== null) {
            processed = switched;
            break;
          }
        }
      }
      // The copy's checkpoint went with the switch: the count it held at the switch is the job's.
      await this.jobs.update(job.jobId, { state: 'succeeded', processed, total: processed });
      this.logger.info(`rebuild ${job.jobId}: ${names.join(', ')} switched to the rebuilt tables (generation ${generation}), ${processed} events`);
    } catch (error) {
      await shadow.stop().catch(() => undefined);
      await this.jobs.update(job.jobId, { state: 'failed', error: (error as Error).message });
      this.logger.error(`rebuild ${job.jobId}: ${label} failed: ${(error as Error).message}`);
    } finally {
      this.current = null;
    }
  }

  /**
   * The bulk phase of a rebuild: the log up to its gap-safe head read in
   * large pages of only the projection's own streams (the next page read
   * while this one is folded), documents folded in memory and written once
   * per flush instead of once per batch, rows and checkpoint with them. What
   * the live projector's batch-at-a-time loop would write, with a fraction of
   * the writes. It stops at the head it started from; the copy's runner then
   * follows the feed from there.
   */
  private async bulk(projections: readonly Projection[], shadowStore: ReadModelStore, generation: number, onFlush: () => Promise<void>): Promise<void> {
    const store = this.options.store;
    if (!(store instanceof PostgresEventStore)) return;
    const head = await store.headPosition();
    const names = projections.map((p) => p.name);
    const from = (await shadowStore.checkpoints()).find((c) => c.name === names[0])?.position ?? null;
    if (!head || (from && comparePositions(from, head) >= 0)) return;
    const categories = [...new Set(projections.flatMap(categoriesOf))];
    const docProjections = projections.filter((p) => p.kind === 'doc');
    const page = this.options.bulk?.pageSize ?? BULK_PAGE;
    const flushEvents = this.options.bulk?.flushEvents ?? BULK_FLUSH_EVENTS;
    const docs = new Map<string, Doc>();
    // A copy with no checkpoint is empty (rows and checkpoint commit together): until documents are
    // evicted, the map holds every document it has, and a miss needs no lookup.
    let allInMemory = from === null;
    const dirty = new Map<string, Doc>();
    /** Documents changed since they were last written to the hot store. */
    const unhot = new Map<string, Doc>();
    let rows: HistoryRow[] = [];
    let resets = new Map<string, HistoryReset>();
    let erasures: Erasure[] = [];
    let pending = 0;
    let scanned = 0;
    let last: RecordedEvent | null = null;
    // No projection reads an event's metadata: left out, PostgreSQL renders and Node parses about half as much JSON.
    let next = store.readFeedRange(from, head, categories, page, { withMetadata: false });
    // A read-ahead left behind (on a stop or a failure) must not end the process as an unhandled rejection.
    next.catch(() => undefined);
    // The last flush's commit, still running while the next window is read and folded: one at a time, in order.
    // `commit` serializes its batch before it returns, so the documents folded meanwhile never reach it.
    let committing: Promise<void> | null = null;
    const settle = async () => {
      const inFlight = committing;
      committing = null;
      await inFlight;
    };
    let contended = false;
    let failed = false;
    // The copies' indexes led by player_id, dropped for the load, are built again at the first erasure (once).
    let playerIndexesBuilt = false;
    const playerIndexes = async () => {
      if (playerIndexesBuilt) return;
      playerIndexesBuilt = true;
      for (const name of names) await this.shadows.restoreIndexes(name, LED_BY_PLAYER);
    };
    try {
      for (;;) {
        if (this.stopped || !this.options.live.isLeader || contended) return;
        const { events, scannedTo } = await next;
        const done = scannedTo === null || comparePositions(scannedTo, head) >= 0;
        if (!done) {
          next = store.readFeedRange(scannedTo, head, categories, page, { withMetadata: false });
          next.catch(() => undefined);
        }
        scanned += page;
        if (events.length > 0) {
          if (!allInMemory) for (const projection of docProjections) await this.loadMissing(projection.name, docs, events, projection, shadowStore);
          if (!allInMemory) {
            // An erasure rewrites the player's documents in every world: the copy's ones must be at hand.
            const erased = erasedPlayersOf(projections, events);
            if (erased.length > 0) await playerIndexes();
            for (const [key, doc] of await shadowStore.loadPlayerDocs(erased)) if (!docs.has(key)) docs.set(key, doc);
          }
          // The documents live only in this map (commit and the hot put serialize what they are given), so they fold in place.
          const planned = planBatch(projections, docs, events, { inPlace: true });
          for (const doc of planned.docs) {
            if (generation !== 1) doc.generation = generation;
            const key = docKey(doc.table, doc.streamId);
            docs.set(key, doc);
            dirty.set(key, doc);
            unhot.set(key, doc);
          }
          for (const reset of planned.historyResets) {
            // Rows of earlier pages not written yet: the statement that writes them cannot also update them.
            applyHistoryReset(rows, reset);
            resets.set(`${reset.worldId}|${reset.playerId}`, reset);
          }
          for (const erasure of planned.erasures ?? []) {
            // Rows of earlier pages not written yet; the stored ones are rewritten by the commit.
            applyHistoryErasure(rows, erasure);
            erasures.push(erasure);
          }
          rows.push(...planned.history);
          pending += events.length;
          last = events.at(-1)!;
        }
        if (done || scanned >= flushEvents || rows.length >= BULK_FLUSH_ROWS) {
          // Everything scanned is covered, the other categories' events included.
          const checkpoint = { position: done ? head : scannedTo!, time: last?.created ?? new Date() };
          const changed = [...dirty.values()];
          const evicting = docs.size > BULK_MAX_DOCS;
          // The hot keys are the next generation's, which no one reads before the switch: while every document
          // is in memory, each is written there once, in its last state, at the end (a stop or a crash before
          // then leaves them missing, and readers fill a missing key from the table after the switch). Once
          // documents have been let go (or the phase resumed), the hot keys are written before every commit, as
          // the live projector does, so none is ever older than the copy: a key left behind would be served.
          if (done || evicting || !allInMemory) {
            const hot = [...unhot.values()];
            unhot.clear();
            for (let i = 0; i < hot.length; i += 1000) await this.options.hot.put(hot.slice(i, i + 1000));
          }
          // The last flush's commit must have ended before this one starts.
          await settle();
          // An erasure rewrites the player's stored history rows: looked up by player.
          if (erasures.length > 0) await playerIndexes();
          // Every row is new to the copy (written once, after its checkpoint): COPY, not INSERT … ON CONFLICT.
          // Unless another process writes the copy too (it took over the job while this one had not yet seen
          // that it lost the lead): a row stored twice is a unique violation; this phase then stops, and the
          // copy's runner (whose writes tolerate each other's) goes on from the copy's checkpoint.
          committing = shadowStore
            .commit({ docs: changed, history: rows, historyResets: [...resets.values()], erasures, checkpoint }, names, pending, generation, { historyByCopy: true })
            .then(onFlush, (error: unknown) => {
              if (!isUniqueViolation(error)) throw error;
              this.logger.warn(`rebuild: another process wrote ${names.join(', ')}${REBUILD_SUFFIX} too (${(error as Error).message}); leaving the bulk phase`);
              contended = true;
            });
          // Awaited by the next flush (or the end); a failure meanwhile must not count as unhandled.
          committing.catch(() => undefined);
          dirty.clear();
          rows = [];
          resets = new Map();
          erasures = [];
          pending = 0;
          scanned = 0;
          if (evicting) {
            // Documents are read back from the copy from now on: it must hold this flush's first.
            await settle();
            docs.clear();
            allInMemory = false;
          }
        }
        if (done) return;
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // On every way out (the end, a stop, a failure): the commit in flight ends before the phase does, and
      // its failure is the phase's, unless the phase is failing already (its own error is the one to report).
      if (failed) await settle().catch(() => undefined);
      else await settle();
    }
  }

  /** Documents of these events' streams that the bulk phase has not in memory: from the copy (after a resume, or an eviction). */
  private async loadMissing(table: DocTable, docs: Map<string, Doc>, events: readonly RecordedEvent[], projection: Projection, shadowStore: ReadModelStore): Promise<void> {
    const missing = (docKeysOf([projection], events).get(table) ?? []).filter((streamId) => !docs.has(docKey(table, streamId)));
    if (missing.length === 0) return;
    for (const [key, doc] of await shadowStore.loadDocs(new Map([[table, missing]]))) docs.set(key, doc);
  }

  /**
   * Between two live batches: the copy must stand at or beyond the live
   * projector (what it passed, the live projector applies again after the
   * switch, and the revision guards make that a no-op). A copy that cannot
   * get there within a few seconds leaves the switch for the next round.
   */
  private async trySwitch(job: RebuildJob, names: readonly string[], generation: number, shadow: ProjectionRunner, shadowStore: ReadModelStore): Promise<number | null> {
    const name = names[0]!;
    const live = this.options.live;
    const switched = await live.runExclusive(async (livePosition: Position | null) => {
      // Only the leader's projector may be held and handed the new tables.
      if (!live.isLeader) return null;
      // A live projector with no position yet (nothing committed): the copy must reach the log's head instead.
      const target = livePosition ?? (this.options.store instanceof PostgresEventStore ? await this.options.store.headPosition() : null);
      const deadline = Date.now() + 5000;
      for (;;) {
        const at = (await shadowStore.checkpoints()).find((c) => c.name === name)?.position ?? null;
        if (target === null ? at !== null : at !== null && comparePositions(at, target) >= 0) break;
        if (Date.now() > deadline) return null;
        await new Promise((r) => setTimeout(r, 20));
      }
      await this.jobs.update(job.jobId, { state: 'switching' });
      await shadow.stop();
      const checkpoint = (await shadowStore.checkpoints()).find((c) => c.name === name);
      let retired: string[];
      try {
        retired = await this.shadows.switchAll(names, generation);
      } catch (error) {
        // A reader held a table past the lock timeout: nothing changed; carry on and try again next round.
        if ((error as { code?: string }).code !== '55P03') throw error;
        this.logger.warn(`rebuild ${job.jobId}: the switch of ${names.join(', ')} waited too long for a lock; trying again`);
        await this.jobs.update(job.jobId, { state: 'running' });
        shadow.start();
        return null;
      }
      for (const n of names) live.adopt(n, generation);
      return { retired, processed: checkpoint ? Number(checkpoint.position.prepare) : 0 };
    });
    if (switched === null) return null;
    for (const retired of switched.retired) {
      await this.shadows.dropRetired(retired).catch((error: unknown) => this.logger.warn(`rebuild: could not drop ${retired}: ${(error as Error).message}`));
    }
    return switched.processed;
  }
}
