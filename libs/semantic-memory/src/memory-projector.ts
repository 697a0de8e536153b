import type { Pool } from 'pg';
import { LeaderLoop, SerialGate, withTransaction } from '@lorestore/infra';
import { START, comparePositions, type EventStore, type Position, type RecordedEvent } from '@lorestore/event-store';
import { planMemoryOps } from './memory-plan';
import type { MemoryStore, PendingSync } from './memory-store';
import { isExternal, type ExternalVectorIndex, type VectorIndex } from './vector-index';
import { bytesToVector } from './vectors';

export type MemoryLogger = { info(msg: string): void; warn(msg: string): void; error(msg: string): void };

export type MemoryProjectorOptions = {
  store: EventStore;
  pool: Pool;
  memories: MemoryStore;
  /** The index searched; an external one (Pinecone) is sent the changes after each commit. Null for a rebuild's copy. */
  index: VectorIndex | null;
  /** The checkpoint's name: the table's (`npc_memories`, or its copy's). */
  checkpointName: string;
  batchSize: number;
  lockName: string;
  /** Rows sent to the external index per round. */
  syncBatch?: number;
  /** The deployment's VECTOR_DIMENSION: a row of another length (or all zeros) is never sent to an external index. */
  dimension?: number;
  logger?: MemoryLogger;
  onBatch?: (info: { events: number; memories: number; ms: number; position: Position }) => void;
  onError?: (error: unknown) => void;
};

const silent: MemoryLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const MAX_BACKOFF_MS = 5000;

/**
 * The vector-index projection: follows the global feed from its checkpoint
 * and turns the memory events of NPC streams (recorded, forgotten, rolled
 * back, restored) into memory rows, committed with the checkpoint in one
 * transaction, so a crash neither loses nor doubles one. With an external
 * index the rows are its outbox: after each commit the rows it does not yet
 * reflect are sent (upserts, deletes) and marked, retried until it takes them.
 * One projector per database leads (advisory lock); others wait.
 */
export class MemoryProjector {
  private readonly logger: MemoryLogger;
  private readonly leader: LeaderLoop;
  private syncLoop: Promise<void> | null = null;
  private subscription: { unsubscribe(): Promise<void> } | null = null;
  private checkpoint: Position | null = null;
  private readonly gate = new SerialGate();
  private syncKick: (() => void) | null = null;
  private waiters = new Set<() => void>();

  constructor(private readonly options: MemoryProjectorOptions) {
    this.logger = options.logger ?? silent;
    this.leader = new LeaderLoop({
      pool: options.pool,
      lockName: options.lockName,
      name: 'memory projector',
      work: () => this.follow(),
      onLeaseLost: () => void this.subscription?.unsubscribe(),
      onError: options.onError,
      logger: this.logger,
    });
  }

  get isLeader(): boolean {
    return this.leader.isLeader;
  }

  /** The position of the last event committed, as this process knows it. */
  get position(): Position | null {
    return this.checkpoint;
  }

  get name(): string {
    return this.options.checkpointName;
  }

  start(): void {
    if (!this.leader.isStopped) return;
    this.leader.start();
    const index = this.options.index;
    if (index && isExternal(index)) this.syncLoop = this.syncForever(index);
  }

  async stop(): Promise<void> {
    const stopping = this.leader.stop(async () => {
      this.syncKick?.();
      await this.subscription?.unsubscribe();
    });
    await stopping;
    await this.syncLoop;
    this.syncLoop = null;
  }

  /** Runs `fn` between two batches (a rebuild's switch). */
  runExclusive<T>(fn: (position: Position | null) => Promise<T>): Promise<T> {
    return this.gate.run(() => fn(this.checkpoint));
  }

  /** Resolves on the next commit, or after `ms`. */
  nextCommit(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private async follow(): Promise<void> {
    this.checkpoint = await this.storedCheckpoint();
    const subscription = this.options.store.subscribeToAll({ fromPosition: this.checkpoint ?? START, batchSize: this.options.batchSize });
    this.subscription = subscription;
    try {
      for await (const batch of subscription.batches()) {
        if (this.leader.isStopped || !this.leader.isLeader) break;
        await this.apply(batch);
      }
    } finally {
      this.subscription = null;
      await subscription.unsubscribe();
    }
  }

  private async storedCheckpoint(): Promise<Position | null> {
    const { rows } = await this.options.pool.query<{ commit: string; position: string }>(
      'SELECT commit::text, position FROM projection_checkpoints WHERE name = $1',
      [this.options.checkpointName],
    );
    return rows[0] ? { commit: BigInt(rows[0].commit), prepare: BigInt(rows[0].position) } : null;
  }

  /** One batch of the feed: rows and checkpoint in one transaction. Public for tests that deliver batches themselves. */
  async apply(events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.gate.run(async () => {
      const started = performance.now();
      const last = events.at(-1)!;
      const ops = await withTransaction(this.options.pool, async (client) => {
        // One batch of this projection at a time, whoever runs it (a leader handing over may still be
        // finishing one), and only what the committed checkpoint does not cover yet.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`lorestore.memory-apply.${this.options.checkpointName}`]);
        const { rows } = await client.query<{ commit: string; position: string }>('SELECT commit::text, position FROM projection_checkpoints WHERE name = $1', [
          this.options.checkpointName,
        ]);
        const stored = rows[0] ? { commit: BigInt(rows[0].commit), prepare: BigInt(rows[0].position) } : null;
        const fresh = stored ? events.filter((e) => comparePositions(e.position, stored) > 0) : events;
        if (fresh.length === 0) return [];
        const planned = planMemoryOps(fresh);
        await this.options.memories.apply(client, planned, { name: this.options.checkpointName, position: last.position, time: last.created, events: fresh.length });
        return planned;
      });
      this.checkpoint = last.position;
      this.options.onBatch?.({ events: events.length, memories: ops.length, ms: performance.now() - started, position: last.position });
      if (ops.length > 0) this.syncKick?.();
      const waiters = this.waiters;
      this.waiters = new Set();
      for (const wake of waiters) wake();
    });
  }

  /** Sends the external index what it does not yet reflect, until nothing is left; true if it sent anything. */
  async syncOnce(index: ExternalVectorIndex): Promise<number> {
    let sent = 0;
    for (;;) {
      const round = await this.syncRound(index);
      if (round === 0) return sent;
      sent += round;
    }
  }

  /**
   * One round of the outbox: read, send, mark. Rounds of every process go
   * one at a time (a session lock on one connection), so a leader handing
   * over cannot send a memory's older state after its successor sent the
   * newer one and marked it.
   */
  private async syncRound(index: ExternalVectorIndex): Promise<number> {
    const client = await this.options.pool.connect();
    const lock = `lorestore.memory-sync.${this.options.checkpointName}`;
    let locked = false;
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [lock]);
      locked = true;
      return await this.sendPending(index);
    } finally {
      const unlocked = locked && (await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lock]).then(() => true, () => false));
      // A connection that failed, or may still hold the lock, is destroyed: that releases the lock too.
      client.release(!unlocked);
    }
  }

  private async sendPending(index: ExternalVectorIndex): Promise<number> {
    const pending = await this.options.memories.pendingSync(this.options.syncBatch ?? 500);
    if (pending.length === 0) return 0;
    // A vector the index would refuse (another dimension, all zeros: events written before the API
    // checked them) must not hold up every later change: it is left out of the index, with a warning.
    const indexable = (p: PendingSync) => {
      if (this.options.dimension !== undefined && p.embedding.length !== this.options.dimension * 4) return false;
      return bytesToVector(p.embedding).some((x) => x !== 0);
    };
    const upserts = pending.filter((p) => p.visible && indexable(p));
    for (const p of pending) if (p.visible && !indexable(p)) this.logger.warn(`memory ${p.memoryId}: its embedding cannot be indexed (wrong length or all zeros); left out of the ${index.kind} index`);
    const deletes = new Map<string, PendingSync[]>();
    for (const p of pending) {
      if (p.visible) continue;
      if (!deletes.has(p.worldId)) deletes.set(p.worldId, []);
      deletes.get(p.worldId)!.push(p);
    }
    if (upserts.length > 0) {
      await index.upsert(
        upserts.map((p) => ({
          memoryId: p.memoryId,
          worldId: p.worldId,
          npcId: p.npcId,
          vector: bytesToVector(p.embedding),
          text: p.text,
          importance: p.importance,
          createdAt: p.createdAt,
          position: p.position,
        })),
      );
    }
    for (const [worldId, rows] of deletes) await index.remove(worldId, rows.map((r) => r.memoryId));
    await this.options.memories.markSynced(pending);
    return pending.length;
  }

  private async syncForever(index: ExternalVectorIndex): Promise<void> {
    let backoff = 200;
    while (!this.leader.isStopped) {
      const kicked = new Promise<void>((resolve) => (this.syncKick = resolve));
      try {
        if (this.leader.isLeader) await this.syncOnce(index);
        backoff = 200;
        await Promise.race([kicked, this.leader.sleep(1000)]);
      } catch (error) {
        if (this.leader.isStopped) break;
        this.logger.warn(`memory projector: the ${index.kind} index did not take the changes (${(error as Error).message}); retrying in ${backoff} ms`);
        await this.leader.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }
}
