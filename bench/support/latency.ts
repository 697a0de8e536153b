/**
 * Latency samples in milliseconds, kept whole (a 5 s run at 20,000 ops/s is
 * 100,000 doubles, under 1 MB) so percentiles are exact, not bucketed.
 */
export type LatencySummary = { count: number; meanMs: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number };

export class LatencyRecorder {
  private samples = new Float64Array(4096);
  private size = 0;

  record(ms: number): void {
    if (this.size === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.size++] = ms;
  }

  get count(): number {
    return this.size;
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.size).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      count: this.size,
      meanMs: round(this.size ? sum / this.size : 0),
      p50Ms: round(percentile(sorted, 0.5)),
      p90Ms: round(percentile(sorted, 0.9)),
      p99Ms: round(percentile(sorted, 0.99)),
      maxMs: round(this.size ? sorted[this.size - 1]! : 0),
    };
  }
}

/** Nearest-rank percentile of an ascending array; 0 when empty. */
export const percentile = (sorted: ArrayLike<number>, q: number): number => {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
};

const round = (ms: number): number => Math.round(ms * 1000) / 1000;
