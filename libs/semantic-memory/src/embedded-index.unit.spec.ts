import fc from 'fast-check';
import { NpcVectors } from './embedded-index';
import { InvalidEmbeddingError, bytesToVector, unitVector, vectorToBytes } from './vectors';

const random = (d: number) => unitVector(Array.from({ length: d }, () => Math.random() * 2 - 1), d);
const exactTopK = (vectors: Map<string, Float32Array>, q: Float32Array, k: number) =>
  [...vectors]
    .map(([id, v]) => ({ id, s: v.reduce((acc, x, i) => acc + x * q[i]!, 0) }))
    .sort((a, b) => b.s - a.s)
    .slice(0, k)
    .map((x) => x.id);

describe('NpcVectors (the embedded index’s per-NPC block)', () => {
  it('exact path: the same top-k as a brute-force scan, with cosine similarities', () => {
    const d = 32;
    const block = new NpcVectors(d);
    const all = new Map<string, Float32Array>();
    for (let i = 0; i < 300; i++) {
      const v = random(d);
      all.set(`m${i}`, v);
      block.add(`m${i}`, v);
    }
    for (let t = 0; t < 20; t++) {
      const q = random(d);
      const found = block.search(q, 5, 10_000, 8);
      expect(found.map((f) => f.memoryId)).toEqual(exactTopK(all, q, 5));
      const first = all.get(found[0]!.memoryId)!;
      expect(found[0]!.similarity).toBeCloseTo(first.reduce((acc, x, i) => acc + x * q[i]!, 0), 5);
    }
  });

  it('i8 scan + exact re-rank (large NPCs): recall@5 ≥ 0.99 against brute force', () => {
    const d = 128;
    const block = new NpcVectors(d);
    const all = new Map<string, Float32Array>();
    for (let i = 0; i < 3000; i++) {
      const v = random(d);
      all.set(`m${i}`, v);
      block.add(`m${i}`, v);
    }
    let hits = 0;
    for (let t = 0; t < 50; t++) {
      const q = random(d);
      const truth = new Set(exactTopK(all, q, 5));
      for (const f of block.search(q, 5, 100, 8)) if (truth.has(f.memoryId)) hits++;
    }
    expect(hits / 250).toBeGreaterThanOrEqual(0.99);
  });

  it('(property) after any adds and removes it holds exactly the ids added and not removed, each with its vector', () =>
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 30 })), { maxLength: 200 }), (steps) => {
        const d = 4;
        const block = new NpcVectors(d, 1);
        const model = new Map<string, Float32Array>();
        for (const [add, n] of steps) {
          const id = `m${n}`;
          if (add) {
            const v = random(d);
            block.add(id, v);
            model.set(id, v);
          } else {
            block.remove(id);
            model.delete(id);
          }
        }
        expect(block.size).toBe(model.size);
        for (const [id, v] of model) {
          // Searching for a vector itself finds it with similarity 1.
          const [top] = block.search(v, 1, 1000, 8);
          expect(block.has(id)).toBe(true);
          expect(top!.similarity).toBeCloseTo(1, 5);
        }
        const all = block.search(random(d), 1000, 1000, 8).map((m) => m.memoryId).sort();
        expect(all).toEqual([...model.keys()].sort());
      }),
    ));

  it('unitVector refuses a wrong length, NaN, Infinity and the zero vector; bytes round-trip', () => {
    expect(() => unitVector([1, 2], 3)).toThrow(InvalidEmbeddingError);
    expect(() => unitVector([1, Number.NaN, 0], 3)).toThrow(/not a finite number/);
    expect(() => unitVector([1, Infinity, 0], 3)).toThrow(/not a finite number/);
    expect(() => unitVector([0, 0, 0], 3)).toThrow(/no direction/);
    const v = unitVector([3, 4], 2);
    expect(Array.from(v)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(bytesToVector(vectorToBytes(v))).toEqual(v);
  });
});
