import { Pool, type PoolClient, type PoolConfig } from 'pg';

/**
 * No connection for this caller: the wait queue is full (`queue-full`, at
 * once) or the wait outlasted the acquire timeout (`timeout`). The HTTP
 * layer answers 503 with Retry-After; nothing was done.
 */
export class PoolExhaustedError extends Error {
  override readonly name = 'PoolExhaustedError';
  constructor(
    readonly pool: string,
    readonly reason: 'queue-full' | 'timeout',
    readonly waitedMs: number,
  ) {
    super(
      reason === 'queue-full'
        ? `database pool ${pool} is saturated: its wait queue is full`
        : `database pool ${pool}: no connection within ${waitedMs} ms`,
    );
  }
}

export type PoolStats = {
  name: string;
  max: number;
  /** Connections checked out. */
  inUse: number;
  idle: number;
  /** Callers queued for a connection. */
  waiting: number;
  /** How long the oldest queued caller has waited, in ms (0 with no queue). */
  oldestWaitMs: number;
};

export type BoundedPoolOptions = PoolConfig & {
  /** Label in metrics and errors: `primary`, `replica-1`, … */
  name: string;
  /** Callers allowed to wait for a connection; the next one is refused at once. */
  queueMax: number;
  /** Longest wait for a connection (also the connect timeout of a new one). */
  acquireTimeoutMs: number;
  /** Each granted connection, with how long its caller waited. */
  onAcquire?: (waitedMs: number) => void;
  onExhausted?: (reason: PoolExhaustedError['reason']) => void;
};

type ConnectCallback = (err: Error | undefined, client: PoolClient | undefined, done: (release?: unknown) => void) => void;

const POOL_TIMEOUT = 'timeout exceeded when trying to connect';

/**
 * A pg Pool with a bounded wait queue. Every path through the pool
 * (`pool.query` calls `connect` too) either gets a connection within the
 * acquire timeout or a PoolExhaustedError: never an unbounded queue, never a
 * hang. Connections are still released by their users (or by `pool.query`);
 * a refused caller never held one, so nothing can leak through a refusal.
 */
export class BoundedPool extends Pool {
  readonly name: string;
  readonly queueMax: number;
  readonly acquireTimeoutMs: number;
  private readonly maxSize: number;
  private readonly waiters = new Set<number>();
  private readonly onAcquire?: (waitedMs: number) => void;
  private readonly onExhausted?: (reason: PoolExhaustedError['reason']) => void;

  constructor({ name, queueMax, acquireTimeoutMs, onAcquire, onExhausted, ...config }: BoundedPoolOptions) {
    super({ ...config, connectionTimeoutMillis: acquireTimeoutMs });
    this.name = name;
    this.queueMax = queueMax;
    this.acquireTimeoutMs = acquireTimeoutMs;
    this.maxSize = config.max ?? 10;
    this.onAcquire = onAcquire;
    this.onExhausted = onExhausted;
  }

  stats(): PoolStats {
    let oldest = Infinity;
    for (const started of this.waiters) oldest = Math.min(oldest, started);
    return {
      name: this.name,
      max: this.maxSize,
      inUse: this.totalCount - this.idleCount,
      idle: this.idleCount,
      waiting: this.waitingCount,
      oldestWaitMs: oldest === Infinity ? 0 : Math.max(0, performance.now() - oldest),
    };
  }

  override connect(): Promise<PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<PoolClient> | void {
    const wouldQueue = this.idleCount === 0 && this.totalCount >= this.maxSize;
    if (wouldQueue && this.waitingCount >= this.queueMax) {
      const error = new PoolExhaustedError(this.name, 'queue-full', 0);
      this.onExhausted?.('queue-full');
      if (callback) {
        process.nextTick(() => callback(error, undefined, () => undefined));
        return;
      }
      return Promise.reject(error);
    }
    const started = performance.now();
    // Several callers may start in the same millisecond: nudge to keep the set's keys distinct.
    let key = started;
    while (this.waiters.has(key)) key += 1e-6;
    this.waiters.add(key);
    const settle = (err: Error | undefined): Error | undefined => {
      this.waiters.delete(key);
      const waited = performance.now() - started;
      if (!err) {
        this.onAcquire?.(waited);
        return undefined;
      }
      if (err.message === POOL_TIMEOUT) {
        this.onExhausted?.('timeout');
        return new PoolExhaustedError(this.name, 'timeout', Math.round(waited));
      }
      return err;
    };
    if (callback) {
      super.connect((err, client, done) => callback(settle(err), client, done));
      return;
    }
    return super.connect().then(
      (client) => {
        settle(undefined);
        return client;
      },
      (err: Error) => {
        throw settle(err);
      },
    );
  }
}
