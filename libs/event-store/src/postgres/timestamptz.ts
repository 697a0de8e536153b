import { types } from 'pg';

const TIMESTAMPTZ = 1184;
const pgParse = types.getTypeParser(TIMESTAMPTZ, 'text') as (text: string) => Date;

/** The number in `count` decimal digits at `from`, or -1 if one of them is not a digit. */
const digits = (text: string, from: number, count: number): number => {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const d = text.charCodeAt(i) - 48;
    // Also past the end (NaN).
    if (!(d >= 0 && d <= 9)) return -1;
    n = n * 10 + d;
  }
  return n;
};

/**
 * A `timestamptz` as PostgreSQL writes it in text (DateStyle ISO), to the
 * same Date as pg's own parser (postgres-date) gives, in a fraction of its
 * time: `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]`, the fraction cut to
 * milliseconds. Anything else (years before 1000 or after 9999, BC,
 * infinity, another DateStyle) goes to pg's parser. Every event read parses
 * one; a rebuild reads millions.
 */
export const parseTimestamptz = (text: string): Date => parseTimestamptzFast(text) ?? pgParse(text);

/** The fast path of `parseTimestamptz`: null for what it leaves to pg's parser. */
export const parseTimestamptzFast = (text: string): Date | null => {
  const n = text.length;
  if (n < 22 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 32 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) {
    return null;
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  if (year < 1000 || month < 1 || day < 1 || hour < 0 || minute < 0 || second < 0) return null;
  let i = 19;
  let ms = 0;
  if (text.charCodeAt(i) === 46) {
    // '.': up to six digits; the first three are the milliseconds, the rest are cut (as pg's parser does).
    i++;
    let place = 100;
    while (i < n) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      ms += d * place;
      place = place === 1 ? 0 : place / 10;
      i++;
    }
  }
  const sign = text.charCodeAt(i);
  if (sign !== 43 && sign !== 45) return null;
  const offsetHours = digits(text, i + 1, 2);
  if (offsetHours < 0) return null;
  i += 3;
  let offset = offsetHours * 3600;
  // Then ':MM' and ':SS', each only where it is not zero.
  for (let unit = 60; i < n; unit = unit === 60 ? 1 : 0) {
    const part = unit > 0 && text.charCodeAt(i) === 58 ? digits(text, i + 1, 2) : -1;
    if (part < 0) return null;
    offset += part * unit;
    i += 3;
  }
  if (i !== n) return null;
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - (sign === 45 ? -offset : offset) * 1000);
};

/** The type parsers of event reads: pg's own, but a faster one for `timestamptz` (an event's `created_at`). */
export const EVENT_ROW_TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMPTZ && format !== 'binary' ? parseTimestamptz : types.getTypeParser(oid, format ?? 'text')) as typeof types.getTypeParser,
};
