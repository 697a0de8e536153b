import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  ERASED,
  EnvelopeError,
  KEY_BYTES,
  findSealed,
  isErased,
  isSealed,
  normalizeSubjects,
  open,
  replaceSealed,
  seal,
  subjectKey,
  type Sealed,
} from './envelope';

/**
 * The envelope of a personal value: AES-256-GCM under the subjects' key, with
 * the subjects bound as associated data. Pure crypto, no database.
 */
const RUNS = { numRuns: 150 };

const A = '11111111-0000-4000-8000-000000000001';
const B = '11111111-0000-4000-8000-000000000002';
const C = '11111111-0000-4000-8000-000000000003';

/** A fresh key per subject, as the key store would hand them out. */
const keyring = (subjects: readonly string[]) => {
  const keys = new Map(subjects.map((s) => [s, randomBytes(KEY_BYTES)] as const));
  return { keys, keyOf: (s: string) => keys.get(s)! };
};

/** What a JSON value reads as once it went through JSON (so -0 is 0, as the envelope stores it). */
const viaJson = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as unknown;

const sealFor = (value: unknown, subjects: readonly string[]) => {
  const s = normalizeSubjects(subjects);
  const ring = keyring(s);
  const key = subjectKey(s, ring.keyOf);
  return { envelope: seal(value, s, key), key, s, ...ring };
};

const expectEnvelopeError = (action: () => unknown) => {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(EnvelopeError);
  expect((thrown as Error).name).toBe('EnvelopeError');
};

const subjectsArb = fc.uniqueArray(fc.uuid(), { minLength: 1, maxLength: 3 });

describe('envelope: seal / open', () => {
  it('opens to the JSON value it sealed, for any JSON value and 1–3 subjects', () => {
    fc.assert(
      fc.property(fc.jsonValue(), subjectsArb, (value, subjects) => {
        const { envelope, key, s } = sealFor(value, subjects);
        expect(isSealed(envelope)).toBe(true);
        expect(envelope.$pii).toBe(1);
        expect(envelope.s).toEqual(s);
        expect(Buffer.from(envelope.iv, 'base64')).toHaveLength(12);
        // The ciphertext: the UTF-8 JSON text plus a 16-byte tag.
        expect(Buffer.from(envelope.ct, 'base64')).toHaveLength(Buffer.byteLength(JSON.stringify(value), 'utf8') + 16);
        expect(open(envelope, key)).toEqual(viaJson(value));
        // The envelope itself survives JSON (it is stored as JSON).
        expect(open(JSON.parse(JSON.stringify(envelope)) as Sealed, key)).toEqual(viaJson(value));
      }),
      RUNS,
    );
  });

  it('seals null and undefined as null, and never the same way twice (random iv)', () => {
    const { keyOf } = keyring([A]);
    expect(open(seal(null, [A], keyOf(A)), keyOf(A))).toBeNull();
    expect(open(seal(undefined, [A], keyOf(A)), keyOf(A))).toBeNull();
    const first = seal('alice@example.com', [A], keyOf(A));
    const second = seal('alice@example.com', [A], keyOf(A));
    expect(first.iv).not.toBe(second.iv);
    expect(first.ct).not.toBe(second.ct);
    expect(JSON.stringify(first)).not.toContain('alice');
    expect(open(first, keyOf(A))).toBe('alice@example.com');
    expect(open(second, keyOf(A))).toBe('alice@example.com');
  });

  it('binds the subjects: an envelope whose `s` is changed does not open, even with the key it was sealed with', () => {
    fc.assert(
      fc.property(fc.jsonValue(), subjectsArb, fc.uuid(), (value, subjects, other) => {
        fc.pre(!subjects.includes(other));
        const { envelope, key, s } = sealFor(value, subjects);
        // Moved to another player.
        expectEnvelopeError(() => open({ ...envelope, s: [other] }, key));
        // One more subject, or one fewer.
        expectEnvelopeError(() => open({ ...envelope, s: normalizeSubjects([...s, other]) }, key));
        if (s.length > 1) {
          expectEnvelopeError(() => open({ ...envelope, s: s.slice(1) }, key));
          // The same subjects in another order.
          expectEnvelopeError(() => open({ ...envelope, s: [...s].reverse() }, key));
        }
        // Unchanged, it still opens.
        expect(open(envelope, key)).toEqual(viaJson(value));
      }),
      RUNS,
    );
  });

  it('a flipped ciphertext byte, a flipped iv byte or a wrong key → EnvelopeError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), subjectsArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (value, subjects, at, mask) => {
        const { envelope, key } = sealFor(value, subjects);
        const ct = Buffer.from(envelope.ct, 'base64');
        ct[at % ct.length] ^= mask;
        expectEnvelopeError(() => open({ ...envelope, ct: ct.toString('base64') }, key));

        const iv = Buffer.from(envelope.iv, 'base64');
        iv[at % iv.length] ^= mask;
        expectEnvelopeError(() => open({ ...envelope, iv: iv.toString('base64') }, key));

        expectEnvelopeError(() => open(envelope, randomBytes(KEY_BYTES)));
      }),
      RUNS,
    );
  });

  it('a malformed envelope (short iv, ciphertext shorter than its tag) → EnvelopeError', () => {
    const { keyOf } = keyring([A]);
    const envelope = seal({ name: 'x' }, [A], keyOf(A));
    expectEnvelopeError(() => open({ ...envelope, iv: Buffer.alloc(8).toString('base64') }, keyOf(A)));
    expectEnvelopeError(() => open({ ...envelope, ct: Buffer.alloc(15).toString('base64') }, keyOf(A)));
    expectEnvelopeError(() => open({ ...envelope, ct: '' }, keyOf(A)));
    // Cut after the tag's first bytes: authentication fails.
    expectEnvelopeError(() => open({ ...envelope, ct: Buffer.from(envelope.ct, 'base64').subarray(1).toString('base64') }, keyOf(A)));
  });
});

describe('envelope: keys of several subjects', () => {
  it('one subject: the player’s own key', () => {
    const { keyOf } = keyring([A]);
    expect(subjectKey([A], keyOf)).toBe(keyOf(A));
  });

  it('several subjects: a 32-byte key derived from all of theirs, different from each, the same every time', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.uuid(), { minLength: 2, maxLength: 3 }), (subjects) => {
        const s = normalizeSubjects(subjects);
        const { keyOf } = keyring(s);
        const derived = subjectKey(s, keyOf);
        expect(derived).toHaveLength(KEY_BYTES);
        for (const subject of s) expect(derived.equals(keyOf(subject))).toBe(false);
        expect(subjectKey(s, keyOf).equals(derived)).toBe(true);
        // Another set of subjects with the same keys gets another key.
        expect(subjectKey(s.slice(1), keyOf).equals(derived)).toBe(false);
      }),
      RUNS,
    );
  });

  it('needs every subject’s key: with any one of them replaced the value does not open', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.uniqueArray(fc.uuid(), { minLength: 2, maxLength: 3 }), fc.nat(), (value, subjects, pick) => {
        const { envelope, s, keys, keyOf } = sealFor(value, subjects);
        expect(open(envelope, subjectKey(envelope.s, keyOf))).toEqual(viaJson(value));
        const lost = s[pick % s.length]!;
        const replaced = new Map(keys).set(lost, randomBytes(KEY_BYTES));
        expectEnvelopeError(() => open(envelope, subjectKey(envelope.s, (id) => replaced.get(id)!)));
        // Nor with any single subject's own key.
        for (const subject of s) expectEnvelopeError(() => open(envelope, keyOf(subject)));
      }),
      RUNS,
    );
  });

  it('normalizeSubjects: distinct and sorted, the same set', () => {
    expect(normalizeSubjects([C, A, C, B, A])).toEqual([A, B, C]);
    expect(normalizeSubjects([])).toEqual([]);
    fc.assert(
      fc.property(fc.array(fc.constantFrom(A, B, C, 'b', 'a', 'B')), (ids) => {
        const out = normalizeSubjects(ids);
        expect(new Set(out).size).toBe(out.length);
        expect(new Set(out)).toEqual(new Set(ids));
        for (let i = 1; i < out.length; i++) expect(out[i - 1]! < out[i]!).toBe(true);
        // Idempotent, and the input is left alone.
        expect(normalizeSubjects(out)).toEqual(out);
      }),
      RUNS,
    );
    const input = [B, A];
    normalizeSubjects(input);
    expect(input).toEqual([B, A]);
  });
});

describe('envelope: finding and replacing envelopes in JSON', () => {
  const { keyOf } = keyring([A, B]);
  const a = seal('Alice', [A], keyOf(A));
  const b = seal({ email: 'bob@example.com' }, [B], keyOf(B));
  const ab = seal('met at the inn', [A, B], subjectKey([A, B], keyOf));

  it('findSealed finds every nested envelope, depth-first, without copying', () => {
    const value = { profile: { displayName: a, tags: ['x', { deep: [b] }] }, memory: ab, n: 1, s: null };
    const found = findSealed(value);
    expect(found).toHaveLength(3);
    expect(found[0]).toBe(a);
    expect(found[1]).toBe(b);
    expect(found[2]).toBe(ab);
    expect(findSealed([a, [a]])).toEqual([a, a]);
    expect(findSealed(a)).toEqual([a]);
    for (const nothing of [null, 1, 'text', true, [], {}, { $pii: 2, s: [], iv: '', ct: '' }, { $pii: 1, s: 'x', iv: '', ct: '' }, { $pii: 1, s: [] }]) {
      expect(findSealed(nothing)).toEqual([]);
    }
  });

  it('replaceSealed replaces each envelope in a copy, sharing what it did not touch', () => {
    const untouched = { keep: [1, 2, { x: 'y' }] };
    const value = { profile: { displayName: a, locale: 'fr' }, list: [1, b, 'z'], untouched };
    const seen: Sealed[] = [];
    const out = replaceSealed(value, (e) => {
      seen.push(e);
      return open(e, subjectKey(e.s, keyOf));
    }) as typeof value;
    expect(out).toEqual({ profile: { displayName: 'Alice', locale: 'fr' }, list: [1, { email: 'bob@example.com' }, 'z'], untouched });
    expect(seen).toEqual([a, b]);
    expect(out).not.toBe(value);
    expect(out.profile).not.toBe(value.profile);
    expect(out.list).not.toBe(value.list);
    expect(out.untouched).toBe(untouched);
    // The input is not changed.
    expect(value.profile.displayName).toBe(a);
    expect(value.list[1]).toBe(b);
    // An envelope at the top level.
    expect(replaceSealed(ab, () => ERASED)).toBe(ERASED);
  });

  it('returns the same object when nothing is sealed, for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const replace = jest.fn(() => 'never');
        expect(replaceSealed(value, replace)).toBe(value);
        expect(replace).not.toHaveBeenCalled();
        expect(findSealed(value)).toEqual([]);
      }),
      RUNS,
    );
  });

  it('finds and replaces an envelope placed anywhere in any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.array(fc.oneof(fc.nat(5), fc.string({ maxLength: 3 })), { maxLength: 4 }), (value, pathHints) => {
        // Put `a` somewhere inside `value` (wrapping it so there is always a place).
        const root: Record<string, unknown> = { value, slot: null };
        let holder: Record<string, unknown> | unknown[] = root;
        let key: string | number = 'slot';
        for (const hint of pathHints) {
          const next: Record<string, unknown> | unknown[] = typeof hint === 'number' ? [] : {};
          (holder as Record<string | number, unknown>)[key] = next;
          holder = next;
          key = typeof hint === 'number' ? hint : `k${hint}`;
        }
        (holder as Record<string | number, unknown>)[key] = a;
        expect(findSealed(root)).toEqual([a]);
        const out = replaceSealed(root, () => ERASED) as Record<string, unknown>;
        expect(out).not.toBe(root);
        expect(out.value).toBe(value);
        expect(findSealed(out)).toEqual([]);
        expect(JSON.stringify(out)).toContain('{"$erased":true}');
      }),
      RUNS,
    );
  });

  it('isErased: exactly { $erased: true }', () => {
    expect(isErased(ERASED)).toBe(true);
    expect(isErased({ $erased: true })).toBe(true);
    expect(isErased(JSON.parse(JSON.stringify(ERASED)))).toBe(true);
    for (const not of [null, undefined, true, 'erased', [], {}, { $erased: false }, { $erased: 'true' }, { $erased: 1 }, { $erased: true, name: 'x' }, [ERASED], a]) {
      expect(isErased(not)).toBe(false);
    }
    expect(Object.isFrozen(ERASED)).toBe(true);
  });
});
