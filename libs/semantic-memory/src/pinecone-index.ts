import { Pinecone, type Index, type PineconeRecord, type RecordMetadata } from '@pinecone-database/pinecone';
import type { ExternalVectorIndex, VectorMatch, VectorQuery, VectorRecord } from './vector-index';

export type PineconeIndexOptions = {
  apiKey: string;
  /** The index's data-plane host (PINECONE_HOST), or its name (PINECONE_INDEX), which the client resolves. */
  host?: string;
  indexName?: string;
  /** Prepended to the world id to name its namespace (one namespace per world). */
  namespacePrefix?: string;
  /** Attempts per request on 429 and 5xx (and connection errors), with exponential back-off. */
  maxAttempts?: number;
  backoffMs?: number;
  logger?: { warn(msg: string): void };
};

/** Pinecone's request limits: 1,000 records and 2 MB per upsert, 40 KB of metadata per record. */
export const PINECONE_LIMITS = { recordsPerUpsert: 1000, bytesPerUpsert: 2 * 1024 * 1024, metadataBytes: 40 * 1024, idsPerDelete: 1000 } as const;
/** What an upsert body may hold of the 2 MB, leaving room for the JSON around the records. */
const UPSERT_BUDGET = PINECONE_LIMITS.bytesPerUpsert - 64 * 1024;
/** Metadata text is cut to this many bytes (UTF-8); the full text stays in PostgreSQL. */
const TEXT_METADATA_BYTES = 32 * 1024;

type MemoryMetadata = RecordMetadata & {
  npc_id: string;
  world_id: string;
  text: string;
  text_truncated: boolean;
  importance: number;
  created_at: string;
  position: number;
};

/** Cuts a string to at most `max` bytes of UTF-8 without splitting a character. */
export const truncateUtf8 = (text: string, max: number): string => {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  const cut = Buffer.from(text, 'utf8').subarray(0, max).toString('utf8');
  // A character split by the cut decodes as U+FFFD at the end: drop it.
  return cut.endsWith('\uFFFD') ? cut.slice(0, -1) : cut;
};

/** Deleting from a namespace that was never written is a 404 on Pinecone: nothing to delete. */
const ignoreNotFound = (error: unknown): void => {
  if ((error as { name?: string }).name !== 'PineconeNotFoundError') throw error;
};

/** 5xx arrive as PineconeMaxRetriesExceededError (the client's own retry, set to 0), 429 as PineconeUnmappedHttpError "… Status: 429." */
const RETRYABLE = new Set(['PineconeInternalServerError', 'PineconeUnavailableError', 'PineconeConnectionError', 'PineconeTimeoutError', 'PineconeMaxRetriesExceededError']);
const isRetryable = (error: unknown): boolean => {
  const e = error as { name?: string; message?: string };
  return RETRYABLE.has(e.name ?? '') || /\b(429|500|502|503|504)\b|too many requests|rate limit/i.test(e.message ?? '');
};

/**
 * The Pinecone adapter, with the official client: one namespace per world,
 * record id = memoryId, metadata `{ npc_id, world_id, text, importance,
 * created_at, position }`, search filtered by `npc_id`. Upserts are split
 * under Pinecone's request limits; every request is retried with back-off on
 * 429 and 5xx. The memory projection calls it through its outbox, so a
 * failure here delays the index and never loses a change.
 */
export class PineconeVectorIndex implements ExternalVectorIndex {
  readonly kind = 'pinecone' as const;
  private readonly index: Index<MemoryMetadata>;
  private readonly worlds = new Set<string>();

  constructor(private readonly options: PineconeIndexOptions) {
    // The client retries 5xx by itself, but not 429 nor a refused connection: one retry policy for all, here.
    const client = new Pinecone({ apiKey: options.apiKey, maxRetries: 0 });
    if (options.host) this.index = client.index<MemoryMetadata>({ host: options.host });
    else if (options.indexName) this.index = client.index<MemoryMetadata>({ name: options.indexName });
    else throw new Error('Pinecone needs PINECONE_HOST or PINECONE_INDEX');
  }

  namespaceOf(worldId: string): string {
    return `${this.options.namespacePrefix ?? ''}${worldId}`;
  }

  async upsert(records: readonly VectorRecord[]): Promise<void> {
    const byWorld = new Map<string, PineconeRecord<MemoryMetadata>[]>();
    for (const r of records) {
      this.worlds.add(r.worldId);
      const text = truncateUtf8(r.text, TEXT_METADATA_BYTES);
      const record: PineconeRecord<MemoryMetadata> = {
        id: r.memoryId,
        values: Array.from(r.vector),
        metadata: {
          npc_id: r.npcId,
          world_id: r.worldId,
          text,
          text_truncated: text.length !== r.text.length,
          importance: r.importance,
          created_at: r.createdAt.toISOString(),
          position: Number(r.position),
        },
      };
      if (!byWorld.has(r.worldId)) byWorld.set(r.worldId, []);
      byWorld.get(r.worldId)!.push(record);
    }
    for (const [worldId, list] of byWorld) {
      for (const batch of upsertBatches(list)) await this.retry('upsert', () => this.index.upsert({ records: batch, namespace: this.namespaceOf(worldId) }));
    }
  }

  async remove(worldId: string, memoryIds: readonly string[]): Promise<void> {
    for (let i = 0; i < memoryIds.length; i += PINECONE_LIMITS.idsPerDelete) {
      const ids = memoryIds.slice(i, i + PINECONE_LIMITS.idsPerDelete);
      await this.retry('delete', () => this.index.deleteMany({ ids, namespace: this.namespaceOf(worldId) })).catch(ignoreNotFound);
    }
  }

  async query({ worldId, npcId, vector, topK }: VectorQuery): Promise<VectorMatch[]> {
    const result = await this.retry('query', () =>
      this.index.query({ vector: Array.from(vector), topK, filter: { npc_id: { $eq: npcId } }, namespace: this.namespaceOf(worldId), includeMetadata: true }),
    );
    // The filter is Pinecone's; the check is ours: a search never answers with another NPC's memory.
    return result.matches
      .filter((m) => m.metadata?.npc_id === npcId && m.metadata?.world_id === worldId)
      .map((m) => ({ memoryId: m.id, similarity: m.score ?? 0 }));
  }

  async clear(worldId?: string): Promise<void> {
    const worlds = worldId ? [worldId] : [...this.worlds];
    for (const w of worlds) {
      await this.retry('delete', () => this.index.deleteAll({ namespace: this.namespaceOf(w) })).catch(ignoreNotFound);
    }
  }

  async close(): Promise<void> {
    // The client holds no connections of its own (fetch).
  }

  private async retry<T>(what: string, call: () => Promise<T>): Promise<T> {
    const attempts = this.options.maxAttempts ?? 5;
    let delay = this.options.backoffMs ?? 200;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (attempt >= attempts || !isRetryable(error)) throw error;
        this.options.logger?.warn(`pinecone ${what}: ${(error as Error).message}; attempt ${attempt + 1}/${attempts} in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }
}

/** Splits records into upserts of at most 1,000 records and under 2 MB of JSON each. */
export const upsertBatches = <T extends { values?: number[] }>(records: readonly T[]): T[][] => {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = Buffer.byteLength(JSON.stringify(record), 'utf8') + 1;
    if (current.length > 0 && (current.length >= PINECONE_LIMITS.recordsPerUpsert || bytes + size > UPSERT_BUDGET)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(record);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
};
