import fc from 'fast-check';
import { recencyOf, scoreMemories, type Candidate } from './retrieval';

const NOW = new Date('2026-06-01T12:00:00Z');
const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000);
const candidate = (memoryId: string, similarity: number, importance: number, lastRetrievedHoursAgo: number | null, createdHoursAgo = 100): Candidate => ({
  memoryId,
  similarity,
  importance,
  createdAt: hoursAgo(createdHoursAgo),
  lastAccessedAt: lastRetrievedHoursAgo === null ? null : hoursAgo(lastRetrievedHoursAgo),
});

describe('retrieval scoring (Generative Agents)', () => {
  it('recency is 0.995^hours since last retrieval, or since recorded when never retrieved', () => {
    expect(recencyOf(candidate('a', 0, 5, 10), NOW)).toBeCloseTo(0.995 ** 10, 12);
    expect(recencyOf(candidate('a', 0, 5, null, 24), NOW)).toBeCloseTo(0.995 ** 24, 12);
    expect(recencyOf(candidate('a', 0, 5, -1), NOW)).toBe(1);
  });

  it('normalises each term over the candidates and sums the weighted terms', () => {
    const scored = scoreMemories([candidate('a', 0.9, 2, 0), candidate('b', 0.5, 10, 48), candidate('c', 0.7, 6, 24)], { now: NOW, topK: 3 });
    const byId = Object.fromEntries(scored.map((s) => [s.memoryId, s]));
    expect(byId.a!.terms).toEqual({ relevance: 1, recency: 1, importance: 0 });
    expect(byId.b!.terms).toEqual({ relevance: 0, recency: 0, importance: 1 });
    expect(byId.c!.terms.relevance).toBeCloseTo(0.5, 12);
    expect(byId.c!.terms.importance).toBeCloseTo(0.5, 12);
    expect(byId.a!.score).toBe(2);
    for (const s of scored) expect(s.score).toBeCloseTo(s.terms.relevance + s.terms.recency + s.terms.importance, 12);
  });

  it('the weights change the order: relevance alone, importance alone, recency alone', () => {
    const list = [candidate('relevant', 0.95, 1, 200), candidate('vital', 0.2, 10, 100), candidate('fresh', 0.1, 3, 0)];
    const top = (weights: { relevance: number; recency: number; importance: number }) => scoreMemories(list, { now: NOW, topK: 1, weights })[0]!.memoryId;
    expect(top({ relevance: 1, recency: 0, importance: 0 })).toBe('relevant');
    expect(top({ relevance: 0, recency: 0, importance: 1 })).toBe('vital');
    expect(top({ relevance: 0, recency: 1, importance: 0 })).toBe('fresh');
  });

  it('a term every candidate shares counts fully for all (a lone candidate scores the sum of the weights)', () => {
    expect(scoreMemories([candidate('only', -0.3, 5, 3)], { now: NOW, topK: 5 })[0]!.score).toBe(3);
    expect(scoreMemories([candidate('only', -0.3, 5, 3)], { now: NOW, topK: 5, weights: { relevance: 2, recency: 0.5, importance: 0 } })[0]!.score).toBe(2.5);
  });

  it('minScore drops the weaker ones, topK keeps the best', () => {
    const list = [candidate('a', 0.9, 10, 0), candidate('b', 0.1, 1, 100), candidate('c', 0.5, 5, 50)];
    expect(scoreMemories(list, { now: NOW, topK: 2 }).map((s) => s.memoryId)).toEqual(['a', 'c']);
    expect(scoreMemories(list, { now: NOW, topK: 3, minScore: 1 }).map((s) => s.memoryId)).toEqual(['a', 'c']);
  });

  it('(property) scores lie in [0, sum of weights], come best first, and are a pure function of the input', () =>
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({ min: -1, max: 1, noNaN: true }), fc.integer({ min: 1, max: 10 }), fc.option(fc.integer({ min: 0, max: 10_000 }))), { minLength: 1, maxLength: 30 }),
        fc.record({ relevance: fc.double({ min: 0, max: 5, noNaN: true }), recency: fc.double({ min: 0, max: 5, noNaN: true }), importance: fc.double({ min: 0, max: 5, noNaN: true }) }),
        (rows, weights) => {
          const list = rows.map(([s, i, h], n) => candidate(`m${n}`, s, i, h));
          const scored = scoreMemories(list, { now: NOW, topK: list.length, weights });
          const max = weights.relevance + weights.recency + weights.importance;
          expect(scored).toHaveLength(list.length);
          for (const s of scored) {
            expect(s.score).toBeGreaterThanOrEqual(-1e-9);
            expect(s.score).toBeLessThanOrEqual(max + 1e-9);
          }
          for (let i = 1; i < scored.length; i++) expect(scored[i - 1]!.score).toBeGreaterThanOrEqual(scored[i]!.score);
          expect(scoreMemories([...list].reverse(), { now: NOW, topK: list.length, weights })).toEqual(scored);
        },
      ),
    ));
});
