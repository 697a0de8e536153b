import { writeFileSync } from 'node:fs';

export type Table = { title: string; headers: string[]; rows: (string | number)[][] };

const cell = (value: string | number): string => (typeof value === 'number' ? formatNumber(value) : value);

export const formatNumber = (value: number): string =>
  Number.isInteger(value) ? value.toLocaleString('en-US') : value.toLocaleString('en-US', { maximumFractionDigits: 2 });

/** A plain-text table: text left-aligned, numbers right-aligned. */
export const formatTable = (table: Table): string => {
  const body = table.rows.map((row) => row.map(cell));
  const widths = table.headers.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]?.length ?? 0)));
  const line = (values: string[], numeric: boolean[]) =>
    values.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  const numericColumns = table.headers.map((_, i) => table.rows.length > 0 && table.rows.every((row) => typeof row[i] === 'number'));
  return [
    table.title,
    line(table.headers, numericColumns),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map((row) => line(row, table.rows[0] ? row.map((_, i) => numericColumns[i]!) : [])),
  ].join('\n');
};

/**
 * The report: one JSON object (every figure and the machine) on stdout, then
 * the tables for humans. `BENCH_JSON_OUT=<file>` also writes the JSON there.
 */
export const printReport = (report: object, tables: Table[], notes: string[] = []): void => {
  const json = JSON.stringify(report, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value), 2);
  const out = process.env.BENCH_JSON_OUT;
  if (out) writeFileSync(out, `${json}\n`);
  console.log(json);
  console.log('');
  for (const table of tables) console.log(`${formatTable(table)}\n`);
  for (const note of notes) console.log(note);
};

/** a/b rounded to two decimals; null when b is 0. */
export const ratio = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 100) / 100 : null);
