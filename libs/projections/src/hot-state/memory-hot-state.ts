import type { Doc, DocTable } from '../projections';
import { hotKey, type HotDoc, type HotStateStore } from './hot-state';

/** The state kept as its JSON text: a copy no caller can change, cheaper to make and to hold (one string for the collector) than a cloned object graph. */
type Entry = Omit<HotDoc, 'state'> & { state: string; expiresAt: number };

/**
 * The in-process hot store of the embedded default: the same contract as
 * Redis (revision guard, TTL) in a bounded map, least recently used out first.
 */
export class MemoryHotState implements HotStateStore {
  readonly kind = 'memory' as const;
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly options: { ttlSeconds: number; maxEntries: number; now?: () => number },
  ) {}

  private now(): number {
    return this.options.now ? this.options.now() : Date.now();
  }

  async get(table: DocTable, worldId: string, id: string, generation = 1): Promise<HotDoc | null> {
    const key = hotKey(table, worldId, id, generation);
    const entry = this.entries.get(key);
    if (!entry) return null;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return null;
    }
    // Map order is insertion order: re-inserting marks it most recently used.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return { revision: entry.revision, position: entry.position, state: JSON.parse(entry.state) as unknown, updatedAt: entry.updatedAt };
  }

  async put(docs: readonly Doc[]): Promise<void> {
    const now = this.now();
    for (const doc of docs) {
      const key = hotKey(doc.table, doc.worldId, doc.id, doc.generation);
      const stored = this.entries.get(key);
      // Newer by (revision, position): an erasure rewrites a document at the same revision, a later position.
      if (stored && stored.expiresAt > now && (stored.revision > doc.revision || (stored.revision === doc.revision && stored.position >= doc.position))) continue;
      this.entries.delete(key);
      this.entries.set(key, {
        revision: doc.revision,
        position: doc.position,
        state: JSON.stringify(doc.state),
        updatedAt: doc.updatedAt,
        expiresAt: now + this.options.ttlSeconds * 1000,
      });
    }
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  async ping(): Promise<void> {}

  onPossibleLoss(): void {}

  forget(): void {
    this.entries.clear();
  }

  async close(): Promise<void> {
    this.entries.clear();
  }
}
