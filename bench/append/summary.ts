import { ratio, type Table } from '../support/report';
import type { CellResult } from './cell';
import type { ContenderKind, PersonalMode } from './contender';

/** The service's default (GROUP_COMMIT_CONCURRENCY in apps/state-api): the setting the targets are judged on. */
export const SERVICE_DEFAULT_BATCHES = 2;
export const TARGETS = { eventsPerSecond: 10_000, vsRawPg: 1.5, vsEmmett: 1.0, sealedVsPlain: 0.85 };

export type Cell = { contender: string; kind: ContenderKind; maxConcurrentBatches: number | null; personal?: PersonalMode | null; writers: number } & CellResult;

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
  // The fast path (migration 004) against every batch through append_batch, same setting, same run.
  const previous = cells.find((c) => c.writers === top && c.kind === 'lorestore-full');
  const vsPrevious = judged && previous ? ratio(judged.opsPerSecond, previous.opsPerSecond) : null;

  // Encryption: sealed against plain, same event, same setting, each level; judged with known players.
  /** The mean of the cells of one mode at one level (plain and sealed run twice each). */
  const personalAt = (writers: number, mode: PersonalMode): { opsPerSecond: number } | undefined => {
    const mine = cells.filter((c) => c.writers === writers && c.personal === mode);
    return mine.length ? { opsPerSecond: Math.round(mine.reduce((sum, c) => sum + c.opsPerSecond, 0) / mine.length) } : undefined;
  };
  const levels = [...new Set(cells.filter((c) => c.personal).map((c) => c.writers))].sort((a, b) => a - b);
  const encryption = levels.map((writers) => {
    const plain = personalAt(writers, 'plain');
    const sealed = personalAt(writers, 'sealed');
    const fresh = personalAt(writers, 'sealed-new-player');
    const sealedVsPlain = plain && sealed ? ratio(sealed.opsPerSecond, plain.opsPerSecond) : null;
    return {
      writers,
      plain: plain?.opsPerSecond ?? null,
      sealed: sealed?.opsPerSecond ?? null,
      sealedNewPlayer: fresh?.opsPerSecond ?? null,
      sealedVsPlain,
      newPlayerVsPlain: plain && fresh ? ratio(fresh.opsPerSecond, plain.opsPerSecond) : null,
      met: sealedVsPlain !== null && sealedVsPlain >= TARGETS.sealedVsPlain,
    };
  });

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
    previous && vsPrevious !== null
      ? `fast path (migration 004) at ${top} writers: ${judged?.opsPerSecond} vs ${previous.opsPerSecond} events/s with every batch through append_batch = ${vsPrevious}x`
      : '',
    best ? `best group-commit setting at ${top} writers: ${best.contender} (${best.opsPerSecond} events/s)` : '',
    ...encryption.map(
      (e) =>
        `encryption at ${e.writers} writer(s): sealed ${e.sealed} vs plain ${e.plain} events/s (means of 2 cells each) = ${e.sealedVsPlain}x (>= ${TARGETS.sealedVsPlain}: ${met(e.met)}); ` +
        `a new player each append (key made and stored first): ${e.sealedNewPlayer} events/s = ${e.newPlayerVsPlain}x`,
    ),
  ].filter(Boolean);

  return {
    targets: { serviceDefault: judgedVerdict, bestGroupCommit: verdict(best), encryption },
    fastPath: previous ? { fast: judged?.opsPerSecond ?? null, appendBatchOnly: previous.opsPerSecond, ratio: vsPrevious } : null,
    cells: cells.map((c) => ({ ...c, ...comparisons(c) })),
    table,
    notes,
  };
};
