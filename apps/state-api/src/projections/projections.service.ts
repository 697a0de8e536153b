import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Pool } from 'pg';
import { comparePositions, type EsdbMirror, type EventStore, type MirroredEventStore, type Position } from '@lorestore/event-store';
import { ALL_PROJECTIONS, type HotStateStore, type ProjectionFailure, type ProjectionRunner, type ReadModelStore } from '@lorestore/projections';
import { APP_CONFIG, type AppConfig } from '../config';
import { Metrics } from '../metrics/metrics';
import { ESDB_MIRROR, EVENT_STORE, PG_POOL } from '../persistence/tokens';
import type { RebuildWorker } from '@lorestore/replay';
import { MEMORY_PROJECTION, type MemoryProjector, type MemoryRebuildWorker, type MemoryStore, type VectorIndex } from '@lorestore/semantic-memory';
import { HOT_STATE, MEMORY_STORE, READ_MODELS, VECTOR_INDEX, createMemoryProjection, createRebuildWorker, createRunner } from './projections.providers';

export type ProjectionStatus = {
  name: string;
  version: number;
  /** The position (a command's `position` token) of the last event applied; null before the first. */
  checkpoint: number | null;
  /** The transaction of that event: the checkpoint's place in the feed is (commit, position). */
  checkpointCommit: string | null;
  lag: { events: number; ms: number };
  eventsProcessed: number;
  updatedAt: string | null;
  status: 'not_started' | 'caught_up' | 'catching_up' | 'stalled';
  /**
   * The live projector's failures since this projection's last committed batch
   * (null: none): the last error, how many in a row, since when, at which checkpoint.
   */
  error: { message: string; failures: number; since: string; lastAt: string; checkpoint: number | null } | null;
};

/** Counting further than this costs more than it tells. */
const LAG_COUNT_LIMIT = 100_000;
/** The mirror's lag is counted by reading EventStoreDB's $all: a smaller bound. */
const MIRROR_LAG_COUNT_LIMIT = 10_000;
const STALLED_AFTER_MS = 30_000;

const errorOf = (failure: ProjectionFailure | undefined): ProjectionStatus['error'] =>
  failure
    ? {
        message: failure.message,
        failures: failure.failures,
        since: failure.since.toISOString(),
        lastAt: failure.lastAt.toISOString(),
        checkpoint: failure.checkpoint === null ? null : Number(failure.checkpoint),
      }
    : null;

/**
 * A value read from PostgreSQL at most once per `ttlMs` however many callers
 * ask: the latest read's promise, and its value once it has come (what a
 * caller can use without waiting). A failed read is forgotten, so the next
 * caller reads again.
 */
class Recent<T> {
  private entry: { at: number; value: Promise<T>; known?: T } | null = null;

  constructor(
    private readonly ttlMs: number,
    private readonly load: () => Promise<T>,
  ) {}

  get(): { value: Promise<T>; known?: T } {
    const now = Date.now();
    if (!this.entry || now - this.entry.at > this.ttlMs) {
      const entry: { at: number; value: Promise<T>; known?: T } = { at: now, value: this.load() };
      this.entry = entry;
      entry.value.then(
        (value) => (entry.known = value),
        () => {
          if (this.entry === entry) this.entry = null;
        },
      );
    }
    return this.entry;
  }
}

/**
 * The projections as this process sees them: runs them when PROJECTOR=inline,
 * knows every checkpoint either way (from the runner, else from PostgreSQL),
 * reports lag, and closes the hot store on shutdown.
 */
@Injectable()
export class ProjectionsService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Projector');
  readonly runner: ProjectionRunner | null;
  private readonly rebuilds: RebuildWorker | null;
  /** The NPC memory index's projection, run beside the read models'. */
  readonly memoryProjector: MemoryProjector | null;
  private readonly memoryRebuilds: MemoryRebuildWorker | null;
  private readonly storedCheckpoints: Recent<Map<string, Position>>;
  private readonly generations: Recent<Map<string, number>>;
  private readonly bypassed: Recent<boolean>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(READ_MODELS) private readonly readModels: ReadModelStore,
    @Inject(HOT_STATE) private readonly hot: HotStateStore,
    @Inject(MEMORY_STORE) memories: MemoryStore,
    @Inject(VECTOR_INDEX) private readonly vectorIndex: VectorIndex,
    @Inject(ESDB_MIRROR) private readonly mirror: EsdbMirror | null,
    metrics: Metrics,
  ) {
    this.runner =
      config.PROJECTOR === 'inline'
        ? createRunner(config, {
            store,
            pool,
            readModels,
            hot,
            metrics,
            logger: this.logger,
          })
        : null;
    this.rebuilds = this.runner ? createRebuildWorker(config, { store, pool, hot, runner: this.runner, logger: this.logger }) : null;
    const memory = this.runner ? createMemoryProjection(config, { store, pool, readModels, memories, index: vectorIndex, metrics, logger: this.logger }) : null;
    this.memoryProjector = memory?.projector ?? null;
    this.memoryRebuilds = memory?.rebuilds ?? null;
    metrics.registerProjectionLag(() => this.statuses());
    this.storedCheckpoints = new Recent(5, () => readModels.checkpoints().then((list) => new Map(list.map((c) => [c.name, c.position]))));
    this.generations = new Recent(1000, () => readModels.checkpoints().then((list) => new Map(list.map((c) => [c.name, c.generation]))));
    this.bypassed = new Recent(250, () =>
      readModels.hotBypass().then(
        (row) => row !== null,
        () => true,
      ),
    );
  }

  onApplicationBootstrap(): void {
    this.runner?.start();
    this.rebuilds?.start();
    this.memoryProjector?.start();
    this.memoryRebuilds?.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.memoryRebuilds?.stop();
    await this.memoryProjector?.stop();
    await this.vectorIndex.close();
    await this.rebuilds?.stop();
    await this.runner?.stop();
    await this.hot.close();
  }

  /**
   * Every projection's committed checkpoint. The inline runner knows its own
   * the moment it commits; otherwise PostgreSQL is asked, at most every few
   * milliseconds however many readers are waiting.
   */
  async checkpoints(): Promise<Map<string, Position>> {
    const own = this.runner?.isLeader ? this.runner.position : null;
    const memory = this.memoryProjector?.isLeader ? this.memoryProjector.position : null;
    if (own && memory) return new Map([...this.runner!.names.map((n): [string, Position] => [n, own]), [MEMORY_PROJECTION, memory]]);
    return this.storedCheckpoints.get().value;
  }

  /**
   * The hot-state key generation readers use for a projection (a rebuild's
   * switch raises it). The leading inline runner knows it at once; otherwise
   * PostgreSQL is asked at most once a second: for that long after a switch a
   * reader may still get the old generation's document, which was right a
   * moment ago and is no longer written.
   */
  async generation(projection: string): Promise<number> {
    if (this.runner?.isLeader) return this.runner.generationOf(projection);
    return (await this.generations.get().value).get(projection) ?? 1;
  }

  /**
   * What a hot read needs, when it is known without waiting: whether the hot
   * store is bypassed and the projection's key generation (as hotBypassed()
   * and generation() answer them). Null while either is being fetched: then
   * the caller awaits those. Saves a read two turns of the event loop.
   */
  hotReadPlan(projection: string): { bypassed: boolean; generation: number } | null {
    if (this.runner?.isLeader) return { bypassed: this.runner.hotBypassed, generation: this.runner.generationOf(projection) };
    const bypassed = this.bypassed.get().known;
    if (bypassed === undefined) return null;
    // Bypassed: the generation is not needed (nor fetched, as before).
    if (bypassed) return { bypassed, generation: 1 };
    const generations = this.generations.get().known;
    return generations === undefined ? null : { bypassed, generation: generations.get(projection) ?? 1 };
  }

  /**
   * Whether the projector is committing the read models without the hot
   * store (Redis refused its writes): then reads skip the hot store. The
   * leading inline runner knows at once; otherwise PostgreSQL is asked at
   * most every 250 ms (the projector waits 1 s after saying so before
   * PostgreSQL moves past the hot store). Unknown counts as bypassed.
   */
  async hotBypassed(): Promise<boolean> {
    if (this.runner?.isLeader) return this.runner.hotBypassed;
    return this.bypassed.get().value;
  }

  /** EventStoreDB mode: whether this process writes the mirror (null in PostgreSQL mode). */
  get mirrorLeads(): boolean | null {
    return this.mirror ? this.mirror.isLeader : null;
  }

  /** Resolves on the next commit of the inline runner (or of the memory projection, for it), or after `ms`. */
  nextCommit(ms: number, projection?: string): Promise<void> {
    if (projection === MEMORY_PROJECTION && this.memoryProjector) return this.memoryProjector.nextCommit(ms);
    return new Promise((resolve) => {
      const cancel = this.runner?.onceCommitted(() => {
        clearTimeout(timer);
        resolve();
      });
      const timer = setTimeout(() => {
        cancel?.();
        resolve();
      }, ms);
    });
  }

  async statuses(): Promise<ProjectionStatus[]> {
    const [checkpoints, failures] = await Promise.all([this.readModels.checkpoints(), this.readModels.failures()]);
    const stored = new Map(checkpoints.map((c) => [c.name, c]));
    // Projections run together share a checkpoint: count the lag once per distinct one.
    const lags = new Map<string, Promise<{ events: number; ms: number }>>();
    const lagOf = (position: Position | null) => {
      const key = position ? `${position.commit}/${position.prepare}` : 'start';
      if (!lags.has(key)) lags.set(key, this.lag(position));
      return lags.get(key)!;
    };
    const mirror = this.mirror ? [this.mirrorStatus()] : [];
    const projections = Promise.all(
      [...ALL_PROJECTIONS, { name: MEMORY_PROJECTION, version: 1 }].map(async (p): Promise<ProjectionStatus> => {
        const c = stored.get(p.name);
        const behind = await lagOf(c?.position ?? null);
        const idleMs = c ? Date.now() - c.updatedAt.getTime() : 0;
        return {
          name: p.name,
          version: p.version,
          checkpoint: c ? Number(c.position.prepare) : null,
          checkpointCommit: c ? c.position.commit.toString() : null,
          lag: behind,
          eventsProcessed: c ? Number(c.events) : 0,
          updatedAt: c ? c.updatedAt.toISOString() : null,
          status: !c ? 'not_started' : behind.events === 0 ? 'caught_up' : idleMs > STALLED_AFTER_MS ? 'stalled' : 'catching_up',
          // Caught up, it has nothing left to fail on (a record from before a quiet spell goes with the next batch).
          error: behind.events === 0 ? null : errorOf(failures.get(p.name)),
        };
      }),
    );
    return [...(await Promise.all(mirror)), ...(await projections)];
  }

  /**
   * EventStoreDB mode: the mirror as a projection of EventStoreDB's log.
   * `checkpoint` is EventStoreDB's prepare position of the last event
   * mirrored; lag counts the events of EventStoreDB's $all after it (up to a
   * limit) and the age of the oldest of them.
   */
  private async mirrorStatus(): Promise<ProjectionStatus> {
    const status = await this.mirror!.status();
    const esdb = (this.store as MirroredEventStore).esdb;
    const behind = await esdb
      .readAll({ fromPosition: status.position ?? 'start', maxCount: MIRROR_LAG_COUNT_LIMIT })
      .catch(() => null);
    const pending = behind && (status.position ? behind.filter((e) => comparePositions(e.position, status.position!) > 0) : behind);
    // EventStoreDB unreachable: -1, and the status says stalled.
    const lag = pending ? { events: pending.length, ms: pending[0] ? Math.max(0, Date.now() - pending[0].created.getTime()) : 0 } : { events: -1, ms: -1 };
    const idleMs = status.updatedAt ? Date.now() - status.updatedAt.getTime() : 0;
    return {
      name: 'esdb_mirror',
      version: 1,
      checkpoint: status.position ? Number(status.position.prepare) : null,
      checkpointCommit: status.position ? status.position.commit.toString() : null,
      lag,
      eventsProcessed: status.events,
      updatedAt: status.updatedAt?.toISOString() ?? null,
      status: lag.events < 0 ? 'stalled' : lag.events === 0 ? (status.position ? 'caught_up' : 'not_started') : idleMs > STALLED_AFTER_MS ? 'stalled' : 'catching_up',
      error: null,
    };
  }

  /** Events of the feed after a checkpoint (counted up to a limit), and how long the oldest of them has waited. */
  private async lag(after: Position | null): Promise<{ events: number; ms: number }> {
    const { rows } = await this.pool.query<{ events: string; oldest: Date | null }>(
      `SELECT count(*) AS events, min(created_at) AS oldest FROM (
         SELECT created_at FROM events
          WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            AND ($1::text IS NULL OR (transaction_id, position) > ($1::text::xid8, $2::bigint))
          ORDER BY transaction_id, position LIMIT ${LAG_COUNT_LIMIT}) AS pending`,
      [after ? after.commit.toString() : null, after ? after.prepare.toString() : null],
    );
    const events = Number(rows[0]!.events);
    return { events, ms: events === 0 || !rows[0]!.oldest ? 0 : Math.max(0, Date.now() - rows[0]!.oldest.getTime()) };
  }

  /** Whether a checkpoint has passed the event at `target` in feed order. */
  static covers(checkpoint: Position | undefined, target: Position): boolean {
    return checkpoint !== undefined && comparePositions(checkpoint, target) >= 0;
  }
}
