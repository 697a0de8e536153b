import fc from 'fast-check';
import { GUID, SLUG, id, slug } from '../commands/command.schemas';

/**
 * The short path of GET entity takes an id only when these patterns accept
 * it, and leaves every other request to the route's zod validation: each
 * pattern must accept nothing that its schema refuses, and answer the same
 * value (ids in lower case).
 */
describe('the patterns of the short read path', () => {
  const hex = fc.constantFrom(...'0123456789abcdefABCDEF');
  const hexes = (n: number) => fc.string({ unit: hex, minLength: n, maxLength: n });
  const guidLike = fc.tuple(hexes(8), hexes(4), hexes(4), hexes(4), hexes(12)).map((parts) => parts.join('-'));
  const nearGuid = fc.tuple(guidLike, fc.nat(40), fc.string({ maxLength: 2 })).map(([g, at, s]) => g.slice(0, at) + s + g.slice(at + s.length));
  const slugLike = fc.string({ unit: fc.constantFrom(...'Az09_.-é/ \u0000'), maxLength: 70 });

  it('GUID accepts exactly what the id schema accepts, with the same value', () => {
    fc.assert(
      fc.property(fc.oneof(guidLike, nearGuid, fc.uuid(), fc.string()), (s) => {
        const parsed = id.safeParse(s);
        expect(GUID.test(s)).toBe(parsed.success);
        if (parsed.success) expect(parsed.data).toBe(s.toLowerCase());
      }),
      { numRuns: 2000 },
    );
  });

  it('SLUG accepts exactly what the slug schema accepts', () => {
    fc.assert(
      fc.property(fc.oneof(slugLike, fc.string()), (s) => {
        expect(SLUG.test(s)).toBe(slug.safeParse(s).success);
      }),
      { numRuns: 2000 },
    );
  });
});
