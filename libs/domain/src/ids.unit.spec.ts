import fc from 'fast-check';
import { uuidV7, uuidV7Time } from './ids';

describe('uuidV7', () => {
  const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  it('is an RFC 9562 version 7 UUID carrying its millisecond, deterministic in (time, seed)', () =>
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.string(), (ms, seed) => {
        const id = uuidV7(ms, seed);
        expect(id).toMatch(V7);
        expect(uuidV7Time(id)).toBe(ms);
        expect(uuidV7(ms, seed)).toBe(id);
      }),
    ));

  it('gives 10,000 different seeds in one millisecond 10,000 different ids (the brief’s npc_timestamp ids collided)', () => {
    const ids = new Set(Array.from({ length: 10_000 }, (_, i) => uuidV7(1_750_000_000_000, `memory:command-${i}`)));
    expect(ids.size).toBe(10_000);
  });

  it('sorts by time', () => {
    const a = uuidV7(1_750_000_000_000, 'x');
    const b = uuidV7(1_750_000_000_001, 'a');
    expect(a < b).toBe(true);
  });

  it('refuses a time that is not 48-bit Unix milliseconds', () => {
    expect(() => uuidV7(-1, 's')).toThrow(RangeError);
    expect(() => uuidV7(2 ** 48, 's')).toThrow(RangeError);
    expect(() => uuidV7(Number.NaN, 's')).toThrow(RangeError);
  });
});
