import { Inject, Injectable } from '@nestjs/common';
import type { Pool, QueryResult, QueryResultRow } from 'pg';
import type { Position } from '@lorestore/event-store';
import type { Doc, DocTable, HotDoc, HotStateStore, ReadModelStore } from '@lorestore/projections';
import { APP_CONFIG, type AppConfig } from '../config';
import { Problem } from '../http/problem';
import { Metrics } from '../metrics/metrics';
import type { Database } from '../persistence/database';
import { DATABASE, PG_POOL } from '../persistence/tokens';
import { HOT_STATE, READ_MODELS } from '../projections/projections.providers';
import { ProjectionsService } from '../projections/projections.service';

const timeout = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());

/**
 * The read side: documents cache-aside (hot state, then PostgreSQL, which
 * fills the hot state), and the wait for a consistency token.
 */
@Injectable()
export class ReadModels {
  constructor(
    @Inject(HOT_STATE) private readonly hot: HotStateStore,
    @Inject(READ_MODELS) private readonly store: ReadModelStore,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(DATABASE) private readonly database: Database,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly projections: ProjectionsService,
    private readonly metrics: Metrics,
  ) {}

  /**
   * The in-process hot state only sees the writes of a projector in this
   * process: any other instance answers from PostgreSQL, or it would keep
   * serving what it once filled.
   */
  private get hotUsable(): boolean {
    return this.hot.kind !== 'memory' || this.projections.runner?.isLeader === true;
  }

  /**
   * A read-model query on the primary or a read replica (REPLICA_READ_SHARE
   * of reads, to replicas in rotation that have replayed `fence`).
   */
  async query<R extends QueryResultRow>(sql: string, params: unknown[], fence?: bigint): Promise<QueryResult<R>> {
    return this.database.read(fence, (pool) => pool.query<R>(sql, params), this.countRead);
  }

  private readonly countRead = (target: string) => this.metrics.readsRouted.inc({ target });

  async doc(table: DocTable, worldId: string, id: string, fence?: bigint): Promise<HotDoc | null> {
    if (!this.hotUsable) return this.fromPostgres(table, worldId, id, fence);
    const plan = this.projections.hotReadPlan(table);
    if (plan ? plan.bypassed : await this.projections.hotBypassed()) return this.fromPostgres(table, worldId, id, fence);
    const generation = plan ? plan.generation : await this.projections.generation(table).catch(() => 1);
    let hit: HotDoc | null | 'timeout' | 'error';
    let timer: NodeJS.Timeout | undefined;
    try {
      hit = await Promise.race([
        this.hot.get(table, worldId, id, generation),
        new Promise<'timeout'>((resolve) => {
          // The timer phase runs before I/O: on a busy event loop a reply that arrived in time would
          // lose to a late timer. setImmediate runs after the I/O phase, so such a reply wins.
          timer = setTimeout(() => setImmediate(() => resolve('timeout')), this.config.REDIS_READ_TIMEOUT_MS);
        }),
      ]);
    } catch {
      hit = 'error';
    } finally {
      clearTimeout(timer);
    }
    if (hit !== null && hit !== 'timeout' && hit !== 'error') {
      this.metrics.hotReads.inc({ result: 'hit' });
      return hit;
    }
    this.metrics.hotReads.inc({ result: hit === null ? 'miss' : hit });
    let fromReplica = false;
    const doc = await this.database.read(fence, (pool, target) => {
      fromReplica = target.replica;
      return this.store.getDoc(table, worldId, id, pool);
    }, this.countRead);
    if (!doc) return null;
    // Fill only on a clean miss (a slow or failing hot store gets no extra load) and only from the
    // primary: the write is revision-guarded, so it cannot replace a newer document, but a replica's
    // older one could land in a key the projector's newer write had left (evicted) and stay there.
    if (hit === null && !fromReplica) this.fill({ ...doc, generation });
    return { revision: doc.revision, position: doc.position, state: doc.state, updatedAt: doc.updatedAt };
  }

  private async fromPostgres(table: DocTable, worldId: string, id: string, fence?: bigint): Promise<HotDoc | null> {
    const doc = await this.database.read(fence, (pool) => this.store.getDoc(table, worldId, id, pool), this.countRead);
    return doc ? { revision: doc.revision, position: doc.position, state: doc.state, updatedAt: doc.updatedAt } : null;
  }

  private fill(doc: Doc): void {
    this.hot.put([doc]).catch(() => undefined);
  }

  /**
   * Waits until the projections have applied the event at `minPosition`
   * (a command's `position`), or answers 504 after CONSISTENCY_WAIT_MS.
   * With read replicas, answers the fence a replica must have replayed to
   * show that state: the primary's WAL position once it shows it.
   */
  async waitFor(projection: string, minPosition: number | undefined): Promise<bigint | undefined> {
    if (minPosition === undefined || minPosition === 0) return undefined;
    await this.waitOnPrimary(projection, minPosition);
    return this.database.router.needsFence ? this.database.router.primaryLsn() : undefined;
  }

  private async waitOnPrimary(projection: string, minPosition: number): Promise<void> {
    const deadline = Date.now() + this.config.CONSISTENCY_WAIT_MS;
    let target: Position | 'gap' | null = null;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      target ??= await this.feedPosition(BigInt(minPosition));
      if (target !== null) {
        const checkpoint = (await this.projections.checkpoints()).get(projection);
        // A position no committed event holds (a rolled-back append) has nothing to wait for.
        if (target === 'gap' || ProjectionsService.covers(checkpoint, target)) return;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Problem(
          504,
          'consistency-timeout',
          'Not caught up',
          `the ${projection} read model did not reach position ${minPosition} within ${this.config.CONSISTENCY_WAIT_MS} ms`,
          {},
          { 'retry-after': '1' },
        );
      }
      await (this.projections.runner?.isLeader ? this.projections.nextCommit(Math.min(left, 50), projection) : timeout(Math.min(delay, left)));
    }
  }

  /**
   * Where the event at this position sits in the feed's order (its
   * transaction, then its position); null while it is not committed;
   * 'gap' for a position no committed event holds below the head (a rolled-back append).
   */
  private async feedPosition(prepare: bigint): Promise<Position | 'gap' | null> {
    const { rows } = await this.pool.query<{ commit: string | null; beyond: boolean }>(
      `SELECT (SELECT transaction_id::text FROM events WHERE position = $1) AS commit,
              EXISTS (SELECT 1 FROM events WHERE position > $1 AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())) AS beyond`,
      [prepare.toString()],
    );
    const row = rows[0]!;
    if (row.commit !== null) return { commit: BigInt(row.commit), prepare };
    return row.beyond ? 'gap' : null;
  }
}
