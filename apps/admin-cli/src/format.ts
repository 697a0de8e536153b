/** Plain-text formatting: aligned tables, key/value blocks, numbers, durations. No colour. */

export type Cell = string | number | boolean | null | undefined;

export type Column = {
  header: string;
  /** Numbers read best right-aligned. */
  align?: 'left' | 'right';
  /** Longer cells are cut with an ellipsis (free text such as reasons). */
  max?: number;
};

export const text = (value: Cell): string => (value === null || value === undefined || value === '' ? '-' : String(value));

const cut = (s: string, max?: number) => (max !== undefined && s.length > max ? `${s.slice(0, Math.max(1, max - 1))}…` : s);

/** Columns separated by two spaces, a dashed rule under the header; one line per row. */
export const table = (columns: (Column | string)[], rows: Cell[][]): string => {
  const cols: Column[] = columns.map((c) => (typeof c === 'string' ? { header: c } : c));
  const cells = rows.map((row) => cols.map((c, i) => cut(text(row[i]).replace(/\s+/g, ' '), c.max)));
  const widths = cols.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => (cols[i]!.align === 'right' ? v.padStart(widths[i]!) : i === values.length - 1 ? v : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
};

/** `key   value` lines with the keys aligned. */
export const keyValues = (pairs: [string, Cell][]): string => {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${text(v)}`).join('\n');
};

export const pretty = (value: unknown): string => JSON.stringify(value, null, 2) ?? 'undefined';

export const count = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** 12345 → "12,345"; null → "-". */
export const num = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });

/** Seconds → "850 ms", "12.3 s", "4m 05s", "1h 02m". */
export const duration = (seconds: number | null | undefined): string => {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};

/** Seconds between two ISO times, or null if either is missing. */
export const secondsBetween = (from: string | null | undefined, to: string | null | undefined): number | null => {
  if (!from || !to) return null;
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) ? Math.max(0, ms / 1000) : null;
};
