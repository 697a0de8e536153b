import type { Pool } from 'pg';
import { comparePositions, type EventStore } from '@lorestore/event-store';
import { REBUILD_SUFFIX } from '@lorestore/projections';
import { RebuildJobPoller, RebuildJobs, ShadowTables, type RebuildJob } from '@lorestore/replay';
import { MemoryProjector, type MemoryLogger } from './memory-projector';
import { MEMORY_PROJECTION, MemoryStore } from './memory-store';

export type MemoryRebuildOptions = {
  pool: Pool;
  store: EventStore;
  /** The live memory projector: the rebuild runs beside it and switches between two of its batches. */
  live: MemoryProjector;
  /** Whether the live rows feed an external index (the copy's rows then start unsent, and the switch resends them all). */
  external: boolean;
  schema: string;
  batchSize: number;
  logger?: MemoryLogger;
  progressIntervalMs?: number;
};

const silent: MemoryLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * The blue-green rebuild of the vector-index projection, a job like the read
 * models' (`POST /v1/admin/projections/npc_memories/rebuild`): a second
 * projector builds `npc_memories__next` from the start of the log beside the
 * live one; once it has caught up, the live projector is held between two
 * batches, the tables switch in one transaction (ShadowTables) and the
 * projection's generation goes up, which tells every process's embedded
 * index to drop what it cached. Searches keep answering from the live table
 * until the switch. With Pinecone, the new rows are all sent again after the
 * switch (upserts and deletes by id are idempotent).
 */
export class MemoryRebuildWorker {
  private readonly jobs: RebuildJobs;
  private readonly shadows: ShadowTables;
  private readonly logger: MemoryLogger;
  private readonly poller: RebuildJobPoller;
  private copy: MemoryProjector | null = null;
  private stopped = false;

  constructor(private readonly options: MemoryRebuildOptions) {
    this.jobs = new RebuildJobs(options.pool, [MEMORY_PROJECTION]);
    this.shadows = new ShadowTables(options.pool);
    this.logger = options.logger ?? silent;
    this.poller = new RebuildJobPoller({
      jobs: this.jobs,
      leads: () => options.live.isLeader,
      run: (job) => this.run(job),
      intervalMs: options.progressIntervalMs ?? 1000,
      onError: (error) => this.logger.error(`memory rebuild: ${(error as Error).message}`),
    });
  }

  start(): void {
    this.stopped = false;
    this.poller.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.poller.stop(() => this.copy?.stop());
  }

  async run(job: RebuildJob): Promise<void> {
    const name = MEMORY_PROJECTION;
    const { pool, live } = this.options;
    if (job.state === 'switching' && !(await this.shadows.exists(name))) {
      await this.jobs.update(job.jobId, { state: 'succeeded' });
      return;
    }
    if (job.state === 'pending' || !(await this.shadows.exists(name))) await this.shadows.create(name);
    const { rows } = await pool.query<{ n: string; generation: number | null }>(
      'SELECT (SELECT coalesce(max(position), 0) FROM events) AS n, (SELECT generation FROM projection_checkpoints WHERE name = $1) AS generation',
      [name],
    );
    const total = Number(rows[0]!.n);
    const generation = (rows[0]!.generation ?? 1) + 1;
    await this.jobs.update(job.jobId, { state: 'running', total, error: null });
    let failures = 0;
    const copy = new MemoryProjector({
      store: this.options.store,
      pool,
      memories: new MemoryStore(pool, `${name}${REBUILD_SUFFIX}`, this.options.external),
      index: null,
      checkpointName: `${name}${REBUILD_SUFFIX}`,
      batchSize: this.options.batchSize,
      lockName: `lorestore.rebuild.${this.options.schema}.${name}`,
      logger: this.logger,
      onBatch: () => (failures = 0),
      onError: () => failures++,
    });
    this.copy = copy;
    const sample = { at: performance.now(), processed: 0 };
    try {
      copy.start();
      for (;;) {
        await new Promise((r) => setTimeout(r, this.options.progressIntervalMs ?? 1000));
        if (this.stopped) return;
        if (!live.isLeader) {
          this.logger.warn(`memory rebuild ${job.jobId}: this process no longer leads the memory projection; leaving the job to the one that does`);
          return;
        }
        if (failures >= 5) throw new Error(`the copy failed ${failures} times in a row`);
        const at = copy.position;
        const processed = at ? Number(at.prepare) : 0;
        const seconds = (performance.now() - sample.at) / 1000;
        const rate = seconds > 0 ? Math.round((processed - sample.processed) / seconds) : null;
        sample.at = performance.now();
        sample.processed = processed;
        await this.jobs.update(job.jobId, { processed, total: Math.max(total, processed), eventsPerSecond: rate });
        const target = live.position;
        if (at && (target === null || comparePositions(at, target) >= 0) && (await this.trySwitch(job, copy, generation))) break;
      }
      const processed = copy.position ? Number(copy.position.prepare) : 0;
      await this.jobs.update(job.jobId, { state: 'succeeded', processed, total: processed });
      this.logger.info(`memory rebuild ${job.jobId}: ${name} switched to the rebuilt table (generation ${generation})`);
    } catch (error) {
      await this.jobs.update(job.jobId, { state: 'failed', error: (error as Error).message });
      this.logger.error(`memory rebuild ${job.jobId}: failed: ${(error as Error).message}`);
    } finally {
      await copy.stop().catch(() => undefined);
      this.copy = null;
    }
  }

  private async trySwitch(job: RebuildJob, copy: MemoryProjector, generation: number): Promise<boolean> {
    const retired = await this.options.live.runExclusive(async (livePosition) => {
      if (!this.options.live.isLeader) return null;
      const deadline = Date.now() + 5000;
      while (livePosition && !(copy.position && comparePositions(copy.position, livePosition) >= 0)) {
        if (Date.now() > deadline) return null;
        await new Promise((r) => setTimeout(r, 20));
      }
      await this.jobs.update(job.jobId, { state: 'switching' });
      await copy.stop();
      try {
        return await this.shadows.switch(MEMORY_PROJECTION, generation);
      } catch (error) {
        if ((error as { code?: string }).code !== '55P03') throw error;
        this.logger.warn(`memory rebuild ${job.jobId}: the switch waited too long for a lock; trying again`);
        await this.jobs.update(job.jobId, { state: 'running' });
        copy.start();
        return null;
      }
    });
    if (retired === null) return false;
    await this.shadows.dropRetired(retired).catch((error: unknown) => this.logger.warn(`memory rebuild: could not drop ${retired}: ${(error as Error).message}`));
    return true;
  }
}
