import type { PoolStats } from './bounded-pool';

export type AutoscaleRules = {
  /** +1 when more callers than this wait for a connection (the brief: 50) … */
  upQueue: number;
  /** … or one has waited longer than this (the brief: 1 s). */
  upWaitMs: number;
  /** −1 when fewer than this wait (the brief: 5) … */
  downQueue: number;
  /** … without a break for this long (the brief: 5 minutes). */
  downWindowMs: number;
};

export type AutoscaleDecision = {
  /** +1 scale out, 0 hold, −1 scale in. */
  signal: 1 | 0 | -1;
  /** Why, as a label: `queue_depth`, `wait_time` (+1), `quiet` (−1), `hold` (0). */
  code: 'queue_depth' | 'wait_time' | 'quiet' | 'hold';
  reason: string;
  /** Callers waiting for a connection, over every pool. */
  queueDepth: number;
  /** The longest wait of a queued caller, or of one granted since the last evaluation, in ms. */
  waitMs: number;
  /** Since when the queue has stayed under `downQueue` (ms since epoch), or null. */
  quietSince: string | null;
  evaluatedAt: string;
  pools: PoolStats[];
};

/**
 * The brief's autoscaling rule, evaluated from the pools' own numbers:
 * scale up when the queue depth exceeds 50 or a connection wait exceeds
 * 1 s; scale down when the depth has stayed under 5 for 5 minutes; hold
 * otherwise. The wait counts the callers still queued and those granted a
 * connection within the last second. `evaluate()` runs on a timer (so the
 * quiet window sees every sample) and on every read of the signal.
 */
export class AutoscaleSignal {
  private quietSince: number | null;
  /** Waits of granted connections within the last second, (time, ms). */
  private recentWaits: { at: number; ms: number }[] = [];
  private last: AutoscaleDecision | null = null;

  constructor(
    private readonly rules: AutoscaleRules,
    private readonly pools: () => PoolStats[],
    private readonly clock: () => number = Date.now,
  ) {
    this.quietSince = clock();
  }

  /** A connection was granted after this wait (fed by the pools' onAcquire); counts for a second. */
  observeWait(ms: number): void {
    if (ms < 1) return;
    const now = this.clock();
    if (this.recentWaits.length > 1000) this.recentWaits = this.recentWaits.filter((w) => w.at >= now - 1000);
    this.recentWaits.push({ at: now, ms });
  }

  evaluate(): AutoscaleDecision {
    const now = this.clock();
    const pools = this.pools();
    const queueDepth = pools.reduce((n, p) => n + p.waiting, 0);
    this.recentWaits = this.recentWaits.filter((w) => w.at >= now - 1000);
    const granted = this.recentWaits.reduce((max, w) => Math.max(max, w.ms), 0);
    const waitMs = Math.round(Math.max(granted, ...pools.map((p) => p.oldestWaitMs), 0));
    if (queueDepth < this.rules.downQueue) this.quietSince ??= now;
    else this.quietSince = null;

    let signal: AutoscaleDecision['signal'] = 0;
    let code: AutoscaleDecision['code'] = 'hold';
    let reason: string;
    if (queueDepth > this.rules.upQueue) {
      signal = 1;
      code = 'queue_depth';
      reason = `queue depth ${queueDepth} > ${this.rules.upQueue}`;
    } else if (waitMs > this.rules.upWaitMs) {
      signal = 1;
      code = 'wait_time';
      reason = `connection wait ${waitMs} ms > ${this.rules.upWaitMs} ms`;
    } else if (this.quietSince !== null && now - this.quietSince >= this.rules.downWindowMs) {
      signal = -1;
      code = 'quiet';
      reason = `queue depth < ${this.rules.downQueue} for ${Math.round((now - this.quietSince) / 1000)} s (≥ ${Math.round(this.rules.downWindowMs / 1000)} s)`;
    } else {
      reason =
        this.quietSince !== null
          ? `queue depth ${queueDepth} < ${this.rules.downQueue} for ${Math.round((now - this.quietSince) / 1000)} s of ${Math.round(this.rules.downWindowMs / 1000)} s`
          : `queue depth ${queueDepth} within ${this.rules.downQueue}…${this.rules.upQueue}`;
    }
    this.last = {
      signal,
      code,
      reason,
      queueDepth,
      waitMs,
      quietSince: this.quietSince === null ? null : new Date(this.quietSince).toISOString(),
      evaluatedAt: new Date(now).toISOString(),
      pools,
    };
    return this.last;
  }

  /** The last evaluation, without a new one. */
  latest(): AutoscaleDecision {
    return this.last ?? this.evaluate();
  }
}
