import { ratio, type Table } from '../support/report';
import type { costPerRequest, CounterDelta } from './counters';
import type { DriveResult } from './drive';
import { MIX } from './mix';
import type { MetricsDelta } from './service-metrics';
import type { SearchResult, Step } from './search';

export type ProfileRun = {
  result: DriveResult;
  pass: boolean;
  reasons: string[];
  cost: ReturnType<typeof costPerRequest>;
  delta: CounterDelta;
  idle: CounterDelta | null;
  /** lorestore: the projections' lag right after the run, and how long they took to catch up. */
  projections?: { lagAfterEvents: number; catchUpMs: number | null; error?: string };
  /** lorestore: the API's own figures over the window. */
  serviceMetrics?: MetricsDelta;
};

export type TargetOutcome =
  | { name: string; profile: ProfileRun; search: SearchResult | null; seed?: { commands: number; seconds: number; catchUpMs: number } }
  | { name: string; failed: string };

const bad = (r: DriveResult): number => r.non2xx + r.errors + r.timeouts;

export const maxRateLabel = (search: SearchResult | null): string => {
  if (!search) return 'not searched';
  if (search.maxSustainedRate === null) return 'none';
  return `${search.capped ? '>= ' : ''}${search.maxSustainedRate.toLocaleString('en-US')}`;
};

export const mainTable = (title: string, targets: TargetOutcome[], p99Ms: number): Table => ({
  title,
  headers: ['target', 'profile req/s', 'achieved req/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx+errors', 'db tx/req', 'redis cmds/req', `max req/s @ p99<=${p99Ms}ms`],
  rows: targets.map((t) =>
    'failed' in t
      ? [t.name, 'failed', '', '', '', '', '', '', '', '']
      : [
          t.name,
          t.profile.result.offeredRate,
          t.profile.result.achievedRate,
          t.profile.result.latency.p50Ms,
          t.profile.result.latency.p99Ms,
          t.profile.result.latency.maxMs,
          bad(t.profile.result),
          t.profile.cost.dbTransactionsPerRequest,
          t.profile.cost.redisCommandsPerRequest,
          maxRateLabel(t.search),
        ],
  ),
});

export const stepsTable = (targets: TargetOutcome[], stepSeconds: number, p99Ms: number): Table => ({
  title: `max sustained rate: steps of ${stepSeconds}s after a warm-up (pass: p99 <= ${p99Ms} ms, non-2xx+errors <= 0.1%, >= 95% of the offered rate answered)`,
  headers: ['target', 'offered req/s', 'achieved req/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx+errors', 'verdict'],
  rows: targets.flatMap((t) =>
    'failed' in t || !t.search
      ? []
      : t.search.steps.map((s: Step) => [
          t.name,
          s.rate,
          s.result.achievedRate,
          s.result.latency.p50Ms,
          s.result.latency.p99Ms,
          s.result.latency.maxMs,
          bad(s.result),
          s.pass ? 'pass' : `fail: ${s.reasons.join('; ')}`,
        ]),
  ),
});

export const kindsTable = (targets: TargetOutcome[], rate: number): Table => {
  const measured = targets.filter((t): t is Extract<TargetOutcome, { profile: ProfileRun }> => !('failed' in t));
  return {
    title: `per request kind at ${rate.toLocaleString('en-US')} req/s (the profile run)`,
    headers: ['kind', 'share', ...measured.flatMap((t) => [`${t.name} n`, `${t.name} p50 ms`, `${t.name} p99 ms`, `${t.name} non-2xx`])],
    rows: MIX.map((m) => [
      m.label,
      `${m.share}%`,
      ...measured.flatMap((t) => {
        const k = t.profile.result.byKind[m.kind];
        return [k.responses, k.latency.p50Ms, k.latency.p99Ms, k.non2xx];
      }),
    ]),
  };
};

export const ratios = (baseline: TargetOutcome | undefined, lorestore: TargetOutcome | undefined) => {
  if (!baseline || !lorestore || 'failed' in baseline || 'failed' in lorestore) return { maxRate: null, p99AtProfile: null };
  const maxB = baseline.search?.maxSustainedRate ?? null;
  const maxL = lorestore.search?.maxSustainedRate ?? null;
  return {
    maxRate: maxB !== null && maxL !== null ? ratio(maxL, maxB) : null,
    maxRateNote: baseline.search?.capped || lorestore.search?.capped ? 'a search reached the cap: the ratio is a bound, not a measurement' : undefined,
    p99AtProfile: ratio(lorestore.profile.result.latency.p99Ms, baseline.profile.result.latency.p99Ms),
  };
};
