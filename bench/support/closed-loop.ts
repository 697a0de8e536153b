import { LatencyRecorder, type LatencySummary } from './latency';

export type ClosedLoopOptions = {
  /** Concurrent callers; each waits for its operation before starting the next. */
  workers: number;
  warmupMs: number;
  durationMs: number;
  /** A bound on top of the time bound, so a broken clock or a no-op cannot spin forever. */
  maxOpsPerWorker: number;
  /** Stop early when this many operations failed: the figures would mean nothing. */
  maxErrors: number;
  op: (worker: number, seq: number) => Promise<void>;
};

export type ClosedLoopResult = {
  /** Operations that completed inside the measured window. */
  ops: number;
  opsPerSecond: number;
  errors: number;
  errorSamples: string[];
  warmupOps: number;
  measuredMs: number;
  latency: LatencySummary;
};

/**
 * Runs `workers` closed loops for warm-up + duration. Throughput counts the
 * completions inside the measured window; latency is recorded for those.
 */
export const runClosedLoop = async (options: ClosedLoopOptions): Promise<ClosedLoopResult> => {
  const recorder = new LatencyRecorder();
  const errorSamples: string[] = [];
  let errors = 0;
  let warmupOps = 0;
  const start = performance.now();
  const measureFrom = start + options.warmupMs;
  const measureTo = measureFrom + options.durationMs;

  const worker = async (w: number): Promise<void> => {
    for (let seq = 0; seq < options.maxOpsPerWorker && errors < options.maxErrors; seq++) {
      const t0 = performance.now();
      if (t0 >= measureTo) return;
      try {
        await options.op(w, seq);
      } catch (error) {
        errors++;
        if (errorSamples.length < 5) errorSamples.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
        continue;
      }
      const t1 = performance.now();
      if (t1 < measureFrom) warmupOps++;
      else if (t1 <= measureTo) recorder.record(t1 - t0);
    }
  };

  await Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w)));
  const measuredMs = Math.min(performance.now(), measureTo) - measureFrom;
  return {
    ops: recorder.count,
    opsPerSecond: measuredMs > 0 ? Math.round((recorder.count / measuredMs) * 1000) : 0,
    errors,
    errorSamples,
    warmupOps,
    measuredMs: Math.round(measuredMs),
    latency: recorder.summary(),
  };
};
