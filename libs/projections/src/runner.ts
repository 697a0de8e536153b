import type { Pool } from 'pg';
import { parseStreamId } from '@lorestore/domain';
import { AdvisoryLease, Pauses, SerialGate, isUniqueViolation } from '@lorestore/infra';
import { START, comparePositions, type EventStore, type Position, type RecordedEvent } from '@lorestore/event-store';
import type { HotStateStore } from './hot-state/hot-state';
import type { ReadModelStore } from './postgres/read-model-store';
import { ALL_PROJECTIONS, docKey, docKeysOf, erasedPlayersOf, planBatch, type BatchChanges, type Doc, type DocProjection, type DocTable, type Projection } from './projections';

export type RunnerLogger = { info(msg: string): void; warn(msg: string): void; error(msg: string): void };

export type ProjectionRunnerOptions = {
  store: EventStore;
  /** For the leadership lock: one connection held while this runner leads. */
  pool: Pool;
  readModels: ReadModelStore;
  hot: HotStateStore;
  projections?: readonly Projection[];
  /** Events per feed read, and so at most per transaction, near the head. */
  batchSize: number;
  /**
   * Events per feed read and transaction while behind (a read came back
   * full): a projector catching up pays per-transaction costs (the
   * checkpoint, five statements, the hot-store call) per this many events.
   * Default: `batchSize`.
   */
  catchUpBatchSize?: number;
  /** Names the advisory lock that lets one runner per schema lead; the others wait. */
  lockName: string;
  /** player_history partition upkeep; null for a runner that must leave it alone (a rebuild). */
  partitions: { monthsBack: number; monthsAhead: number; retentionMonths: number | null } | null;
  /** The hot-state key generation of a projection with no checkpoint yet (a rebuild writes the next one). Default 1. */
  generation?: number;
  /** Documents kept in memory between batches, so a busy stream is not read back from PostgreSQL each time. */
  docCacheSize?: number;
  /** How long written documents are remembered, to be written again if the hot store may have lost them. */
  resyncWindowMs?: number;
  /**
   * Whether taking the lead clears an in-process hot store (it holds only what
   * this process's projector wrote). False for a rebuild running beside the
   * live projector in the same process. Default true.
   */
  clearsHotStateOnLead?: boolean;
  /**
   * The live projector only. After the hot store has refused writes for
   * `afterMs`, the read models are committed without it (readers answer from
   * PostgreSQL, told by a row in hot_state_bypass, then `settleMs` later the
   * first batch commits); every `probeMs` the hot store is tried again, and
   * once it answers, the documents of every stream with events since the
   * bypass opened are written to it again before it is used. Unset: wait for
   * the hot store however long it takes (a rebuild).
   */
  hotBypass?: { afterMs: number; settleMs: number; probeMs: number };
  /** Each failure of the loop (it retries with back-off); a rebuild gives up after a few in a row. */
  onError?: (error: unknown) => void;
  /**
   * The live projector: record each failure in projection_failures (what GET
   * /v1/admin/projections shows from any instance), cleared by the next
   * committed batch. Off for a rebuild, which reports through its job.
   */
  reportFailures?: boolean;
  onBatch?: (info: { events: number; docs: number; history: number; ms: number; position: Position }) => void;
  logger?: RunnerLogger;
};

const PARTITION_MAINTENANCE_MS = 6 * 60 * 60 * 1000;
const MAX_BACKOFF_MS = 5000;
/**
 * From this many history rows in a batch (a catch-up batch), they go by COPY:
 * at 2,000–2,500 rows a commit took about 30 % less time than with the
 * inserts; at 450 no difference was measurable (bench/RESULTS.md).
 */
const HISTORY_COPY_MIN_ROWS = 1000;

/** Asks for the next item as soon as one is handed out, so the feed read overlaps the batch's work. */
async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  try {
    let next = iterator.next();
    for (;;) {
      const item = await next;
      if (item.done) return;
      next = iterator.next();
      yield item.value;
    }
  } finally {
    await iterator.return?.();
  }
}

/**
 * How long a batch's transaction, its statements run, waits for the hot
 * store's write before it rolls back and the batch goes the slow way. A
 * healthy write of a 5,000-event batch's documents took 50–65 ms in the
 * projections bench, and has had the statements' time already.
 */
const HOT_WAIT_IN_TRANSACTION_MS = 100;

/** After a hot write that failed or was late beside the statements, how long the hot store is written before them. */
const HOT_BESIDE_PAUSE_MS = 10_000;

/** The hot store's write of a batch failed or was not done in time: the transaction rolls back. */
class HotWriteNotDone extends Error {}

/** Whether `settled` resolved true within `ms`. */
const settledWithin = async (settled: Promise<boolean>, ms: number): Promise<boolean> => {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([settled, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  } finally {
    clearTimeout(timer);
  }
};

const silent: RunnerLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Runs projections from the global feed: read a batch after the checkpoint,
 * fold it into documents and rows (`planBatch`, pure), write the hot store
 * beside the rows' statements, and commit the rows and the checkpoint in one
 * PostgreSQL transaction once the hot store has the batch. The hot store is
 * never behind a committed checkpoint; a crash between the two replays the
 * batch, which the revision guards turn into no-ops. One runner per schema
 * leads (advisory lock); any other waits and takes over if the leader's
 * connection goes.
 */
export class ProjectionRunner {
  private readonly projections: readonly Projection[];
  private readonly logger: RunnerLogger;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private readonly lease: AdvisoryLease;
  private readonly pauses = new Pauses();
  private subscription: { unsubscribe(): Promise<void> } | null = null;
  private readonly checkpoints = new Map<string, Position | null>();
  private readonly docCache = new Map<string, Doc>();
  private readonly recent = new Map<string, { doc: Doc; at: number }>();
  private readonly listeners: ((position: Position) => void)[] = [];
  private waiters = new Set<() => void>();
  private lastPosition: Position | null = null;
  private partitionsCheckedAt = 0;
  private resyncing: Promise<void> = Promise.resolve();
  private readonly generations = new Map<string, number>();
  /** Batches and exclusive sections (a rebuild's switch) run one at a time. */
  private readonly gate = new SerialGate();
  /** Open while the read models are committed without the hot store: from which checkpoint. */
  private bypass: { from: Position | null } | null = null;
  private bypassProbe: NodeJS.Timeout | null = null;
  private bypassProbedAt = 0;
  /** A failure may be on record (ours, or a previous leader's): the next committed batch clears it. */
  private failureOnRecord = false;
  /** Until then, the hot store is written before a batch's statements, not beside them (it was slow or failing). */
  private hotBesideFrom = 0;

  constructor(private readonly options: ProjectionRunnerOptions) {
    this.projections = options.projections ?? ALL_PROJECTIONS;
    this.logger = options.logger ?? silent;
    // Losing the lock (its connection broke or stopped answering) ends the subscription at once.
    this.lease = new AdvisoryLease(options.pool, options.lockName, () => void this.subscription?.unsubscribe());
    // Guarded writes cannot undo newer ones, so the resync may run beside the batches.
    options.hot.onPossibleLoss(() => {
      this.resyncing = this.resyncing.then(() => this.resync()).catch((error: unknown) => this.logger.error(`projector: resync failed: ${String(error)}`));
    });
  }

  get isLeader(): boolean {
    return this.lease.held;
  }

  /** The read models are being committed without the hot store (it refused writes): read PostgreSQL. */
  get hotBypassed(): boolean {
    return this.bypass !== null;
  }

  /** The position every projection of this runner has committed, as far as this process knows. */
  get position(): Position | null {
    return this.lastPosition;
  }

  get names(): string[] {
    return this.projections.map((p) => p.name);
  }

  /**
   * Runs `fn` between two batches: no batch of this runner is in flight while
   * it runs, and the next waits for it. `position` is where every projection
   * of this runner stands.
   */
  runExclusive<T>(fn: (position: Position | null) => Promise<T>): Promise<T> {
    return this.gate.run(() => fn(this.lastPosition));
  }

  /**
   * After a rebuild's switch (inside `runExclusive`): the projection's tables
   * were replaced, so forget its cached documents, and write its hot state
   * under the new generation from now on.
   */
  adopt(projection: string, generation: number): void {
    this.generations.set(projection, generation);
    for (const [key, doc] of [...this.docCache]) if (doc.table === projection) this.docCache.delete(key);
  }

  /** The hot-state key generation this runner writes a projection under. */
  generationOf(projection: string): number {
    return this.generations.get(projection) ?? 1;
  }

  /** Called after each committed batch with the new checkpoint. */
  onCommitted(listener: (position: Position) => void): void {
    this.listeners.push(listener);
  }

  /** Called once, after the next committed batch; the returned function cancels it. */
  onceCommitted(listener: () => void): () => void {
    this.waiters.add(listener);
    return () => this.waiters.delete(listener);
  }

  start(): void {
    if (this.loop) return;
    this.stopped = false;
    this.loop = this.run();
    const bypass = this.options.hotBypass;
    if (bypass) {
      // Also on a quiet feed: the bypass ends once the hot store answers, not at the next event.
      this.bypassProbe = setInterval(() => {
        if (this.bypass && this.lease.held && !this.stopped) void this.gate.run(() => this.tryEndBypass()).catch(() => undefined);
      }, bypass.probeMs);
      this.bypassProbe.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.bypassProbe) clearInterval(this.bypassProbe);
    this.bypassProbe = null;
    this.pauses.wakeAll();
    await this.subscription?.unsubscribe().catch(() => undefined);
    await this.loop;
    await this.resyncing;
    this.loop = null;
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      try {
        if (!(await this.lead())) {
          await this.sleep(1000);
          continue;
        }
        await this.maintainPartitions();
        await this.follow();
        backoff = 100;
      } catch (error) {
        if (this.stopped) break;
        this.options.onError?.(error);
        this.logger.warn(`projector: ${(error as Error).message}; retrying in ${backoff} ms`);
        await this.recordFailure(error);
        this.docCache.clear();
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      } finally {
        if (!this.lease.held || this.stopped) this.lease.release();
      }
    }
    this.lease.release();
  }

  /** Takes or keeps the advisory lock; false while another runner holds it. */
  private async lead(): Promise<boolean> {
    if (this.lease.held) return true;
    if (!(await this.lease.acquire())) return false;
    this.docCache.clear();
    this.failureOnRecord = this.options.reportFailures === true;
    // Another runner may have led meanwhile: an in-process hot store holds only what this one wrote.
    if (this.options.clearsHotStateOnLead !== false) this.options.hot.forget?.();
    this.logger.info(`projector: leading ${this.names.join(', ')}`);
    return true;
  }

  /**
   * Partitions ahead of time, and retention. A failure is logged and tried
   * again a minute later; it never holds up the projections (the default
   * partition takes every row meanwhile).
   */
  private async maintainPartitions(): Promise<void> {
    if (!this.options.partitions || !this.projections.some((p) => p.name === 'player_history')) return;
    if (Date.now() - this.partitionsCheckedAt < PARTITION_MAINTENANCE_MS) return;
    try {
      await this.partitionMaintenance();
    } catch (error) {
      this.logger.warn(`projector: player_history partition maintenance failed (${(error as Error).message}); trying again in a minute`);
      this.partitionsCheckedAt = Date.now() - PARTITION_MAINTENANCE_MS + 60_000;
    }
  }

  private async partitionMaintenance(): Promise<void> {
    if (!this.options.partitions) return;
    const { monthsBack, monthsAhead, retentionMonths } = this.options.partitions;
    const created = await this.options.readModels.ensurePartitions(monthsBack, monthsAhead);
    if (created > 0) this.logger.info(`projector: created ${created} player_history partition(s)`);
    if (retentionMonths !== null) {
      const dropped = await this.options.readModels.dropOldPartitions(retentionMonths);
      if (dropped.length > 0) this.logger.info(`projector: dropped player_history partitions ${dropped.join(', ')} (retention ${retentionMonths} months)`);
    }
    this.partitionsCheckedAt = Date.now();
  }

  private async follow(): Promise<void> {
    const checkpoints = await this.options.readModels.checkpoints();
    const stored = new Map(checkpoints.map((c) => [c.name, c.position]));
    const generations = new Map(checkpoints.map((c) => [c.name, c.generation]));
    for (const p of this.projections) {
      this.checkpoints.set(p.name, stored.get(p.name) ?? null);
      this.generations.set(p.name, generations.get(p.name) ?? this.options.generation ?? 1);
    }
    if (this.options.hotBypass) {
      // A bypass the previous leader opened stays open until this one has caught the hot store up.
      const open = await this.options.readModels.hotBypass();
      this.bypass = open ? { from: open.from } : null;
    }
    const positions = [...this.checkpoints.values()];
    const from = positions.some((p) => p === null) ? null : positions.reduce((a, b) => (comparePositions(a!, b!) <= 0 ? a : b));
    this.lastPosition = positions.every((p) => p !== null) && positions.length > 0 ? from : null;
    const subscription = this.options.store.subscribeToAll({
      fromPosition: from ?? START,
      batchSize: this.options.batchSize,
      catchUpBatchSize: this.options.catchUpBatchSize,
      // No projection reads an event's metadata.
      withMetadata: false,
    });
    this.subscription = subscription;
    // Closed before any exit from the loop: readAhead keeps a read pending, and leaving the loop
    // waits for it, which on a quiet feed would be until the next event.
    const leave = () => subscription.unsubscribe().catch(() => undefined);
    if (this.stopped || !this.lease.held) await leave();
    try {
      for await (const batch of readAhead(subscription.batches())) {
        if (this.stopped || !this.lease.held) {
          await leave();
          break;
        }
        try {
          await this.apply(batch);
          if (Date.now() - this.partitionsCheckedAt >= PARTITION_MAINTENANCE_MS) await this.maintainPartitions();
        } catch (error) {
          await leave();
          throw error;
        }
      }
    } finally {
      this.subscription = null;
      await subscription.unsubscribe();
    }
  }

  /**
   * One batch, start to end: load the documents it touches, plan, write the
   * hot store, commit rows and checkpoints. Public for tests that deliver
   * batches themselves (redelivery, reordering).
   */
  async apply(events: RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.gate.run(() => this.applyBatch(events));
  }

  private async applyBatch(events: RecordedEvent[]): Promise<void> {
    const started = performance.now();
    const keys = docKeysOf(this.projections, events);
    const current = new Map<string, Doc>();
    const missing = new Map<DocTable, string[]>();
    for (const [table, streamIds] of keys) {
      for (const streamId of streamIds) {
        const cached = this.docCache.get(docKey(table, streamId));
        if (cached) current.set(docKey(table, streamId), cached);
        else {
          if (!missing.has(table)) missing.set(table, []);
          missing.get(table)!.push(streamId);
        }
      }
    }
    if (missing.size > 0) for (const [key, doc] of await this.options.readModels.loadDocs(missing)) current.set(key, doc);
    // An erasure rewrites the player's documents in every world: all of them must be at hand.
    for (const [key, doc] of await this.options.readModels.loadPlayerDocs(erasedPlayersOf(this.projections, events))) {
      if (!current.has(key)) current.set(key, this.docCache.get(key) ?? doc);
    }

    const changes: BatchChanges = { docs: [], history: [], historyResets: [], checkpoint: null };
    for (const projection of this.projections) {
      const after = this.checkpoints.get(projection.name) ?? null;
      let mine = after === null ? events : events.filter((e) => comparePositions(e.position, after) > 0);
      if (mine.length === 0) continue;
      if (projection.kind === 'doc') mine = await this.withMissingRevisions(projection, current, mine);
      const planned = planBatch([projection], current, mine);
      const generation = this.generations.get(projection.name) ?? 1;
      if (generation !== 1) for (const doc of planned.docs) doc.generation = generation;
      changes.docs.push(...planned.docs);
      changes.history.push(...planned.history);
      changes.historyResets.push(...planned.historyResets);
      if (planned.erasures) (changes.erasures ??= []).push(...planned.erasures);
    }
    const last = events.at(-1)!;
    changes.checkpoint = { position: last.position, time: last.created };

    if (this.bypass) await this.tryEndBypass();
    if (this.bypass || changes.docs.length === 0) await this.commit(changes, events.length);
    else await this.writeHotAndCommit(changes, events.length);
    for (const doc of changes.docs) this.cache(doc);

    for (const name of this.names) this.checkpoints.set(name, last.position);
    this.lastPosition = last.position;
    if (this.failureOnRecord) await this.clearFailures();
    this.options.onBatch?.({ events: events.length, docs: changes.docs.length, history: changes.history.length, ms: performance.now() - started, position: last.position });
    for (const listener of this.listeners) listener(last.position);
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  /**
   * The hot store's write and the PostgreSQL statements side by side, the
   * COMMIT after the hot write: the hot store is never behind a committed
   * checkpoint. If the hot write fails, or is not done
   * HOT_WAIT_IN_TRANSACTION_MS after the statements, the transaction rolls
   * back and the batch goes the slow way: the hot write retried outside any
   * transaction (one held open while Redis retries, seconds in a failover,
   * would hold back the gap-safe feed of every reader of the database), or
   * the bypass opened, then the commit. After such a miss the hot store is
   * written before the statements for HOT_BESIDE_PAUSE_MS, so a slow Redis
   * does not have every batch's statements run twice.
   */
  private async writeHotAndCommit(changes: BatchChanges, eventCount: number): Promise<void> {
    const remember = () => {
      // As soon as the hot store has them, so a resync after a failover covers them too.
      for (const doc of changes.docs) this.rememberWritten(doc);
    };
    const started = Date.now();
    if (started >= this.hotBesideFrom) {
      let failure: unknown = null;
      // Settles true once written, false if the write failed (a synchronous throw included).
      const written = Promise.resolve()
        .then(() => this.options.hot.put(changes.docs))
        .then(
          () => (remember(), true),
          (error: unknown) => ((failure = error), false),
        );
      try {
        await this.commit(changes, eventCount, async () => {
          if (!(await settledWithin(written, HOT_WAIT_IN_TRANSACTION_MS))) throw new HotWriteNotDone();
        });
        return;
      } catch (error) {
        if (!(error instanceof HotWriteNotDone)) throw error;
      }
      const ok = await written;
      // The statements ran for nothing: write the hot store first for a while, rather than run them twice per batch.
      this.hotBesideFrom = Date.now() + HOT_BESIDE_PAUSE_MS;
      this.logger.warn(
        `projector: the hot store's write ${ok ? `took longer than the batch's statements + ${HOT_WAIT_IN_TRANSACTION_MS} ms` : `failed (${(failure as Error | null)?.message ?? String(failure)})`}; ` +
          `the batch's transaction rolled back, and for ${HOT_BESIDE_PAUSE_MS / 1000} s the hot store is written before the statements`,
      );
      if (ok) {
        await this.commit(changes, eventCount);
        return;
      }
    }
    const outcome = await this.putHot(changes.docs, started);
    if (outcome === 'written') remember();
    else await this.openBypass(outcome.reason);
    await this.commit(changes, eventCount);
  }

  /**
   * Rows and checkpoints in one transaction. A batch with many history rows
   * sends them by COPY (about half of PostgreSQL's work on them): each is
   * new, as the checkpoint commits with the rows and the events at or before
   * it were filtered out above. Should one be stored all the same (a leader
   * that lost its lease while committing, rows restored by hand), the COPY
   * fails the transaction and the batch is committed again with the inserts
   * that skip stored rows.
   */
  private async commit(changes: BatchChanges, eventCount: number, beforeCommit?: () => Promise<void>): Promise<void> {
    const generation = this.options.generation ?? 1;
    if (changes.history.length >= HISTORY_COPY_MIN_ROWS) {
      try {
        await this.options.readModels.commit(changes, this.names, eventCount, generation, { historyByCopy: true, beforeCommit });
        return;
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        this.logger.warn(`projector: a history row of this batch is stored already (${(error as Error).message}); committing it again without COPY`);
      }
    }
    await this.options.readModels.commit(changes, this.names, eventCount, generation, { beforeCommit });
  }

  /**
   * A document behind the feed by more than the batch explains (its rows were
   * lost: restored from an older backup, deleted by hand) is caught up from
   * its stream, which is the truth, instead of stopping the projector: the
   * missing revisions are read and put before the batch's own events.
   */
  private async withMissingRevisions(projection: DocProjection, current: ReadonlyMap<string, Doc>, events: RecordedEvent[]): Promise<RecordedEvent[]> {
    const table = projection.name;
    const firsts = new Map<string, RecordedEvent>();
    for (const event of events) {
      if (firsts.has(event.streamId) || parseStreamId(event.streamId)?.aggregate !== projection.aggregate) continue;
      firsts.set(event.streamId, event);
    }
    const repairs: RecordedEvent[] = [];
    for (const [streamId, first] of firsts) {
      const doc = current.get(docKey(table, streamId));
      const expected = (doc?.revision ?? -1n) + 1n;
      if (first.revision <= expected) continue;
      const missing = await this.options.store.readStream(streamId, { fromRevision: expected, maxCount: Number(first.revision - expected) });
      this.logger.warn(
        `projector: ${table} held ${streamId} at revision ${doc ? doc.revision : 'none'} but the feed is at ${first.revision}; caught up from the stream (${missing.length} events)`,
      );
      repairs.push(...missing);
    }
    return repairs.length > 0 ? [...repairs, ...events] : events;
  }

  /**
   * The hot store must hold a batch before its checkpoint commits: retry until
   * it does (or we stop), or, for the live projector, until `hotBypass.afterMs`
   * has passed: then the caller opens the bypass.
   */
  private async putHot(docs: Doc[], started = Date.now()): Promise<'written' | { reason: string }> {
    if (docs.length === 0) return 'written';
    let backoff = 100;
    for (;;) {
      try {
        await this.options.hot.put(docs);
        return 'written';
      } catch (error) {
        if (this.stopped || !this.lease.held) throw error;
        const bypass = this.options.hotBypass;
        if (bypass && Date.now() - started >= bypass.afterMs) return { reason: (error as Error).message };
        this.logger.warn(`projector: hot store write failed (${(error as Error).message}); retrying in ${backoff} ms`);
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /**
   * From now on the read models commit without the hot store. Readers are
   * told first (the row, and `hotBypassed` in this process); the pause lets
   * readers elsewhere, which look at most every 250 ms, see it before
   * PostgreSQL moves past what the hot store holds.
   */
  private async openBypass(reason: string): Promise<void> {
    const from = this.lastPosition;
    await this.options.readModels.openHotBypass(from, reason);
    this.bypass = { from };
    this.logger.warn(`projector: the hot store has refused writes for ${this.options.hotBypass!.afterMs} ms (${reason}); committing the read models without it, readers use PostgreSQL until it is back`);
    await this.sleep(this.options.hotBypass!.settleMs);
  }

  /**
   * If the hot store answers again: write it the current document of every
   * stream with events since the bypass opened (revision-guarded, so never
   * backwards), then close the bypass. Runs between batches (inside the gate).
   */
  private async tryEndBypass(): Promise<void> {
    const bypass = this.bypass;
    if (!bypass || !this.lease.held) return;
    // At most once per probeMs, and briefly: this runs where batches wait.
    if (Date.now() - this.bypassProbedAt < this.options.hotBypass!.probeMs) return;
    this.bypassProbedAt = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.options.hot.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer')), 500);
        }),
      ]);
    } catch {
      return;
    } finally {
      clearTimeout(timer);
    }
    const upTo = this.lastPosition;
    let from: Position | typeof START = bypass.from ?? START;
    let rewritten = 0;
    try {
      while (upTo) {
        const page = await this.options.store.readAll({ fromPosition: from, maxCount: this.options.batchSize });
        const after = from === START ? page : page.filter((e) => comparePositions(e.position, from as Position) > 0);
        const covered = after.filter((e) => comparePositions(e.position, upTo) <= 0);
        if (covered.length > 0) {
          const docs = [...(await this.options.readModels.loadDocs(docKeysOf(this.projections, covered))).values()];
          // An erasure since the bypass rewrote the player's documents in every world: those too.
          docs.push(...(await this.options.readModels.loadPlayerDocs(erasedPlayersOf(this.projections, covered))).values());
          for (const doc of docs) {
            const generation = this.generations.get(doc.table) ?? 1;
            if (generation !== 1) doc.generation = generation;
          }
          if (docs.length > 0) await this.options.hot.put(docs);
          rewritten += docs.length;
        }
        if (after.length === 0 || covered.length < after.length) break;
        from = after.at(-1)!.position;
      }
      await this.options.readModels.closeHotBypass();
    } catch (error) {
      this.logger.warn(`projector: the hot store answers but catching it up failed (${(error as Error).message}); staying on PostgreSQL`);
      return;
    }
    this.bypass = null;
    this.logger.info(`projector: the hot store is back; wrote ${rewritten} documents changed meanwhile, reading from it again`);
  }

  /** The live projector's failure, where every API instance can see it (best effort: the database may be what failed). */
  private async recordFailure(error: unknown): Promise<void> {
    if (!this.options.reportFailures || !this.lease.held) return;
    // Set first: the row may be written even if its answer is lost.
    this.failureOnRecord = true;
    try {
      await this.options.readModels.recordFailure(this.names, error, this.lastPosition);
    } catch (recordError) {
      this.logger.warn(`projector: could not record the failure (${(recordError as Error).message})`);
    }
  }

  private async clearFailures(): Promise<void> {
    try {
      await this.options.readModels.clearFailures(this.names);
      this.failureOnRecord = false;
    } catch (error) {
      // The batch is committed; the record goes with a later one.
      this.logger.warn(`projector: could not clear the recorded failure (${(error as Error).message})`);
    }
  }

  /** Committed documents, so the next batch on a busy stream needs no read. */
  private cache(doc: Doc): void {
    const key = docKey(doc.table, doc.streamId);
    this.docCache.delete(key);
    this.docCache.set(key, doc);
    if (this.docCache.size > (this.options.docCacheSize ?? 100_000)) this.docCache.delete(this.docCache.keys().next().value as string);
  }

  /** Documents written to the hot store lately: what a resync writes again. */
  private rememberWritten(doc: Doc): void {
    const key = docKey(doc.table, doc.streamId);
    const limit = this.options.docCacheSize ?? 100_000;
    const now = Date.now();
    this.recent.delete(key);
    this.recent.set(key, { doc, at: now });
    const window = this.options.resyncWindowMs ?? 60_000;
    for (const [k, entry] of this.recent) {
      if (now - entry.at <= window && this.recent.size <= limit) break;
      this.recent.delete(k);
    }
  }

  /** Writes the recently written documents again (guarded: only where the hot store lost them). */
  private async resync(): Promise<void> {
    const docs = [...this.recent.values()].map((e) => e.doc);
    if (docs.length === 0 || this.bypass) return;
    this.logger.warn(`projector: the hot store may have lost writes (topology change); writing ${docs.length} recent documents again`);
    for (let i = 0; i < docs.length; i += 1000) await this.putHot(docs.slice(i, i + 1000));
  }

  /** A pause that stop() cuts short (the main loop and a resync may both be waiting). */
  private sleep(ms: number): Promise<void> {
    return this.pauses.sleep(ms);
  }
}
