/**
 * A few of the state-api's own Prometheus figures over a run: event-loop delay
 * (prom-client resets its histogram at each scrape, so the scrape after a run
 * covers the run), GC time, waits for a database connection, group-commit batch
 * sizes, hot-state reads. Evidence for where the time went, not a measurement of it.
 */
const COUNTERS = [
  /^lorestore_nodejs_gc_duration_seconds_(sum|count)\{/,
  /^lorestore_db_pool_wait_seconds_(sum|count)\{/,
  /^lorestore_db_pool_exhausted_total/,
  /^lorestore_append_batch_size_(sum|count)/,
  /^lorestore_hot_state_reads_total\{/,
  /^lorestore_commands_total\{/,
  /^lorestore_db_reads_total\{/,
];
const GAUGES = [/^lorestore_nodejs_eventloop_lag_(max|p99|mean)_seconds/];

export type MetricsSample = Record<string, number>;

export const scrapeMetrics = async (base: string): Promise<MetricsSample | null> => {
  try {
    const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (response.status !== 200) return null;
    const sample: MetricsSample = {};
    for (const line of (await response.text()).split('\n')) {
      if (line.startsWith('#')) continue;
      const cut = line.lastIndexOf(' ');
      const key = line.slice(0, cut);
      if (![...COUNTERS, ...GAUGES].some((p) => p.test(key))) continue;
      const value = Number(line.slice(cut + 1));
      if (Number.isFinite(value)) sample[key] = value;
    }
    return sample;
  } catch {
    return null;
  }
};

export type MetricsDelta = {
  /** Counters: after − before. */
  counters: Record<string, number>;
  /** Event-loop delay over the run, ms. */
  eventLoopDelayMs: Record<string, number>;
  /** Derived: mean rows per group commit, mean wait for a connection. */
  meanAppendBatch: number | null;
  meanPoolWaitMs: number | null;
  gcMs: Record<string, number>;
};

export const metricsDelta = (before: MetricsSample, after: MetricsSample): MetricsDelta => {
  const counters: Record<string, number> = {};
  const eventLoopDelayMs: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    if (GAUGES.some((p) => p.test(key))) eventLoopDelayMs[key.replace(/^lorestore_nodejs_eventloop_lag_|_seconds$/g, '')] = Math.round(value * 1e5) / 100;
    else counters[key] = Math.round((value - (before[key] ?? 0)) * 1000) / 1000;
  }
  const sum = (prefix: string) => Object.entries(counters).filter(([k]) => k.startsWith(prefix)).reduce((s, [, v]) => s + v, 0);
  const batches = sum('lorestore_append_batch_size_count');
  const waits = sum('lorestore_db_pool_wait_seconds_count');
  const gcMs: Record<string, number> = {};
  for (const [key, value] of Object.entries(counters)) {
    const kind = /^lorestore_nodejs_gc_duration_seconds_sum\{kind="([^"]+)"/.exec(key)?.[1];
    if (kind) gcMs[kind] = Math.round(value * 1000);
  }
  return {
    counters,
    eventLoopDelayMs,
    meanAppendBatch: batches > 0 ? Math.round((sum('lorestore_append_batch_size_sum') / batches) * 10) / 10 : null,
    meanPoolWaitMs: waits > 0 ? Math.round((sum('lorestore_db_pool_wait_seconds_sum') / waits) * 1e5) / 100 : null,
    gcMs,
  };
};
