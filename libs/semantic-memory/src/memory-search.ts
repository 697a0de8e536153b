import type { MemoryStore } from './memory-store';
import { scoreMemories, type Candidate, type RetrievalWeights } from './retrieval';
import type { VectorIndex } from './vector-index';
import { unitVector } from './vectors';

export type MemorySearchRequest = {
  worldId: string;
  npcId: string;
  embedding: readonly number[];
  topK: number;
  minScore?: number;
  weights?: Partial<RetrievalWeights>;
};

export type FoundMemory = {
  memoryId: string;
  text: string;
  /** The weighted sum of the normalised terms. */
  score: number;
  /** Cosine similarity to the query, −1…1. */
  relevance: number;
  /** decay^(hours since last retrieved), 0…1. */
  recency: number;
  /** As recorded, 1–10. */
  importance: number;
  /** Each term min-max normalised over the candidates (0…1), before its weight. */
  terms: RetrievalWeights;
  subjects: string[];
  createdAt: string;
  /** Before this retrieval; null if never retrieved. */
  lastAccessedAt: string | null;
  /** The position of the event that recorded it. */
  position: number;
};

export type MemorySearchOptions = {
  dimension: number;
  /** Candidates fetched from the index per result asked, so recency and importance can lift a less similar memory. */
  candidateFactor?: number;
  minCandidates?: number;
  maxCandidates?: number;
  clock?: () => Date;
};

/**
 * Retrieval: candidates from the vector index by similarity (more than
 * asked), their rows from PostgreSQL (only this NPC's searchable memories,
 * whatever the index said), scored by relevance, recency and importance;
 * the ones returned are marked retrieved now.
 */
export class MemorySearch {
  constructor(
    private readonly index: VectorIndex,
    private readonly store: MemoryStore,
    private readonly options: MemorySearchOptions,
  ) {}

  async search(request: MemorySearchRequest): Promise<FoundMemory[]> {
    const vector = unitVector(request.embedding, this.options.dimension);
    const factor = this.options.candidateFactor ?? 4;
    const candidatesK = Math.min(this.options.maxCandidates ?? 1000, Math.max(request.topK * factor, this.options.minCandidates ?? 20));
    const matches = await this.index.query({ worldId: request.worldId, npcId: request.npcId, vector, topK: candidatesK });
    const similarity = new Map(matches.map((m) => [m.memoryId, m.similarity]));
    const rows = await this.store.details(request.worldId, request.npcId, [...similarity.keys()]);
    const byId = new Map(rows.map((r) => [r.memoryId, r]));
    const candidates: Candidate[] = rows.map((r) => ({
      memoryId: r.memoryId,
      similarity: similarity.get(r.memoryId)!,
      importance: r.importance,
      createdAt: r.createdAt,
      lastAccessedAt: r.lastAccessedAt,
    }));
    const now = this.options.clock?.() ?? new Date();
    const scored = scoreMemories(candidates, { now, topK: request.topK, minScore: request.minScore, weights: request.weights });
    await this.store.touch(
      scored.map((s) => s.memoryId),
      now,
    );
    return scored.map((s) => {
      const row = byId.get(s.memoryId)!;
      return {
        memoryId: s.memoryId,
        text: row.text,
        score: s.score,
        relevance: s.similarity,
        recency: s.recency,
        importance: s.importance,
        terms: s.terms,
        subjects: row.subjects,
        createdAt: row.createdAt.toISOString(),
        lastAccessedAt: row.lastAccessedAt?.toISOString() ?? null,
        position: Number(row.position),
      };
    });
  }
}
