import type { Pool, PoolClient } from 'pg';
import { PostgresEventStore, type Position, type RecordedEvent } from '@lorestore/event-store';
import { ReadModelStore, type BatchChanges, type CommitOptions, type Doc, type DocTable, type HotDoc, type HotStateStore } from '@lorestore/projections';

/**
 * The runner's collaborators with stopwatches (and, for the sinks, a copy of
 * what they were given, to be written again by the sink-alone measurements).
 * They only add a `performance.now()` pair and an array push per call.
 */
export class TimedEventStore extends PostgresEventStore {
  feedMs = 0;
  feedReads = 0;

  override async readFeed(from: Position | null, inclusive: boolean, maxCount: number, options: { withMetadata?: boolean } = {}): Promise<RecordedEvent[]> {
    const started = performance.now();
    try {
      return await super.readFeed(from, inclusive, maxCount, options);
    } finally {
      this.feedMs += performance.now() - started;
      this.feedReads++;
    }
  }
}

export type RecordedCommit = { changes: BatchChanges; projections: readonly string[]; eventCount: number; options: CommitOptions };

export class TimedReadModels extends ReadModelStore {
  loadMs = 0;
  loads = 0;
  commitMs = 0;
  readonly commits: RecordedCommit[] = [];

  constructor(
    pool: Pool,
    private readonly record: boolean,
  ) {
    super(pool);
  }

  override async loadDocs(keys: ReadonlyMap<DocTable, readonly string[]>, client?: Pool | PoolClient): Promise<Map<string, Doc>> {
    const started = performance.now();
    try {
      return await super.loadDocs(keys, client);
    } finally {
      this.loadMs += performance.now() - started;
      this.loads++;
    }
  }

  override async commit(changes: BatchChanges, projections: readonly string[], eventCount: number, generation = 1, options: CommitOptions = {}): Promise<void> {
    const started = performance.now();
    try {
      await super.commit(changes, projections, eventCount, generation, options);
    } finally {
      this.commitMs += performance.now() - started;
    }
    // How the rows went (COPY or not), not the runner's wait for its hot write.
    if (this.record) this.commits.push({ changes, projections, eventCount, options: { historyByCopy: options.historyByCopy } });
  }
}

export class TimedHotState implements HotStateStore {
  putMs = 0;
  readonly puts: Doc[][] = [];

  constructor(
    private readonly inner: HotStateStore,
    private readonly record: boolean,
  ) {}

  get kind(): HotStateStore['kind'] {
    return this.inner.kind;
  }

  get(table: DocTable, worldId: string, id: string): Promise<HotDoc | null> {
    return this.inner.get(table, worldId, id);
  }

  async put(docs: readonly Doc[]): Promise<void> {
    const started = performance.now();
    try {
      await this.inner.put(docs);
    } finally {
      this.putMs += performance.now() - started;
    }
    if (this.record) this.puts.push([...docs]);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  onPossibleLoss(listener: () => void): void {
    this.inner.onPossibleLoss(listener);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
