import fc from 'fast-check';
import { types } from 'pg';
import { EVENT_ROW_TYPES, parseTimestamptz, parseTimestamptzFast } from './timestamptz';

const pgParse = types.getTypeParser(1184, 'text') as (text: string) => Date;
const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** A timestamptz written as PostgreSQL writes it: the fraction without trailing zeros, the offset as short as it goes. */
const written = fc
  .record({
    // Years 1001–9999 (what the fast path takes, whatever the offset), to the microsecond.
    micros: fc.bigInt({ min: -30_578_688_000_000_000n, max: 253_402_214_400_000_000n }),
    offsetSeconds: fc.oneof(fc.constant(0), fc.integer({ min: -15, max: 15 }).map((h) => h * 3600), fc.integer({ min: -15 * 3600 - 59 * 60 - 59, max: 15 * 3600 + 59 * 60 + 59 })),
  })
  .map(({ micros, offsetSeconds }) => {
    const ms = Number(micros / 1000n) - (micros < 0n && micros % 1000n !== 0n ? 1 : 0);
    const us = Number(((micros % 1000n) + 1000n) % 1000n);
    const local = new Date(ms + offsetSeconds * 1000);
    const fraction = `${pad(local.getUTCMilliseconds(), 3)}${pad(us, 3)}`.replace(/0+$/, '');
    const abs = Math.abs(offsetSeconds);
    const [h, m, s] = [Math.floor(abs / 3600), Math.floor((abs % 3600) / 60), abs % 60];
    const offset = `${offsetSeconds < 0 ? '-' : '+'}${pad(h, 2)}${m || s ? `:${pad(m, 2)}` : ''}${s ? `:${pad(s, 2)}` : ''}`;
    const date = `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1, 2)}-${pad(local.getUTCDate(), 2)}`;
    const time = `${pad(local.getUTCHours(), 2)}:${pad(local.getUTCMinutes(), 2)}:${pad(local.getUTCSeconds(), 2)}`;
    return { text: `${date} ${time}${fraction ? `.${fraction}` : ''}${offset}`, ms };
  });

describe('parseTimestamptz', () => {
  it('gives the Date pg’s own parser gives, for any timestamptz as PostgreSQL writes it', () => {
    fc.assert(
      fc.property(written, ({ text, ms }) => {
        // Taken by the fast path, right to the millisecond (microseconds cut), and the same as pg's.
        expect(parseTimestamptzFast(text)?.getTime()).toBe(ms);
        expect(pgParse(text).getTime()).toBe(ms);
      }),
      { numRuns: 5000 },
    );
  });

  it.each([
    '2026-11-26 12:34:46.217123+00',
    '2026-11-26 12:34:46+00',
    '2026-11-26 12:34:46.5+05:30',
    '2026-11-26 12:34:46.999999-09:30:15',
    '1970-01-01 00:00:00+00',
    '1969-12-31 23:59:59.9995+00',
  ])('fast path: %s', (text) => {
    expect(parseTimestamptzFast(text)?.getTime()).toBe(pgParse(text).getTime());
  });

  it.each(['0099-01-01 00:00:00+00', '2026-11-26 12:34:46+00 BC', 'infinity', '-infinity', '12026-01-01 00:00:00+00', '2026-11-26T12:34:46Z', '2026-11-26 12:34:46.123'])(
    'leaves anything else to pg’s parser: %s',
    (text) => {
      expect(parseTimestamptzFast(text)).toBeNull();
      const mine = parseTimestamptz(text);
      const theirs = pgParse(text) as Date | number | null;
      expect(mine instanceof Date ? mine.getTime() : mine).toEqual(theirs instanceof Date ? theirs.getTime() : theirs);
    },
  );

  it('is what event reads use for timestamptz, and pg’s own parser for every other type', () => {
    expect(EVENT_ROW_TYPES.getTypeParser(1184, 'text')).toBe(parseTimestamptz);
    expect(EVENT_ROW_TYPES.getTypeParser(1114, 'text')).toBe(types.getTypeParser(1114, 'text'));
    expect(EVENT_ROW_TYPES.getTypeParser(3802, 'text')).toBe(types.getTypeParser(3802, 'text'));
  });
});
