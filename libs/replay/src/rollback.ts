import { createHash, randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { EVENT_SCHEMA_VERSIONS, inRanges, parseStreamId, type RevisionRanges, type StreamRolledBack } from '@lorestore/domain';
import { deriveEventId, PartialAppendError, WrongExpectedVersionError, type PostgresEventStore, type StreamAppend } from '@lorestore/event-store';
import { isUniqueViolation } from '@lorestore/infra';
import type { StateAt } from './state-at';

/** What an admin asks to undo. */
export type RollbackScope =
  | { type: 'stream'; streamId: string; toRevision: number; expectedRevision?: number }
  | { type: 'world'; toPosition: number }
  | { type: 'world'; toTime: string }
  | { type: 'actor'; actorId: string; since: string };

export type RollbackRequest = {
  worldId: string;
  scope: RollbackScope;
  reason: string;
  /** The admin's key (`admin:<keyId>`), recorded on every event and in the audit trail. */
  actor: string;
  /** The client's idempotency key; a new one when absent. */
  operationId?: string;
  correlationId?: string;
};

/** Another actor's events that an actor rollback undoes too, per stream and actor. */
export type Collateral = { streamId: string; actor: string; events: number; firstRevision: number; lastRevision: number };

export type PlannedStream = {
  streamId: string;
  /** The stream's head when planned. */
  fromRevision: number;
  /** The revision whose state comes back; −1 is the state before the stream's first event. */
  toRevision: number;
  /** Events undone: fromRevision − toRevision. */
  events: number;
};

export type RollbackPlan = { streams: PlannedStream[]; collateral?: Collateral[] };

export type AppliedStream = { streamId: string; fromRevision: number; toRevision: number; events: number; revision: number };

export type OperationRecord = {
  operationId: string;
  worldId: string;
  kind: 'rollback' | 'restore';
  scope: RollbackScope | { type: 'restore'; operationId: string; force: boolean };
  reason: string;
  actor: string;
  streams: AppliedStream[];
  position: number;
  restores: string | null;
  restoredBy: string | null;
  createdAt: string;
};

export type OperationOutcome = { operation: OperationRecord; duplicate: boolean };

/** A client's mistake about the target: mapped to 4xx by the API. */
export class RollbackTargetError extends Error {
  override readonly name = 'RollbackTargetError';
  constructor(
    readonly code: 'unknown-stream' | 'target-beyond-head' | 'nothing-to-roll-back' | 'stream-not-in-world',
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class OperationNotFoundError extends Error {
  override readonly name = 'OperationNotFoundError';
}

/** The same operation id sent with another request. */
export class OperationIdReusedError extends Error {
  override readonly name = 'OperationIdReusedError';
}

/** A restore whose streams changed after the rollback: restoring would undo those changes too. */
export class RestoreConflictError extends Error {
  override readonly name = 'RestoreConflictError';
  constructor(
    message: string,
    readonly streams: { streamId: string; rollbackRevision: number; currentRevision: number }[],
  ) {
    super(message);
  }
}

export class NotRestorableError extends Error {
  override readonly name = 'NotRestorableError';
}

type OperationRow = {
  operation_id: string;
  world_id: string;
  kind: 'rollback' | 'restore';
  scope: OperationRecord['scope'];
  reason: string;
  actor: string;
  request_hash: string;
  streams: AppliedStream[];
  position: string;
  restores: string | null;
  restored_by: string | null;
  created_at: Date;
};

const toRecord = (row: OperationRow): OperationRecord => ({
  operationId: row.operation_id,
  worldId: row.world_id,
  kind: row.kind,
  scope: row.scope,
  reason: row.reason,
  actor: row.actor,
  streams: row.streams,
  position: Number(row.position),
  restores: row.restores,
  restoredBy: row.restored_by,
  createdAt: row.created_at.toISOString(),
});

const OPERATION_COLUMNS = 'operation_id, world_id, kind, scope, reason, actor, request_hash, streams, position, restores, restored_by, created_at';

/** Streams folded at once while planning a large rollback. */
const PARALLEL_FOLDS = 16;
/** Times a world or actor rollback plans again when a write lands on one of its streams meanwhile. */
const REPLANS = 5;

const hashOf = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('base64url');

const mapLimit = async <T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> => {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
};

/**
 * Rollback and restore: plans (which streams, back to which revision) and
 * carries them out by appending one `StreamRolledBack` per stream, all in one
 * PostgreSQL transaction with the audit record. Nothing is deleted; the
 * projections bring every read model to the restored state.
 */
export class Rollbacks {
  constructor(
    private readonly options: { store: PostgresEventStore; pool: Pool; stateAt: StateAt },
  ) {}

  private get pool(): Pool {
    return this.options.pool;
  }

  /** Which streams a scope touches, and what undoing it means for each; writes nothing. */
  async plan(worldId: string, scope: RollbackScope): Promise<RollbackPlan> {
    switch (scope.type) {
      case 'stream':
        return this.planStream(worldId, scope);
      case 'world':
        return this.planWorld(worldId, scope);
      case 'actor':
        return this.planActor(worldId, scope);
    }
  }

  private async planStream(worldId: string, scope: Extract<RollbackScope, { type: 'stream' }>): Promise<RollbackPlan> {
    const parsed = parseStreamId(scope.streamId);
    if (!parsed) throw new RollbackTargetError('unknown-stream', `"${scope.streamId}" is not a stream this service writes`);
    if (parsed.worldId !== worldId) throw new RollbackTargetError('stream-not-in-world', `stream ${scope.streamId} is not in world ${worldId}`);
    const head = await this.options.store.streamRevision(scope.streamId);
    if (head === null) throw new RollbackTargetError('unknown-stream', `stream ${scope.streamId} has no events`);
    if (scope.expectedRevision !== undefined && BigInt(scope.expectedRevision) !== head) {
      throw new WrongExpectedVersionError(scope.streamId, BigInt(scope.expectedRevision), head);
    }
    if (BigInt(scope.toRevision) > head) {
      throw new RollbackTargetError('target-beyond-head', `stream ${scope.streamId} is at revision ${head}; it has no revision ${scope.toRevision}`, {
        currentRevision: Number(head),
      });
    }
    if (BigInt(scope.toRevision) === head) {
      throw new RollbackTargetError('nothing-to-roll-back', `stream ${scope.streamId} is at revision ${head} already`, { currentRevision: Number(head) });
    }
    return { streams: [{ streamId: scope.streamId, fromRevision: Number(head), toRevision: scope.toRevision, events: Number(head) - scope.toRevision }] };
  }

  private async planWorld(worldId: string, scope: Extract<RollbackScope, { type: 'world' }>): Promise<RollbackPlan> {
    if ('toPosition' in scope) {
      const { rows } = await this.pool.query<{ head: string | null }>('SELECT max(position) AS head FROM events');
      const head = rows[0]?.head === null || rows[0]?.head === undefined ? 0 : Number(rows[0].head);
      if (scope.toPosition > head) {
        throw new RollbackTargetError('target-beyond-head', `position ${scope.toPosition} is beyond the head of the log (${head})`, { headPosition: head });
      }
    }
    // Per stream: the first event after the point, and the head. Everything from that event on is undone.
    const after = 'toPosition' in scope ? 'e.position > $2::bigint' : 'e.created_at > $2::timestamptz';
    const { rows } = await this.pool.query<{ stream_id: string; first_after: string; head: string }>(
      `SELECT e.stream_id, min(e.revision) AS first_after, s.revision AS head
         FROM events e JOIN streams s ON s.stream_id = e.stream_id
        WHERE s.world_id = $1 AND ${after}
        GROUP BY e.stream_id, s.revision
        ORDER BY e.stream_id`,
      [worldId, 'toPosition' in scope ? String(scope.toPosition) : scope.toTime],
    );
    return { streams: rows.map((r) => this.planned(r.stream_id, Number(r.head), Number(r.first_after) - 1)) };
  }

  private async planActor(worldId: string, scope: Extract<RollbackScope, { type: 'actor' }>): Promise<RollbackPlan> {
    // The actor is the key that sent the command or the player/service it named (metadata.actorId).
    const { rows } = await this.pool.query<{ stream_id: string; revisions: string[]; head: string }>(
      `SELECT e.stream_id, array_agg(e.revision ORDER BY e.revision) AS revisions, s.revision AS head
         FROM events e JOIN streams s ON s.stream_id = e.stream_id
        WHERE s.world_id = $1 AND e.created_at >= $2::timestamptz
          AND (e.metadata->>'actorId' = $3 OR e.metadata->>'actor' = $3) AND e.type <> 'StreamRolledBack'
        GROUP BY e.stream_id, s.revision
        ORDER BY e.stream_id`,
      [worldId, scope.since, scope.actorId],
    );
    // Only the actor's events still in effect: one an earlier rollback already undid is not undone
    // again (a second actor rollback would otherwise reach back past it, over other actors' writes).
    const found = await mapLimit(rows, PARALLEL_FOLDS, async (r) => {
      const head = Number(r.head);
      const reset = await this.options.stateAt.lastReset(r.stream_id, BigInt(head));
      const inEffect = r.revisions.map(Number).filter((rev) => !reset || rev > reset.revision || inRanges(rev, reset.kept));
      return inEffect.length > 0 ? this.planned(r.stream_id, head, inEffect[0]! - 1) : null;
    });
    const streams = found.filter((s): s is PlannedStream => s !== null);
    if (streams.length === 0) return { streams, collateral: [] };
    const { rows: others } = await this.pool.query<{ stream_id: string; actor: string; events: string; first: string; last: string }>(
      `SELECT e.stream_id, coalesce(e.metadata->>'actorId', e.metadata->>'actor', 'unknown') AS actor,
              count(*) AS events, min(e.revision) AS first, max(e.revision) AS last
         FROM events e JOIN unnest($1::text[], $2::bigint[]) AS p(stream_id, from_revision)
           ON e.stream_id = p.stream_id AND e.revision > p.from_revision
        WHERE coalesce(e.metadata->>'actorId', '') <> $3 AND coalesce(e.metadata->>'actor', '') <> $3
        GROUP BY 1, 2 ORDER BY 1, 2`,
      [streams.map((s) => s.streamId), streams.map((s) => String(s.toRevision)), scope.actorId],
    );
    return {
      streams,
      collateral: others.map((o) => ({ streamId: o.stream_id, actor: o.actor, events: Number(o.events), firstRevision: Number(o.first), lastRevision: Number(o.last) })),
    };
  }

  private planned(streamId: string, head: number, toRevision: number): PlannedStream {
    return { streamId, fromRevision: head, toRevision, events: head - toRevision };
  }

  /**
   * Plans and appends, all-or-nothing. The same `operationId` again returns
   * the first outcome (`duplicate: true`) and appends nothing. A write that
   * lands on a planned stream meanwhile makes the append fail its expected
   * revision: a stream rollback then answers 409 (the admin looks again), a
   * world or actor rollback plans again, up to a few times.
   */
  async rollback(request: RollbackRequest): Promise<OperationOutcome & { plan: RollbackPlan }> {
    const operationId = request.operationId ?? randomUUID();
    const requestHash = hashOf({ worldId: request.worldId, scope: request.scope, reason: request.reason });
    const prior = await this.existing(operationId, requestHash);
    if (prior) return { ...prior, plan: { streams: prior.operation.streams } };
    for (let attempt = 1; ; attempt++) {
      const plan = await this.plan(request.worldId, request.scope);
      if (plan.streams.length === 0) {
        throw new RollbackTargetError('nothing-to-roll-back', 'no stream of this world changed after that point');
      }
      try {
        const operation = await this.apply({
          operationId,
          worldId: request.worldId,
          kind: 'rollback',
          scope: request.scope,
          reason: request.reason,
          actor: request.actor,
          requestHash,
          correlationId: request.correlationId ?? operationId,
          streams: plan.streams,
          restores: null,
        });
        return { operation, duplicate: false, plan };
      } catch (error) {
        if (error instanceof PartialAppendError) {
          error.operationId = operationId;
          throw error;
        }
        const raced = await this.raced(error, operationId, requestHash);
        if (raced) return { ...raced, plan: { streams: raced.operation.streams } };
        if (!(error instanceof WrongExpectedVersionError) || request.scope.type === 'stream' || attempt >= REPLANS) throw error;
      }
    }
  }

  /**
   * Undoes a rollback: each of its streams gets back the state it had just
   * before the rollback. A stream written since the rollback would lose those
   * writes too, so that is refused unless `force`. Restoring twice answers the
   * first restore.
   */
  async restore(request: { operationId: string; actor: string; reason?: string; force?: boolean; correlationId?: string }): Promise<OperationOutcome> {
    const { rows } = await this.pool.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM rollback_operations WHERE operation_id = $1`, [request.operationId]);
    const original = rows[0];
    if (!original) throw new OperationNotFoundError(`no rollback with operation id ${request.operationId}`);
    if (original.kind !== 'rollback') throw new NotRestorableError(`operation ${request.operationId} is a restore; roll back again instead`);
    if (original.restored_by) {
      const again = await this.load(original.restored_by);
      if (again) return { operation: again, duplicate: true };
    }
    const heads = await Promise.all(original.streams.map(async (s) => ({ s, head: await this.options.store.streamRevision(s.streamId) })));
    const changed = heads.filter(({ s, head }) => head !== BigInt(s.revision));
    if (changed.length > 0 && !request.force) {
      throw new RestoreConflictError(
        `${changed.length} stream(s) changed after the rollback; restoring would undo those changes too (send force: true to restore anyway)`,
        changed.map(({ s, head }) => ({ streamId: s.streamId, rollbackRevision: s.revision, currentRevision: head === null ? -1 : Number(head) })),
      );
    }
    const operationId = randomUUID();
    try {
      const operation = await this.apply({
        operationId,
        worldId: original.world_id,
        kind: 'restore',
        scope: { type: 'restore', operationId: request.operationId, force: request.force ?? false },
        reason: request.reason ?? `restore of ${request.operationId}`,
        actor: request.actor,
        requestHash: hashOf({ restore: request.operationId }),
        correlationId: request.correlationId ?? operationId,
        streams: heads.map(({ s, head }) => ({ streamId: s.streamId, fromRevision: Number(head), toRevision: s.revision - 1, events: Number(head) - (s.revision - 1) })),
        restores: request.operationId,
      });
      return { operation, duplicate: false };
    } catch (error) {
      if (error instanceof PartialAppendError) {
        error.operationId = operationId;
        throw error;
      }
      // Two restores of one rollback raced: the unique index (or the streams' revisions) let one through.
      if ((error as { code?: string; constraint?: string }).constraint === 'rollback_operations_one_restore' || error instanceof WrongExpectedVersionError) {
        const winner = await this.pool.query<{ operation_id: string }>('SELECT operation_id FROM rollback_operations WHERE restores = $1', [request.operationId]);
        const operation = winner.rows[0] && (await this.load(winner.rows[0].operation_id));
        if (operation) return { operation, duplicate: true };
      }
      throw error;
    }
  }

  /** The audit trail of a world, newest first; `before` is the previous page's cursor. */
  async list(worldId: string, limit: number, before?: { createdAt: string; operationId: string }): Promise<{ items: OperationRecord[]; nextCursor: string | null }> {
    const { rows } = await this.pool.query<OperationRow>(
      `SELECT ${OPERATION_COLUMNS} FROM rollback_operations
        WHERE world_id = $1 AND ($2::timestamptz IS NULL OR (created_at, operation_id) < ($2::timestamptz, $3::uuid))
        ORDER BY created_at DESC, operation_id DESC LIMIT $4`,
      [worldId, before?.createdAt ?? null, before?.operationId ?? null, limit + 1],
    );
    const items = rows.slice(0, limit).map(toRecord);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > limit && last ? `${last.createdAt}_${last.operationId}` : null };
  }

  async load(operationId: string): Promise<OperationRecord | null> {
    const { rows } = await this.pool.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM rollback_operations WHERE operation_id = $1`, [operationId]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  private async existing(operationId: string, requestHash: string): Promise<OperationOutcome | null> {
    const { rows } = await this.pool.query<OperationRow>(`SELECT ${OPERATION_COLUMNS} FROM rollback_operations WHERE operation_id = $1`, [operationId]);
    const row = rows[0];
    if (!row) return null;
    if (row.request_hash !== requestHash) throw new OperationIdReusedError(`operation id ${operationId} was used for another request`);
    return { operation: toRecord(row), duplicate: true };
  }

  /** After a failed apply: did a copy of this request commit first? */
  private async raced(error: unknown, operationId: string, requestHash: string): Promise<OperationOutcome | null> {
    if (!isUniqueViolation(error, 'rollback_operations_pkey') && !(error instanceof WrongExpectedVersionError)) return null;
    return this.existing(operationId, requestHash);
  }

  /** Folds each stream to its target, then one transaction: every rollback event and the audit record. */
  private async apply(op: {
    operationId: string;
    worldId: string;
    kind: 'rollback' | 'restore';
    scope: OperationRecord['scope'];
    reason: string;
    actor: string;
    requestHash: string;
    correlationId: string;
    streams: PlannedStream[];
    restores: string | null;
  }): Promise<OperationRecord> {
    const at = new Date().toISOString();
    const appends: StreamAppend[] = await mapLimit(op.streams, PARALLEL_FOLDS, async (planned, index): Promise<StreamAppend> => {
      const target = BigInt(planned.toRevision);
      const [restored, kept] = await Promise.all([
        this.options.stateAt.stream(planned.streamId, { revision: target }),
        this.options.stateAt.keptAt(planned.streamId, target),
      ]);
      const data: StreamRolledBack<unknown>['data'] = {
        operationId: op.operationId,
        kind: op.kind,
        toRevision: planned.toRevision,
        fromRevision: planned.fromRevision,
        state: restored.state,
        kept: kept satisfies RevisionRanges,
        reason: op.reason,
        actor: op.actor,
        at,
      };
      return {
        streamId: planned.streamId,
        expectedRevision: BigInt(planned.fromRevision),
        events: [
          {
            id: deriveEventId(op.operationId, index),
            type: 'StreamRolledBack',
            data,
            schemaVersion: EVENT_SCHEMA_VERSIONS.StreamRolledBack,
            metadata: {
              operationId: op.operationId,
              commandType: op.kind === 'rollback' ? 'admin.rollback' : 'admin.restore',
              correlationId: op.correlationId,
              causationId: op.operationId,
              actor: op.actor,
              worldId: op.worldId,
            },
          },
        ],
      };
    });
    let record: OperationRecord | null = null;
    await this.options.store.appendToStreams(appends, {
      beforeCommit: async (client: PoolClient, results) => {
        // All of them; in EventStoreDB mode, after a failure part-way, the part that was appended.
        const streams: AppliedStream[] = op.streams.slice(0, results.length).map((s, i) => ({ ...s, revision: Number(results[i]!.nextExpectedRevision) }));
        const position = results.reduce((max, r) => (r.position.prepare > max ? r.position.prepare : max), 0n);
        const { rows } = await client.query<OperationRow>(
          `INSERT INTO rollback_operations (operation_id, world_id, kind, scope, reason, actor, request_hash, streams, position, restores)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${OPERATION_COLUMNS}`,
          [op.operationId, op.worldId, op.kind, JSON.stringify(op.scope), op.reason, op.actor, op.requestHash, JSON.stringify(streams), position.toString(), op.restores],
        );
        if (op.restores) await client.query('UPDATE rollback_operations SET restored_by = $1 WHERE operation_id = $2', [op.operationId, op.restores]);
        record = toRecord(rows[0]!);
      },
    });
    return record!;
  }
}
