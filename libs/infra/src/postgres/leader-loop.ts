import type { Pool } from 'pg';
import { AdvisoryLease } from './lease';

export type LeaderLoopOptions = {
  pool: Pool;
  /** The advisory lock: one process per name does the work, the others wait to take over. */
  lockName: string;
  /** Named in log lines. */
  name: string;
  /** The leader's work; when it returns or throws (then with back-off) it is called again while this process leads. */
  work: () => Promise<void>;
  /** The lease was lost (its connection broke): stop the work in progress. */
  onLeaseLost?: () => void;
  onError?: (error: unknown) => void;
  logger?: { warn(msg: string): void };
};

const MAX_BACKOFF_MS = 5000;

/**
 * A background loop that only works while this process holds an advisory
 * lease: take the lease (or wait a second and ask again), work, and on a
 * failure retry with back-off (100 ms doubling to 5 s). `stop()` cuts every
 * wait short. The shape of the memory projector's and the EventStoreDB
 * mirror's main loops.
 */
export class LeaderLoop {
  readonly lease: AdvisoryLease;
  private stopped = true;
  private loop: Promise<void> | null = null;
  private readonly pauses = new Pauses();

  constructor(private readonly options: LeaderLoopOptions) {
    this.lease = new AdvisoryLease(options.pool, options.lockName, () => options.onLeaseLost?.());
  }

  get isLeader(): boolean {
    return this.lease.held;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  start(): void {
    if (this.loop) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Stops: `interrupt` ends the work in progress (e.g. closes its subscription); then the lease goes. */
  async stop(interrupt?: () => Promise<void>): Promise<void> {
    this.stopped = true;
    this.pauses.wakeAll();
    await interrupt?.().catch(() => undefined);
    await this.loop;
    this.loop = null;
    this.lease.release();
  }

  /** A pause that `stop()` cuts short. */
  sleep(ms: number): Promise<void> {
    return this.pauses.sleep(ms);
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      try {
        if (!(await this.lease.acquire())) {
          await this.sleep(1000);
          continue;
        }
        await this.options.work();
        backoff = 100;
      } catch (error) {
        if (this.stopped) break;
        this.options.onError?.(error);
        this.options.logger?.warn(`${this.options.name}: ${(error as Error).message}; retrying in ${backoff} ms`);
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }
}

/** Pauses that can all be cut short at once (a loop being stopped should not sit out its back-off). */
export class Pauses {
  private readonly sleepers = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  wakeAll(): void {
    for (const wake of [...this.sleepers]) wake();
  }
}

/** Runs functions one at a time, in call order (a projector's batches and the sections that must fall between them). */
export class SerialGate {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
