import { ratio, type Table } from '../support/report';
import type { CellResult } from './cell';
import type { ContenderKind } from './contender';

/** The service's default (GROUP_COMMIT_CONCURRENCY in apps/state-api): the setting the targets are judged on. */
export const SERVICE_DEFAULT_BATCHES = 2;
export const TARGETS = { eventsPerSecond: 10_000, vsRawPg: 1.5, vsEmmett: 1.0 };

export type Cell = { contender: string; kind: ContenderKind; maxConcurrentBatches: number | null; writers: number } & CellResult;

const met = (ok: boolean): string => (ok ? 'met' : 'missed');

/** Ratios against the baselines at the same level, target verdicts at the top level, and the table. */
export const summarize = (cells: Cell[], title: string) => {
  const top = Math.max(...cells.map((c) => c.writers));
  const at = (writers: number, kind: ContenderKind) => cells.find((c) => c.writers === writers && c.kind === kind);
  const comparisons = (cell: Cell) => {
    const raw = at(cell.writers, 'raw-pg');
    const emmett = at(cell.writers, 'emmett');
    return {
      vsRawPg: raw ? ratio(cell.opsPerSecond, raw.opsPerSecond) : null,
      vsEmmett: emmett ? ratio(cell.opsPerSecond, emmett.opsPerSecond) : null,
    };
  };
  const lorestoreTop = cells.filter((c) => c.writers === top && c.kind === 'lorestore');
  const best = lorestoreTop.reduce<Cell | undefined>((b, c) => (!b || c.opsPerSecond > b.opsPerSecond ? c : b), undefined);
  const judged = lorestoreTop.find((c) => c.maxConcurrentBatches === SERVICE_DEFAULT_BATCHES) ?? best;
  const verdict = (cell: Cell | undefined) => {
    if (!cell) return null;
    const { vsRawPg, vsEmmett } = comparisons(cell);
    return {
      contender: cell.contender,
      writers: cell.writers,
      eventsPerSecond: { actual: cell.opsPerSecond, target: TARGETS.eventsPerSecond, met: cell.opsPerSecond >= TARGETS.eventsPerSecond },
      vsRawPg: { actual: vsRawPg, target: TARGETS.vsRawPg, met: vsRawPg !== null && vsRawPg >= TARGETS.vsRawPg },
      vsEmmett: { actual: vsEmmett, target: TARGETS.vsEmmett, met: vsEmmett !== null && vsEmmett >= TARGETS.vsEmmett },
    };
  };
  const judgedVerdict = verdict(judged);

  const table: Table = {
    title,
    headers: ['writers', 'contender', 'events/s', 'p50 ms', 'p99 ms', 'errors', 'vs raw', 'vs emmett', 'batch size'],
    rows: cells.map((c) => {
      const { vsRawPg, vsEmmett } = comparisons(c);
      return [
        c.writers,
        c.contender,
        c.opsPerSecond,
        c.latency.p50Ms,
        c.latency.p99Ms,
        c.errors,
        c.kind === 'raw-pg' ? '' : `${vsRawPg ?? '-'}x`,
        c.kind === 'emmett' ? '' : `${vsEmmett ?? '-'}x`,
        c.stats.meanBatchSize !== undefined ? String(c.stats.meanBatchSize) : '',
      ];
    }),
  };
  const notes = [
    judgedVerdict
      ? `targets at ${top} writers (${judgedVerdict.contender}${judged?.maxConcurrentBatches === SERVICE_DEFAULT_BATCHES ? ', the service default' : ''}): ` +
        `${judgedVerdict.eventsPerSecond.actual} events/s (>= ${TARGETS.eventsPerSecond}: ${met(judgedVerdict.eventsPerSecond.met)}), ` +
        `${judgedVerdict.vsRawPg.actual}x raw pg (>= ${TARGETS.vsRawPg}: ${met(judgedVerdict.vsRawPg.met)}), ` +
        `${judgedVerdict.vsEmmett.actual}x emmett (>= ${TARGETS.vsEmmett}: ${met(judgedVerdict.vsEmmett.met)})`
      : '',
    best ? `best group-commit setting at ${top} writers: ${best.contender} (${best.opsPerSecond} events/s)` : '',
  ].filter(Boolean);

  return {
    targets: { serviceDefault: judgedVerdict, bestGroupCommit: verdict(best) },
    cells: cells.map((c) => ({ ...c, ...comparisons(c) })),
    table,
    notes,
  };
};
