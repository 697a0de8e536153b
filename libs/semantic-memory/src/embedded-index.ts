import { MetricKind, exactSearch } from 'usearch';
import type { MemoryChange, MemoryStore } from './memory-store';
import type { VectorIndex, VectorMatch, VectorQuery } from './vector-index';
import { bytesToVector } from './vectors';

export type EmbeddedIndexOptions = {
  dimension: number;
  /** NPCs with at most this many memories are searched exactly (f32, every vector); larger ones by an i8 scan and an exact re-rank. */
  exactMax?: number;
  /** Vectors kept in process, in bytes; the least recently searched NPCs are dropped beyond it (and read back when searched). */
  maxBytes?: number;
  /** Candidates the i8 scan passes to the exact re-rank, per result asked (at least 64). */
  rerankFactor?: number;
  logger?: { warn(msg: string): void };
};

const DEFAULT_EXACT_MAX = 4096;
const DEFAULT_MAX_BYTES = 2 * 1024 ** 3;

/**
 * One NPC's searchable vectors, packed: slot i holds ids[i]. Removal moves
 * the last slot into the hole, so a search scans only what is searchable.
 */
export class NpcVectors {
  private f32: Float32Array;
  private i8: Int8Array | null = null;
  private ids: string[] = [];
  private readonly slots = new Map<string, number>();
  /** The last change of the NPC's rows this holds (see MemoryStore.changes). */
  seen = 0n;

  constructor(
    readonly dimension: number,
    capacity = 16,
    /** The projection's generation the vectors came from (a rebuild's switch raises it). */
    readonly generation = 1,
  ) {
    this.f32 = new Float32Array(capacity * dimension);
  }

  get size(): number {
    return this.ids.length;
  }

  get bytes(): number {
    return this.f32.byteLength + (this.i8?.byteLength ?? 0) + this.ids.length * 80;
  }

  has(id: string): boolean {
    return this.slots.has(id);
  }

  /** Adds (or replaces) a unit vector. */
  add(id: string, vector: Float32Array): void {
    const d = this.dimension;
    let slot = this.slots.get(id);
    if (slot === undefined) {
      slot = this.ids.length;
      if ((slot + 1) * d > this.f32.length) this.grow(Math.max(16, Math.ceil(slot * 1.5)));
      this.ids.push(id);
      this.slots.set(id, slot);
    }
    this.f32.set(vector, slot * d);
    if (this.i8) quantizeInto(vector, this.i8, slot * d);
  }

  remove(id: string): void {
    const slot = this.slots.get(id);
    if (slot === undefined) return;
    const d = this.dimension;
    const last = this.ids.length - 1;
    if (slot !== last) {
      this.f32.copyWithin(slot * d, last * d, (last + 1) * d);
      this.i8?.copyWithin(slot * d, last * d, (last + 1) * d);
      const moved = this.ids[last]!;
      this.ids[slot] = moved;
      this.slots.set(moved, slot);
    }
    this.ids.pop();
    this.slots.delete(id);
  }

  /**
   * The k closest by cosine similarity. Exact (every vector, f32, SIMD) up
   * to `exactMax` vectors; beyond, an i8 scan of every vector picks
   * `max(64, k·rerankFactor)` candidates and those are ranked exactly.
   */
  search(query: Float32Array, k: number, exactMax: number, rerankFactor: number): VectorMatch[] {
    const n = this.ids.length;
    const d = this.dimension;
    if (n === 0 || k <= 0) return [];
    const want = Math.min(k, n);
    if (n <= exactMax) {
      const found = exactSearch(this.f32.subarray(0, n * d), query, d, want, MetricKind.IP, 1);
      const out: VectorMatch[] = [];
      for (let i = 0; i < found.keys.length; i++) out.push({ memoryId: this.ids[Number(found.keys[i])]!, similarity: 1 - found.distances[i]! });
      return out;
    }
    if (!this.i8) {
      this.i8 = new Int8Array(this.f32.length);
      for (let s = 0; s < n; s++) quantizeInto(this.f32.subarray(s * d, (s + 1) * d), this.i8, s * d);
    }
    const q8 = new Int8Array(d);
    quantizeInto(query, q8, 0);
    const pool = Math.min(n, Math.max(64, want * rerankFactor));
    const found = exactSearch(this.i8.subarray(0, n * d), q8, d, pool, MetricKind.Cos, 1);
    const ranked: VectorMatch[] = [];
    for (let i = 0; i < found.keys.length; i++) {
      const slot = Number(found.keys[i]);
      let s = 0;
      const base = slot * d;
      for (let j = 0; j < d; j++) s += query[j]! * this.f32[base + j]!;
      ranked.push({ memoryId: this.ids[slot]!, similarity: s });
    }
    ranked.sort((a, b) => b.similarity - a.similarity);
    return ranked.slice(0, want);
  }

  private grow(capacity: number): void {
    const next = new Float32Array(capacity * this.dimension);
    next.set(this.f32.subarray(0, this.ids.length * this.dimension));
    this.f32 = next;
    if (this.i8) {
      const i8 = new Int8Array(capacity * this.dimension);
      i8.set(this.i8.subarray(0, this.ids.length * this.dimension));
      this.i8 = i8;
    }
  }
}

/** Per-vector scale to ±127: cosine in i8 ignores each vector's scale, so nothing of the range is wasted. */
const quantizeInto = (vector: Float32Array, out: Int8Array, offset: number): void => {
  let max = 0;
  for (let i = 0; i < vector.length; i++) max = Math.max(max, Math.abs(vector[i]!));
  const scale = max > 0 ? 127 / max : 0;
  for (let i = 0; i < vector.length; i++) out[offset + i] = Math.round(vector[i]! * scale);
};

/**
 * The embedded vector index: the memory rows in PostgreSQL are the index
 * (durable, rebuilt with the projection); each process keeps the vectors of
 * the NPCs it searches in memory and, before each search, catches up with
 * the rows changed since (one indexed lookup when nothing changed), so every
 * instance of the service answers from the committed rows.
 */
export class EmbeddedVectorIndex implements VectorIndex {
  readonly kind = 'embedded' as const;
  private readonly npcs = new Map<string, NpcVectors>();
  private readonly refreshing = new Map<string, Promise<NpcVectors | null>>();
  private generation: number | null = null;
  private readonly exactMax: number;
  private readonly maxBytes: number;
  private readonly rerankFactor: number;

  constructor(
    private readonly store: MemoryStore,
    private readonly options: EmbeddedIndexOptions,
  ) {
    this.exactMax = options.exactMax ?? DEFAULT_EXACT_MAX;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.rerankFactor = options.rerankFactor ?? 8;
  }

  async query({ worldId, npcId, vector, topK }: VectorQuery): Promise<VectorMatch[]> {
    const block = await this.current(worldId, npcId);
    return block ? block.search(vector, topK, this.exactMax, this.rerankFactor) : [];
  }

  /** What this process holds: NPCs, vectors, bytes. */
  stats(): { npcs: number; vectors: number; bytes: number } {
    let vectors = 0;
    let bytes = 0;
    for (const block of this.npcs.values()) {
      vectors += block.size;
      bytes += block.bytes;
    }
    return { npcs: this.npcs.size, vectors, bytes };
  }

  /** Drops every cached NPC (a rebuild switched the table). */
  forget(): void {
    this.npcs.clear();
  }

  async close(): Promise<void> {
    this.npcs.clear();
  }

  /**
   * The NPC's block, holding at least every change the head reported. A
   * refresh already running is joined, and caught up again if it started
   * before this head; a refresh that straddled a rebuild's switch (the
   * generation changed under it) is thrown away and done again.
   */
  private async current(worldId: string, npcId: string): Promise<NpcVectors | null> {
    const key = `${worldId}|${npcId}`;
    const head = await this.store.head(worldId, npcId);
    if (this.generation === null || head.generation > this.generation) {
      // A rebuild switched the rows: what is cached came from the old ones.
      this.npcs.clear();
      this.generation = head.generation;
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      const cached = this.npcs.get(key);
      if (cached && cached.generation === this.generation && cached.seen >= head.changedAt) {
        this.npcs.delete(key);
        this.npcs.set(key, cached);
        return cached;
      }
      if (head.changedAt === 0n) return null;
      let pending = this.refreshing.get(key);
      if (!pending) {
        pending = this.refresh(key, worldId, npcId, cached?.generation === this.generation ? cached : undefined).finally(() => this.refreshing.delete(key));
        this.refreshing.set(key, pending);
      }
      const block: NpcVectors | null = await pending;
      if (block && block.generation === this.generation && block.seen >= head.changedAt) return block;
    }
    throw new Error(`the memory index of NPC ${npcId} kept changing while it was read; try again`);
  }

  private async refresh(key: string, worldId: string, npcId: string, cached: NpcVectors | undefined): Promise<NpcVectors | null> {
    const generation = this.generation!;
    const changes = await this.store.changes(worldId, npcId, cached?.seen ?? 0n);
    // Read across a switch: these rows may mix the old table's and the new one's.
    if (this.generation !== generation) return null;
    const block = cached ?? new NpcVectors(this.options.dimension, Math.max(16, changes.length), generation);
    this.apply(block, changes);
    this.npcs.delete(key);
    this.npcs.set(key, block);
    this.evict(key);
    return block;
  }

  /** Rows changed since the block last looked, in the order they changed. */
  apply(block: NpcVectors, changes: readonly MemoryChange[]): void {
    for (const change of changes) {
      if (change.changedAt > block.seen) block.seen = change.changedAt;
      if (!change.visible) {
        block.remove(change.memoryId);
        continue;
      }
      if (change.embedding.length !== block.dimension * 4) {
        this.options.logger?.warn(`memory ${change.memoryId} has ${change.embedding.length / 4} dimensions, not ${block.dimension}; it is not searchable`);
        continue;
      }
      block.add(change.memoryId, bytesToVector(change.embedding));
    }
  }

  private evict(keep: string): void {
    let total = 0;
    for (const block of this.npcs.values()) total += block.bytes;
    for (const [key, block] of this.npcs) {
      if (total <= this.maxBytes) break;
      if (key === keep) continue;
      this.npcs.delete(key);
      total -= block.bytes;
    }
  }
}
