/**
 * The vector index port: where NPC memories are searched by embedding. Two
 * adapters: `embedded` (the default: the memory rows in PostgreSQL are the
 * index, searched in process) and `pinecone` (an external index the memory
 * projection keeps in step with the rows through an outbox).
 */

export type VectorQuery = {
  worldId: string;
  npcId: string;
  /** Unit length, the deployment's dimension. */
  vector: Float32Array;
  topK: number;
};

/** A memory found: its cosine similarity to the query (−1…1). */
export type VectorMatch = { memoryId: string; similarity: number };

export interface VectorIndex {
  readonly kind: 'embedded' | 'pinecone';
  /** Only the memories of this world's NPC, ever; the closest first. */
  query(query: VectorQuery): Promise<VectorMatch[]>;
  close(): Promise<void>;
}

/** What an external index holds per memory. */
export type VectorRecord = {
  memoryId: string;
  worldId: string;
  npcId: string;
  vector: Float32Array;
  text: string;
  importance: number;
  createdAt: Date;
  position: bigint;
};

/** An index outside PostgreSQL: told of every change, idempotently (by memory id). */
export interface ExternalVectorIndex extends VectorIndex {
  upsert(records: readonly VectorRecord[]): Promise<void>;
  remove(worldId: string, memoryIds: readonly string[]): Promise<void>;
  /** Everything of one world (a namespace), or of every world this index was told of. */
  clear(worldId?: string): Promise<void>;
}

export const isExternal = (index: VectorIndex): index is ExternalVectorIndex => 'upsert' in index && typeof (index as ExternalVectorIndex).upsert === 'function';
