import fc from 'fast-check';
import { z } from 'zod';
import { MAX_JSON_DEPTH, isoTime, parseOrThrow, untrustedInputError } from './validate';

describe('input guards', () => {
  const nest = (depth: number): unknown => {
    let v: unknown = 'leaf';
    for (let i = 0; i < depth; i++) v = { d: v };
    return v;
  };

  it('takes nesting up to the limit and refuses deeper, without recursion (100,000 levels)', () => {
    expect(untrustedInputError(nest(MAX_JSON_DEPTH))).toBeNull();
    expect(untrustedInputError(nest(MAX_JSON_DEPTH + 1))).toMatchObject({ message: expect.stringContaining('deeper') });
    expect(untrustedInputError(nest(100_000))).not.toBeNull();
    expect(() => parseOrThrow(z.json(), nest(100_000))).toThrow(expect.objectContaining({ status: 400 }));
  });

  it('refuses NUL and unpaired surrogates in values and keys, naming where', () => {
    expect(untrustedInputError({ a: { b: ['ok', 'x\u0000y'] } })).toEqual({ path: 'a.b.1', message: expect.stringContaining('NUL') });
    expect(untrustedInputError({ ['k\uD800']: 1 })).toMatchObject({ path: '', message: expect.stringContaining('keys') });
    expect(untrustedInputError({ s: '\uDC00' }, 'payload')).toMatchObject({ path: 'payload.s' });
    expect(untrustedInputError({ s: 'emoji 😀 and ünïcödé' })).toBeNull();
  });

  it('any well-formed JSON within the depth passes', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 10 }), (v) => {
        // fast-check's strings are well formed unless asked otherwise; NUL is the one it may produce.
        const hasNul = JSON.stringify(v).includes('\\u0000');
        expect(untrustedInputError(v) === null).toBe(!hasNul);
      }),
    );
  });

  it('isoTime takes what timestamptz takes', () => {
    for (const ok of ['2026-01-02T03:04:05Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59.999+15:59', '2026-06-01T12:00:00-08:00']) {
      expect([ok, isoTime.safeParse(ok).success]).toEqual([ok, true]);
    }
    for (const bad of ['0000-01-01T00:00:00Z', '2026-01-01T00:00:00+23:59', '2026-01-01T00:00:00', '2026-02-30T00:00:00Z', 'yesterday']) {
      expect([bad, isoTime.safeParse(bad).success]).toEqual([bad, false]);
    }
  });
});
