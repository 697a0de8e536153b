import type { Pool, PoolClient } from 'pg';
import type { PostgresEventStore } from '@lorestore/event-store';
import { ProjectionRunner, ReadModelStore, type BatchChanges, type Doc, type DocTable } from '@lorestore/projections';
import { TimedEventStore } from '../projections/instrumented';
import { LatencyRecorder } from '../support/latency';

/** What the stopwatches add up across every runner and read-model store of the process. */
export type Counters = {
  applyMs: number;
  batches: number;
  events: number;
  loadDocsMs: number;
  loads: number;
  pgCommitMs: number;
  commits: number;
  /** Documents and history rows handed to commit (documents before the store keeps the newest per stream). */
  docs: number;
  historyRows: number;
};

export type Instrumentation = {
  counters: Counters;
  /** Per batch (ProjectionRunner.apply), from now until the next `resetBatches`. */
  batchMs: LatencyRecorder;
  resetBatches: () => void;
  restore: () => void;
};

/**
 * Stopwatches on ProjectionRunner.apply (one batch: load, plan, hot put,
 * commit), ReadModelStore.loadDocs and ReadModelStore.commit, put on their
 * prototypes for the duration of the rebuild measurements: the RebuildWorker
 * builds its shadow runner and shadow store itself, so there is nothing to
 * hand it instead. Each wrapper adds a performance.now() pair per call.
 * `restore` puts the original methods back.
 */
export const instrumentProjections = (): Instrumentation => {
  const counters: Counters = { applyMs: 0, batches: 0, events: 0, loadDocsMs: 0, loads: 0, pgCommitMs: 0, commits: 0, docs: 0, historyRows: 0 };
  const state = { batchMs: new LatencyRecorder() };
  const store = ReadModelStore.prototype;
  const runner = ProjectionRunner.prototype;
  const { loadDocs, commit } = store;
  const { apply } = runner;

  store.loadDocs = async function (this: ReadModelStore, keys: ReadonlyMap<DocTable, readonly string[]>, client?: Pool | PoolClient): Promise<Map<string, Doc>> {
    const started = performance.now();
    try {
      return await loadDocs.call(this, keys, client);
    } finally {
      counters.loadDocsMs += performance.now() - started;
      counters.loads++;
    }
  };
  store.commit = async function (this: ReadModelStore, changes: BatchChanges, projections: readonly string[], eventCount: number, generation?: number): Promise<void> {
    const started = performance.now();
    try {
      return await commit.call(this, changes, projections, eventCount, generation);
    } finally {
      counters.pgCommitMs += performance.now() - started;
      counters.commits++;
      counters.docs += changes.docs.length;
      counters.historyRows += changes.history.length;
    }
  };
  runner.apply = async function (this: ProjectionRunner, events) {
    const started = performance.now();
    try {
      return await apply.call(this, events);
    } finally {
      const ms = performance.now() - started;
      counters.applyMs += ms;
      counters.batches++;
      counters.events += events.length;
      state.batchMs.record(ms);
    }
  };
  return {
    counters,
    get batchMs() {
      return state.batchMs;
    },
    resetBatches: () => {
      state.batchMs = new LatencyRecorder();
    },
    restore: () => {
      store.loadDocs = loadDocs;
      store.commit = commit;
      runner.apply = apply;
    },
  };
};

/**
 * The projections bench's TimedEventStore (readFeed: the runners' feed) plus
 * a stopwatch on readFeedRange (the RebuildWorker's bulk phase), whatever
 * its signature.
 */
export class TimedFeedStore extends TimedEventStore {
  rangeMs = 0;
  rangeReads = 0;

  override async readFeedRange(...args: Parameters<PostgresEventStore['readFeedRange']>): ReturnType<PostgresEventStore['readFeedRange']> {
    const started = performance.now();
    try {
      return await super.readFeedRange(...args);
    } finally {
      this.rangeMs += performance.now() - started;
      this.rangeReads++;
    }
  }
}
