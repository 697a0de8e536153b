import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config';

export type CachedAggregate = { state: unknown; revision: bigint; position: bigint };

/**
 * Folded states of recently used streams (LRU). Events are immutable, so a
 * cached state is always the fold of a true prefix of its stream: the handler
 * reads only the events after it, usually none. Shared across requests and
 * safe with several instances, because whatever another writer appended is
 * read as the tail. States are never mutated (evolve returns new objects).
 */
@Injectable()
export class AggregateCache {
  private readonly entries = new Map<string, CachedAggregate>();
  private readonly max: number;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.max = config.AGGREGATE_CACHE_SIZE;
  }

  get(streamId: string): CachedAggregate | undefined {
    const entry = this.entries.get(streamId);
    if (entry) {
      this.entries.delete(streamId);
      this.entries.set(streamId, entry);
    }
    return entry;
  }

  /** Keeps the newer of what is cached and what is offered. */
  set(streamId: string, entry: CachedAggregate): void {
    if (this.max === 0) return;
    const current = this.entries.get(streamId);
    if (current && current.revision >= entry.revision) return;
    this.entries.delete(streamId);
    this.entries.set(streamId, entry);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  delete(streamId: string): void {
    this.entries.delete(streamId);
  }

  get size(): number {
    return this.entries.size;
  }
}
