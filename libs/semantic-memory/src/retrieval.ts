/**
 * Retrieval scoring after Generative Agents (Park et al., 2023, §4.1):
 *
 *   score = w_relevance·relevance + w_recency·recency + w_importance·importance
 *
 * relevance is the cosine similarity of the memory to the query; recency is
 * `decay^(hours since the memory was last retrieved)` (never retrieved: since
 * it was recorded), decay 0.995 as in the paper; importance is the 1–10 the
 * game gave, scaled to 0.1–1. Each term is min-max normalised over the
 * candidates, so the weights trade like against like. Pure: the clock is an
 * argument.
 */

export type RetrievalWeights = { relevance: number; recency: number; importance: number };

export const DEFAULT_WEIGHTS: RetrievalWeights = { relevance: 1, recency: 1, importance: 1 };
export const RECENCY_DECAY = 0.995;

export type Candidate = {
  memoryId: string;
  /** Cosine similarity to the query, −1…1. */
  similarity: number;
  /** 1–10. */
  importance: number;
  createdAt: Date;
  /** Null when never retrieved. */
  lastAccessedAt: Date | null;
};

export type ScoredMemory = Candidate & {
  score: number;
  /** decay^hours since last retrieval, 0…1, before normalisation. */
  recency: number;
  /** Each term after min-max normalisation (0…1), before its weight: what the designer tunes. */
  terms: RetrievalWeights;
};

export type ScoreOptions = {
  now: Date;
  weights?: Partial<RetrievalWeights>;
  decay?: number;
  /** How many to return (the best first). */
  topK: number;
  /** Drop memories scoring below this (after weights). */
  minScore?: number;
};

const HOUR_MS = 3_600_000;

export const recencyOf = (candidate: Candidate, now: Date, decay = RECENCY_DECAY): number => {
  const since = (candidate.lastAccessedAt ?? candidate.createdAt).getTime();
  const hours = Math.max(0, (now.getTime() - since) / HOUR_MS);
  return decay ** hours;
};

/**
 * Min-max over the candidates; when every candidate has the same value the
 * term cannot tell them apart and counts fully for all (1), so a lone
 * candidate scores the sum of the weights.
 */
const normaliser = (values: number[]): ((v: number) => number) => {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range = max - min;
  return range > 0 ? (v) => (v - min) / range : () => 1;
};

export const scoreMemories = (candidates: readonly Candidate[], options: ScoreOptions): ScoredMemory[] => {
  const weights = { ...DEFAULT_WEIGHTS, ...options.weights };
  const recencies = candidates.map((c) => recencyOf(c, options.now, options.decay));
  const importances = candidates.map((c) => c.importance / 10);
  const relevance = normaliser(candidates.map((c) => c.similarity));
  const recency = normaliser(recencies);
  const importance = normaliser(importances);
  const scored = candidates.map((c, i): ScoredMemory => {
    const terms = { relevance: relevance(c.similarity), recency: recency(recencies[i]!), importance: importance(importances[i]!) };
    const score = weights.relevance * terms.relevance + weights.recency * terms.recency + weights.importance * terms.importance;
    return { ...c, score, recency: recencies[i]!, terms };
  });
  scored.sort((a, b) => b.score - a.score || b.similarity - a.similarity || (a.memoryId < b.memoryId ? -1 : a.memoryId > b.memoryId ? 1 : 0));
  const kept = options.minScore === undefined ? scored : scored.filter((s) => s.score >= options.minScore!);
  return kept.slice(0, options.topK);
};
