import { InvalidArgumentError } from 'commander';

/** Option-argument parsers: a bad value is a usage error that names the option (commander adds the name). */

const integer = (min: number, what: string) => (value: string): number => {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`expected ${what}, got "${value}"`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected ${what}, got "${value}"`);
  return n;
};

/** A stream revision to roll back to: −1 is the state before the first event. */
export const rollbackRevision = integer(-1, 'a revision (an integer ≥ -1)');
export const nonNegative = integer(0, 'an integer ≥ 0');
export const positive = integer(1, 'an integer ≥ 1');

/** ISO-8601 with a time zone, as the API wants; checked here so a typo fails before any request. */
export const isoTime = (value: string): string => {
  const v = value.trim();
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(v) || Number.isNaN(Date.parse(v))) {
    throw new InvalidArgumentError(`expected an ISO-8601 date-time with a time zone, e.g. 2026-01-02T03:04:05Z, got "${value}"`);
  }
  return v;
};

export const uuid = (value: string): string => {
  const v = value.trim().toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v)) throw new InvalidArgumentError(`expected a UUID, got "${value}"`);
  return v;
};

export const nonEmpty = (value: string): string => {
  if (value.trim().length === 0) throw new InvalidArgumentError('must not be empty');
  return value.trim();
};
