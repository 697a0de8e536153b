import { Logger } from '@nestjs/common';
import type { Pool } from 'pg';
import { AutoscaleSignal, PoolExhaustedError, ReadRouter, createPostgresPool, isConnectionError, type BoundedPool, type PoolStats, type ReadTarget } from '@lorestore/infra';
import type { AppConfig } from '../config';
import type { Metrics } from '../metrics/metrics';

const logger = new Logger('Database');

/** `postgres://user:secret@host:5432/db` → `host:5432/db`, for logs and status pages. */
const redact = (url: string): string => {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return 'replica';
  }
};

/**
 * The service's connections: the primary pool (writes, the log, and every
 * read that must be current), one pool per read replica with the router
 * that spreads read-model reads over them, and the autoscale signal
 * computed from all the pools' queues.
 */
export class Database {
  readonly primary: BoundedPool;
  readonly replicas: BoundedPool[];
  readonly router: ReadRouter;
  readonly autoscale: AutoscaleSignal;
  private autoscaleTimer: NodeJS.Timeout | null = null;

  constructor(config: AppConfig, databaseUrl: string, metrics: Metrics) {
    const observe = (name: string) => ({
      onAcquire: (ms: number) => {
        metrics.poolWait.observe({ pool: name }, ms / 1000);
        this.autoscale.observeWait(ms);
      },
      onExhausted: (reason: string) => metrics.poolExhausted.inc({ pool: name, reason }),
      onIdleError: (error: Error) => logger.warn(`${name}: idle connection lost: ${error.message}`),
    });
    this.primary = createPostgresPool({
      url: databaseUrl,
      schema: config.DATABASE_SCHEMA,
      name: 'primary',
      min: config.DATABASE_POOL_MIN,
      max: config.DATABASE_POOL_MAX,
      queueMax: config.POOL_QUEUE_MAX,
      acquireTimeoutMs: config.POOL_ACQUIRE_TIMEOUT_MS,
      applicationName: 'lorestore-state-api',
      ...observe('primary'),
    });
    this.replicas = (config.DATABASE_REPLICA_URLS ?? []).map((url, i) =>
      createPostgresPool({
        url,
        schema: config.DATABASE_SCHEMA,
        name: `replica-${i + 1}`,
        min: config.REPLICA_POOL_MIN,
        max: config.REPLICA_POOL_MAX,
        queueMax: config.POOL_QUEUE_MAX,
        acquireTimeoutMs: config.POOL_ACQUIRE_TIMEOUT_MS,
        applicationName: 'lorestore-state-api-reads',
        ...observe(`replica-${i + 1}`),
      }),
    );
    const hosts = new Map((config.DATABASE_REPLICA_URLS ?? []).map((url, i) => [`replica-${i + 1}`, redact(url)]));
    this.router = new ReadRouter({
      primary: this.primary,
      replicas: this.replicas.map((pool, i) => ({ name: `replica-${i + 1}`, pool })),
      share: config.REPLICA_READ_SHARE,
      maxLagMs: config.REPLICA_MAX_LAG_MS,
      sampleMs: config.REPLICA_SAMPLE_MS,
      onRotationChange: (name, inRotation, why) =>
        logger[inRotation ? 'log' : 'warn'](`${name} (${hosts.get(name)}) ${inRotation ? 'in' : 'out of'} rotation: ${why}`),
    });
    this.autoscale = new AutoscaleSignal(
      { upQueue: config.AUTOSCALE_UP_QUEUE, upWaitMs: config.AUTOSCALE_UP_WAIT_MS, downQueue: config.AUTOSCALE_DOWN_QUEUE, downWindowMs: config.AUTOSCALE_DOWN_WINDOW_MS },
      () => this.poolStats(),
    );
    metrics.registerPools(() => this.poolStats());
    metrics.registerReplicas(() => this.router.statuses());
    metrics.registerAutoscale(this.autoscale);
  }

  poolStats(): PoolStats[] {
    return [this.primary.stats(), ...this.replicas.map((p) => p.stats())];
  }

  /** Replica sampling, and the autoscale rule four times a second. */
  async start(): Promise<void> {
    this.autoscale.evaluate();
    this.autoscaleTimer = setInterval(() => this.autoscale.evaluate(), 250);
    this.autoscaleTimer.unref();
    await this.router.start();
  }

  /**
   * One read-model read on the target the router picks (`fence`: the primary
   * LSN it must see, for read-your-writes). When a replica fails it for
   * want of the replica (gone, restarting, saturated, or a query cancelled by
   * a recovery conflict), the replica leaves rotation and the primary
   * answers: a replica's trouble never reaches the client.
   */
  async read<T>(fence: bigint | undefined, work: (pool: Pool, target: ReadTarget) => Promise<T>, onTarget?: (name: string) => void): Promise<T> {
    const target = this.router.pick(fence);
    onTarget?.(target.name);
    try {
      return await work(target.pool, target);
    } catch (error) {
      if (!target.replica) throw error;
      const replicaTrouble = isConnectionError(error) || error instanceof PoolExhaustedError || (error as { code?: string }).code === '40001';
      if (!replicaTrouble) throw error;
      if (!(error instanceof PoolExhaustedError)) this.router.markDown(target.name, error as Error);
      onTarget?.(this.router.primary.name);
      return work(this.router.primary.pool, this.router.primary);
    }
  }

  async close(): Promise<void> {
    if (this.autoscaleTimer) clearInterval(this.autoscaleTimer);
    await this.router.stop();
    await Promise.all(this.replicas.map((p) => p.end()));
    await this.primary.end();
  }
}
