import { ratio, type Table } from '../support/report';
import type { LoadResult } from './load';

export const TARGETS = { commandsPerSecond: 5_000, p99Ms: 25 };

export type Measured = LoadResult & { serverStats?: Record<string, number> };
export type Outcome = { result: Measured } | { skipped: string } | { failed: string };

/** Accepted commands per second: what the targets count. */
export const perSecond2xx = (r: LoadResult): number => Math.round(r.ok2xx / r.durationSeconds);

const met = (ok: boolean): string => (ok ? 'met' : 'missed');

/**
 * The service against its ceiling: the fraction, the target verdicts and the
 * table; and against `previous` (the service with APPEND_FAST_PATH=false) when measured.
 */
export const summarize = (ceiling: Outcome, service: Outcome, title: string, previous: Outcome | null = null) => {
  const ceilingResult = 'result' in ceiling ? ceiling.result : null;
  const serviceResult = 'result' in service ? service.result : null;
  const fraction = serviceResult && ceilingResult ? ratio(perSecond2xx(serviceResult), perSecond2xx(ceilingResult)) : null;
  const previousResult = previous && 'result' in previous ? previous.result : null;
  const vsPrevious = serviceResult && previousResult ? ratio(perSecond2xx(serviceResult), perSecond2xx(previousResult)) : null;
  const targets = serviceResult
    ? {
        commandsPerSecond: {
          actual: perSecond2xx(serviceResult),
          target: TARGETS.commandsPerSecond,
          met: perSecond2xx(serviceResult) >= TARGETS.commandsPerSecond,
        },
        p99Ms: { actual: serviceResult.latency.p99Ms, target: TARGETS.p99Ms, met: serviceResult.latency.p99Ms <= TARGETS.p99Ms },
        non2xx: { actual: serviceResult.non2xx, met: serviceResult.non2xx === 0 },
      }
    : null;

  const row = (name: string, outcome: Outcome): (string | number)[] =>
    'result' in outcome
      ? [
          name,
          outcome.result.requestsPerSecond,
          perSecond2xx(outcome.result),
          outcome.result.latency.p50Ms,
          outcome.result.latency.p99Ms,
          outcome.result.latency.maxMs,
          outcome.result.non2xx,
          outcome.result.errors,
        ]
      : [name, 'skipped' in outcome ? 'skipped' : 'failed', '', '', '', '', '', ''];
  const table: Table = {
    title,
    headers: ['target', 'req/s', '2xx/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors'],
    rows: [
      row('ceiling: Fastify + batched INSERT', ceiling),
      row('lorestore state-api', service),
      ...(previous ? [row('  same, APPEND_FAST_PATH=false', previous)] : []),
    ],
  };
  const notes = [
    ceilingResult?.serverStats
      ? `ceiling: mean ${ceilingResult.serverStats.meanBatchSize} rows per INSERT, ${ceilingResult.serverStats.meanInsertMs} ms per INSERT`
      : '',
    fraction !== null ? `the service reaches ${Math.round(fraction * 100)}% of the ceiling (2xx/s)` : '',
    vsPrevious !== null ? `the append short path: ${vsPrevious}x the service with every batch through append_batch (2xx/s)` : '',
    targets
      ? `targets: ${targets.commandsPerSecond.actual} commands/s (>= ${TARGETS.commandsPerSecond}: ${met(targets.commandsPerSecond.met)}), ` +
        `p99 ${targets.p99Ms.actual} ms (<= ${TARGETS.p99Ms}: ${met(targets.p99Ms.met)}), non-2xx ${targets.non2xx.actual}`
      : '',
    'skipped' in service ? `service skipped: ${service.skipped}` : '',
    'failed' in service ? `service failed: ${service.failed}` : '',
    'failed' in ceiling ? `ceiling failed: ${ceiling.failed}` : '',
    previous && 'failed' in previous ? `service with APPEND_FAST_PATH=false failed: ${previous.failed}` : '',
  ].filter(Boolean);

  return { fraction, vsPrevious, targets, table, notes };
};
