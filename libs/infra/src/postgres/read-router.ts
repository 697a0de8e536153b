import type { Pool } from 'pg';

/** A WAL position (LSN) as a number: `16/B374D848` → 0x16B374D848. */
export const parseLsn = (text: string): bigint => {
  const [hi, lo] = text.split('/');
  if (hi === undefined || lo === undefined) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
};

export type ReplicaStatus = {
  name: string;
  /** Answered its last sample. */
  up: boolean;
  /** Takes reads now: up, lag within the bound, replaying. */
  inRotation: boolean;
  /** Measured lag behind the primary in ms (null while down or never sampled). */
  lagMs: number | null;
  replayLsn: string | null;
  paused: boolean;
  error?: string;
};

export type ReadTarget = { pool: Pool; name: string; replica: boolean };

export type ReadRouterOptions = {
  primary: Pool;
  replicas: readonly { name: string; pool: Pool }[];
  /** Share of reads sent to replicas when one is in rotation (0…1). */
  share: number;
  /** A replica further behind than this is taken out of rotation. */
  maxLagMs: number;
  /** How often the primary's and each replica's WAL positions are sampled. */
  sampleMs: number;
  /** A sample slower than this counts as a failure (the replica is taken out). */
  sampleTimeoutMs?: number;
  random?: () => number;
  now?: () => number;
  onSampleError?: (replica: string, error: Error) => void;
  onRotationChange?: (replica: string, inRotation: boolean, why: string) => void;
};

type Replica = {
  name: string;
  pool: Pool;
  up: boolean;
  replay: bigint | null;
  paused: boolean;
  lagMs: number | null;
  inRotation: boolean;
  error?: string;
};

/** Primary samples kept to turn a replica's replay position into a lag in time. */
const HISTORY = 600;

/**
 * Sends reads to streaming replicas by a share, chosen by measured lag, and
 * the rest (and everything no replica can answer) to the primary.
 *
 * Lag is measured in time from WAL positions: every `sampleMs` the primary's
 * current (insert) LSN is recorded with the time; a replica whose replay LSN is `r`
 * lags by the age of the oldest primary sample beyond `r` (zero when it has
 * replayed the newest). An idle primary thus never makes a healthy replica
 * look late, and a replica paused or cut off falls out of rotation as soon
 * as the primary moves on without it.
 *
 * Read-your-writes: a read that must see a write carries a fence (the
 * primary's LSN taken after the write was visible there); it goes only to a
 * replica whose replay LSN has reached the fence, else to the primary.
 */
export class ReadRouter {
  private readonly replicas: Replica[];
  private readonly history: { at: number; lsn: bigint }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sampling: Promise<void> | null = null;
  private readonly random: () => number;
  private readonly now: () => number;
  readonly primary: ReadTarget;

  constructor(private readonly options: ReadRouterOptions) {
    if (!(options.share >= 0 && options.share <= 1)) throw new Error(`replica share must be within 0…1, not ${options.share}`);
    this.primary = { pool: options.primary, name: 'primary', replica: false };
    this.replicas = options.replicas.map((r) => ({ name: r.name, pool: r.pool, up: false, replay: null, paused: false, lagMs: null, inRotation: false }));
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => performance.now());
  }

  get hasReplicas(): boolean {
    return this.replicas.length > 0;
  }

  /** Samples at once, then every `sampleMs` until stop(). */
  async start(): Promise<void> {
    if (!this.hasReplicas || this.timer) return;
    await this.sample();
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.sample().finally(() => {
          if (this.timer) tick();
        });
      }, this.options.sampleMs);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.sampling;
  }

  /** One round: the primary's LSN, then every replica's replay position (concurrently). */
  sample(): Promise<void> {
    this.sampling ??= this.sampleOnce().finally(() => {
      this.sampling = null;
    });
    return this.sampling;
  }

  private async sampleOnce(): Promise<void> {
    try {
      const lsn = await this.withTimeout(this.primaryLsn());
      this.history.push({ at: this.now(), lsn });
      if (this.history.length > HISTORY) this.history.shift();
    } catch {
      // The primary is down: keep judging replicas on what was sampled before.
    }
    await Promise.all(this.replicas.map((r) => this.sampleReplica(r)));
  }

  private async sampleReplica(replica: Replica): Promise<void> {
    try {
      const { rows } = await this.withTimeout(
        replica.pool.query<{ lsn: string | null; paused: boolean }>(
          'SELECT pg_last_wal_replay_lsn()::text AS lsn, pg_is_in_recovery() AND pg_is_wal_replay_paused() AS paused',
        ),
      );
      const row = rows[0]!;
      replica.up = true;
      replica.error = undefined;
      replica.replay = row.lsn === null ? null : parseLsn(row.lsn);
      replica.paused = row.paused;
      replica.lagMs = replica.replay === null ? null : this.lagOf(replica.replay);
    } catch (error) {
      replica.up = false;
      replica.lagMs = null;
      replica.error = error instanceof Error ? error.message : String(error);
      this.options.onSampleError?.(replica.name, error as Error);
    }
    const inRotation = replica.up && replica.lagMs !== null && replica.lagMs <= this.options.maxLagMs;
    if (inRotation !== replica.inRotation) {
      replica.inRotation = inRotation;
      const why = !replica.up ? `down: ${replica.error}` : replica.lagMs === null ? 'not replaying' : `lag ${Math.round(replica.lagMs)} ms`;
      this.options.onRotationChange?.(replica.name, inRotation, why);
    }
  }

  /** How long the primary has been beyond `replay`: the age of its oldest sample past it. */
  private lagOf(replay: bigint): number {
    const newest = this.history.at(-1);
    if (!newest || replay >= newest.lsn) return 0;
    const now = this.now();
    for (const sample of this.history) if (sample.lsn > replay) return now - sample.at;
    return now - this.history[0]!.at;
  }

  private withTimeout<T>(work: Promise<T>): Promise<T> {
    const ms = this.options.sampleTimeoutMs ?? Math.max(1000, this.options.maxLagMs * 5);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      work,
      new Promise<T>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /**
   * The primary's current WAL insert position: the fence for a read that must
   * see what is committed now. The insert position, not the write position
   * (`pg_current_wal_lsn()`): a transaction committed with synchronous_commit
   * off (the read models' are) can be visible on the primary while its commit
   * record still sits in WAL buffers, beyond the write position.
   */
  async primaryLsn(): Promise<bigint> {
    const { rows } = await this.options.primary.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    return parseLsn(rows[0]!.lsn);
  }

  /**
   * Where one read goes. With a fence, only a replica that has replayed it
   * qualifies. Among those in rotation, a replica is drawn with weight
   * 1 / (1 + lag/10 ms), so a lagging one gets fewer reads; with none, the primary.
   */
  pick(fence?: bigint): ReadTarget {
    if (this.replicas.length === 0 || this.random() >= this.options.share) return this.primary;
    const eligible = this.replicas.filter((r) => r.inRotation && (fence === undefined || (r.replay !== null && r.replay >= fence)));
    if (eligible.length === 0) return this.primary;
    const weights = eligible.map((r) => 1 / (1 + (r.lagMs ?? 0) / 10));
    let draw = this.random() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < eligible.length; i++) {
      draw -= weights[i]!;
      if (draw <= 0) return { pool: eligible[i]!.pool, name: eligible[i]!.name, replica: true };
    }
    const last = eligible.at(-1)!;
    return { pool: last.pool, name: last.name, replica: true };
  }

  /**
   * A read on this replica failed for want of the replica (connection lost,
   * server gone): out of rotation at once, until a sample finds it healthy.
   */
  markDown(name: string, error: Error): void {
    const replica = this.replicas.find((r) => r.name === name);
    if (!replica) return;
    replica.up = false;
    replica.lagMs = null;
    replica.error = error.message;
    if (replica.inRotation) {
      replica.inRotation = false;
      this.options.onRotationChange?.(name, false, `read failed: ${error.message}`);
    }
  }

  /** Needs a fence for read-your-writes: false when no replica exists (the primary sees everything). */
  get needsFence(): boolean {
    return this.replicas.length > 0 && this.options.share > 0;
  }

  statuses(): ReplicaStatus[] {
    return this.replicas.map((r) => ({
      name: r.name,
      up: r.up,
      inRotation: r.inRotation,
      lagMs: r.lagMs === null ? null : Math.round(r.lagMs),
      replayLsn: r.replay === null ? null : `${(r.replay >> 32n).toString(16).toUpperCase()}/${(r.replay & 0xffffffffn).toString(16).toUpperCase()}`,
      paused: r.paused,
      ...(r.error ? { error: r.error } : {}),
    }));
  }
}
