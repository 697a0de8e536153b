import { z } from 'zod';
import { validationProblem, type ProblemFieldError } from './problem';

const toFieldErrors = (error: z.ZodError, prefix: string): ProblemFieldError[] =>
  error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.'),
    message: issue.message,
  }));

/** Deepest nesting of arrays and objects a request may hold (JSON schemas recurse; PostgreSQL's jsonb has its own limit). */
export const MAX_JSON_DEPTH = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What no schema should have to think about, checked once on every
 * untrusted value before it is parsed: nesting deeper than MAX_JSON_DEPTH,
 * and strings (values or keys) that PostgreSQL's text and jsonb refuse: a
 * NUL character or a lone UTF-16 surrogate; and the key `$pii`, which marks
 * a sealed personal value (libs/privacy): a client's object that looks like
 * one would be taken for one when read back. Iterative, so a hostile depth
 * cannot overflow the stack. Answers the first bad place, or null.
 */
export const untrustedInputError = (input: unknown, prefix = ''): ProblemFieldError | null => {
  const stack: { value: unknown; path: string[]; depth: number }[] = [{ value: input, path: prefix ? [prefix] : [], depth: 0 }];
  const badString = (s: string) => s.includes('\u0000') || LONE_SURROGATE.test(s);
  while (stack.length) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      if (badString(value)) return { path: path.join('.'), message: 'must not contain NUL characters or unpaired UTF-16 surrogates' };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) return { path: path.join('.'), message: `nested deeper than ${MAX_JSON_DEPTH} levels` };
    for (const [key, child] of Object.entries(value)) {
      if (badString(key)) return { path: path.join('.'), message: 'keys must not contain NUL characters or unpaired UTF-16 surrogates' };
      if (key === '$pii') return { path: [...path, key].join('.'), message: 'the key $pii is reserved (it marks sealed personal data)' };
      stack.push({ value: child, path: [...path, key], depth: depth + 1 });
    }
  }
  return null;
};

/** Parses untrusted input or throws a 400 problem naming every bad field. */
export const parseOrThrow = <S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> => {
  const unsafe = untrustedInputError(input, prefix);
  if (unsafe) throw validationProblem([unsafe]);
  const result = schema.safeParse(input);
  if (!result.success) throw validationProblem(toFieldErrors(result.error, prefix));
  return result.data;
};

/** ±HH:MM of an ISO-8601 time, in minutes (0 for Z). */
const offsetMinutes = (t: string): number => {
  const m = /([+-])(\d{2}):?(\d{2})$/.exec(t);
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
};

/**
 * An ISO-8601 date-time with a time zone that PostgreSQL's timestamptz
 * takes too: years 0001–9999 (ISO's year 0000 is 1 BC) and an offset
 * within ±15:59. The one time schema of the API.
 */
export const isoTime = z.iso
  .datetime({ offset: true, message: 'must be an ISO-8601 date-time with a time zone, e.g. 2026-01-02T03:04:05Z' })
  .refine((t) => {
    const year = Number(t.slice(0, 4));
    return year >= 1 && year <= 9999 && Number.isFinite(Date.parse(t));
  }, 'must be within the years 0001–9999')
  .refine((t) => Math.abs(offsetMinutes(t)) <= 15 * 60 + 59, 'the time zone offset must be within ±15:59');
