import fc from 'fast-check';
import { EmbeddedVectorIndex, NpcVectors } from './embedded-index';
import type { MemoryStore } from './memory-store';
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

/**
 * The cache's catch-up logic against a stand-in for the memory rows (the
 * real rows are exercised by the contract suite): a query never answers from
 * a refresh older than the head it saw, and a refresh that straddles a
 * rebuild's switch is not kept.
 */
describe('EmbeddedVectorIndex catch-up under concurrency', () => {
  type Row = { memoryId: string; vec: number[]; visible: boolean; changedAt: bigint };
  const rowsStore = () => {
    const rows: Row[] = [];
    let generation = 1;
    let gate: Promise<void> | null = null;
    const store = {
      head: async () => ({ changedAt: rows.reduce((m, r) => (r.changedAt > m ? r.changedAt : m), 0n), generation }),
      changes: async (_w: string, _n: string, after: bigint) => {
        const snapshot = rows.filter((r) => r.changedAt > after).map((r) => ({ memoryId: r.memoryId, embedding: vectorToBytes(new Float32Array(r.vec)), visible: r.visible, changedAt: r.changedAt }));
        if (gate) await gate;
        return snapshot.sort((a, b) => (a.changedAt < b.changedAt ? -1 : 1));
      },
    };
    return { rows, store: store as unknown as MemoryStore, switchTo: (g: number) => (generation = g), hold: (p: Promise<void> | null) => (gate = p) };
  };
  const ids = async (index: EmbeddedVectorIndex) => (await index.query({ worldId: 'w', npcId: 'n', vector: new Float32Array([1, 0]), topK: 5 })).map((m) => m.memoryId).sort();
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it('a query that saw a newer head does not take an older refresh in flight', async () => {
    const s = rowsStore();
    s.rows.push({ memoryId: 'a', vec: [1, 0], visible: true, changedAt: 10n });
    const index = new EmbeddedVectorIndex(s.store, { dimension: 2 });
    let release!: () => void;
    s.hold(new Promise((r) => (release = r)));
    const first = ids(index);
    await tick();
    // Committed meanwhile: a forgotten (11), b recorded (12).
    s.rows[0]!.visible = false;
    s.rows[0]!.changedAt = 11n;
    s.rows.push({ memoryId: 'b', vec: [0, 1], visible: true, changedAt: 12n });
    const second = ids(index);
    await tick();
    s.hold(null);
    release();
    await first;
    expect(await second).toEqual(['b']);
  });

  it('a refresh that straddles a rebuild switch is not kept', async () => {
    const s = rowsStore();
    s.rows.push({ memoryId: 'a', vec: [1, 0], visible: true, changedAt: 10n });
    const index = new EmbeddedVectorIndex(s.store, { dimension: 2 });
    expect(await ids(index)).toEqual(['a']);
    s.rows.push({ memoryId: 'b', vec: [0, 1], visible: true, changedAt: 12n });
    let release!: () => void;
    s.hold(new Promise((r) => (release = r)));
    const during = ids(index);
    await tick();
    // The switch: a rebuilt table in which `a` is not searchable, same positions.
    s.rows.length = 0;
    s.rows.push({ memoryId: 'a', vec: [1, 0], visible: false, changedAt: 10n }, { memoryId: 'b', vec: [0, 1], visible: true, changedAt: 12n });
    s.switchTo(2);
    const after = ids(index);
    await tick();
    s.hold(null);
    release();
    await during;
    expect(await after).toEqual(['b']);
    expect(await ids(index)).toEqual(['b']);
  });
});
