import {
  ERASED,
  deciders,
  erasePlayerState,
  inRanges,
  parseStreamId,
  upcast,
  type AggregateName,
  type DomainEvent,
  type EntityState,
  type PlayerActionRecorded,
  type PlayerErased,
  type PlayerState,
  type RevisionRanges,
  type StreamRolledBack,
} from '@lorestore/domain';
import type { Position, RecordedEvent } from '@lorestore/event-store';

/**
 * A read-model document: one per stream, the aggregate's state as the domain's
 * own `evolve` folds it, stamped with the stream revision and global position
 * of the last event applied. The revision is the guard that makes every sink
 * idempotent: an event at or below it was applied already.
 */
export type Doc = {
  table: DocTable;
  streamId: string;
  worldId: string;
  /** Entity or player id; the world id for world and narrative documents. */
  id: string;
  revision: bigint;
  position: bigint;
  state: unknown;
  updatedAt: string;
  /** The generation of hot-state keys to write it under (see `hotKey`); 1 when absent. */
  generation?: number;
};

export type DocTable = 'entities' | 'world_state' | 'narrative_state' | 'player_state';

/** One row of `player_history`: a recorded action. */
export type HistoryRow = {
  worldId: string;
  playerId: string;
  at: string;
  action: string;
  context: unknown;
  revision: bigint;
  position: bigint;
  /** Undone by a rollback (kept, so a restore can bring it back, and history is never rewritten). */
  rolledBack: boolean;
};

/**
 * A rollback seen on a player stream: of the rows before revision `before`,
 * only those in `kept` still count; the others are marked rolled back (and a
 * restore marks them back).
 */
export type HistoryReset = { worldId: string; playerId: string; before: bigint; kept: RevisionRanges };

/**
 * An erasure seen in the feed (PlayerErased): the player's documents drop
 * their profile and every action row recorded before it shows ERASED for its
 * context, in every world.
 */
export type Erasure = { playerId: string; position: bigint };

/** A projection that keeps one document per stream of an aggregate. */
export type DocProjection = {
  kind: 'doc';
  name: DocTable;
  /** Bumped when the fold changes, so a rebuild knows its rows are stale. */
  version: number;
  aggregate: AggregateName;
};

/** A projection that turns some events into rows of their own. */
export type RowProjection = {
  kind: 'rows';
  name: 'player_history';
  version: number;
  rows: (event: RecordedEvent) => HistoryRow[];
  /** What a rollback event means for the rows written before it. */
  reset: (event: RecordedEvent) => HistoryReset | null;
};

export type Projection = DocProjection | RowProjection;

export const toDomainEvent = (event: RecordedEvent): DomainEvent =>
  ({ type: event.type, data: upcast(event.type, event.schemaVersion, event.data) }) as DomainEvent;

const doc = (name: DocTable, aggregate: AggregateName): DocProjection => ({ kind: 'doc', name, version: 1, aggregate });

export const entitiesProjection = doc('entities', 'entity');
export const worldStateProjection = doc('world_state', 'world');
export const narrativeStateProjection = doc('narrative_state', 'narrative');
export const playerStateProjection = doc('player_state', 'player');

export const playerHistoryProjection: RowProjection = {
  kind: 'rows',
  name: 'player_history',
  version: 1,
  rows: (event) => {
    if (event.type !== 'PlayerActionRecorded') return [];
    const stream = parseStreamId(event.streamId);
    if (stream?.aggregate !== 'player') return [];
    const data = toDomainEvent(event).data as PlayerActionRecorded['data'];
    return [
      {
        worldId: stream.worldId,
        playerId: stream.id,
        at: data.at,
        action: data.action,
        context: data.context,
        revision: event.revision,
        position: event.position.prepare,
        rolledBack: false,
      },
    ];
  },
  reset: (event) => {
    if (event.type !== 'StreamRolledBack') return null;
    const stream = parseStreamId(event.streamId);
    if (stream?.aggregate !== 'player') return null;
    const data = toDomainEvent(event).data as StreamRolledBack<unknown>['data'];
    return { worldId: stream.worldId, playerId: stream.id, before: event.revision, kept: data.kept };
  },
};

/**
 * What a rollback means for history rows not yet written (or held in memory):
 * each row of its player before it counts only if the restored state keeps it.
 * Stored rows get the same rule in SQL (ReadModelStore's history_resets).
 */
/**
 * What an erasure means for history rows held in memory: every row of the
 * player so far, i.e. before the erasure in the feed (whose order is by
 * transaction: a row may hold a later position and still come first). Stored
 * rows get the same in SQL before the batch's own are written (ReadModelStore.commit).
 */
export const applyHistoryErasure = (rows: Iterable<HistoryRow>, erasure: Erasure): void => {
  for (const row of rows) if (row.playerId === erasure.playerId) row.context = ERASED;
};

/**
 * The players erased in these events whose documents in every world must be
 * at hand to plan the batch: none unless the player documents are among the
 * projections (what `docKeysOf` is for the documents of the batch's own streams).
 */
export const erasedPlayersOf = (projections: readonly Projection[], events: readonly RecordedEvent[]): string[] =>
  projections.some((p) => p.kind === 'doc' && p.aggregate === 'player')
    ? [...new Set(events.filter((e) => e.type === 'PlayerErased').map((e) => (e.data as PlayerErased['data']).playerId))]
    : [];

export const applyHistoryReset = (rows: Iterable<HistoryRow>, reset: HistoryReset): void => {
  for (const row of rows) {
    if (row.worldId === reset.worldId && row.playerId === reset.playerId && row.revision < reset.before) {
      row.rolledBack = !inRanges(Number(row.revision), reset.kept);
    }
  }
};

/** Every projection the service runs, in the order their writes are applied. */
export const ALL_PROJECTIONS: readonly Projection[] = [
  entitiesProjection,
  worldStateProjection,
  narrativeStateProjection,
  playerStateProjection,
  playerHistoryProjection,
];

/**
 * A document's key in the maps of a batch: its stream id alone, as a stream
 * belongs to one aggregate and an aggregate to at most one table. The event's
 * own string (whose hash V8 keeps), not a new one per lookup.
 */
export const docKey = (_table: DocTable, streamId: string): string => streamId;

/** When a document last changed: the entity's own clock where it keeps one, else the event's append time. */
const updatedAt = (table: DocTable, state: unknown, event: RecordedEvent): string => {
  if (table === 'entities') {
    const entity = state as EntityState;
    if (entity.status !== 'unspawned') return entity.updatedAt;
  }
  return event.created.toISOString();
};

export class ProjectionGapError extends Error {
  override readonly name = 'ProjectionGapError';
  constructor(projection: string, streamId: string, expected: bigint, got: bigint) {
    super(`${projection}: stream ${streamId} needs revision ${expected} next but the feed gave ${got}; rebuild the projection`);
  }
}

/** The change one batch of the feed makes to the read models. */
export type BatchChanges = {
  /** Documents after the batch, only those it changed. */
  docs: Doc[];
  history: HistoryRow[];
  /** The last rollback per player stream in the batch, for the rows stored before the batch. */
  historyResets: HistoryReset[];
  /** Erasures in the batch, for the history rows stored before the batch (its own rows are marked already). */
  erasures?: Erasure[];
  /** The last event of the batch: every projection's new checkpoint. */
  checkpoint: { position: Position; time: Date } | null;
};

/**
 * The pure core of every projection: given the current documents of the
 * batch's streams (as the read model holds them) and the batch's events in
 * feed order, the documents and rows to write. An event at or below a
 * document's revision was applied before (a redelivery) and changes nothing.
 * An erasure (PlayerErased) rewrites every document of the player that
 * `current` holds (the caller loads them all: `erasedPlayersOf`) at the
 * same revision and the erasure's position, which the sinks take as newer.
 */
export type PlanOptions = {
  /**
   * The caller owns the states of `current` (nothing else holds them or any
   * part of them) and reads only the documents returned: states are folded in
   * place where the aggregate can (`evolveInPlace`), and `current`'s states
   * may have changed afterwards, also when planning throws; so may the
   * documents themselves (a document returned may be the one passed in). The
   * rebuild's bulk phase, whose documents live only in its own map.
   */
  inPlace?: boolean;
};

export const planBatch = (
  projections: readonly Projection[],
  current: ReadonlyMap<string, Doc>,
  events: readonly RecordedEvent[],
  options: PlanOptions = {},
): BatchChanges => {
  const changed = new Map<string, Doc>();
  // The event each changed document's `updatedAt` comes from, turned into a string once per document, at the end.
  const lastEvent = new Map<string, RecordedEvent>();
  const history: HistoryRow[] = [];
  const resets = new Map<string, HistoryReset>();
  const erasures: Erasure[] = [];
  const docProjections = new Map<AggregateName, DocProjection>();
  const rowProjections: RowProjection[] = [];
  for (const p of projections) {
    if (p.kind === 'doc') docProjections.set(p.aggregate, p);
    else rowProjections.push(p);
  }
  for (const event of events) {
    if (event.type === 'PlayerErased') {
      const { playerId, at: erasedAt } = event.data as PlayerErased['data'];
      const erasure = { playerId, position: event.position.prepare };
      if (rowProjections.length > 0) {
        // "Before the erasure" is before it in the feed: every row of the player planned so far.
        applyHistoryErasure(history, erasure);
        erasures.push(erasure);
      }
      const players = docProjections.get('player');
      if (players) {
        const at = event.created.toISOString();
        for (const source of [current, changed]) {
          for (const [key, doc] of source) {
            if (doc.table !== players.name || doc.id !== playerId) continue;
            const latest = changed.get(key) ?? doc;
            // Rewritten by this erasure already (earlier in the batch, or a redelivered batch): nothing to do.
            if ((latest.state as PlayerState).erasedAt === erasedAt) continue;
            // The same revision (the player's stream did not move), and a position that never goes back
            // (the feed's order is by transaction, so an event of the player may hold a later position).
            const position = latest.position > event.position.prepare ? latest.position : event.position.prepare;
            changed.set(key, { ...latest, state: erasePlayerState(latest.state as PlayerState, erasedAt), position, updatedAt: at });
            lastEvent.delete(key);
          }
        }
      }
      continue;
    }
    for (const rows of rowProjections) {
      history.push(...rows.rows(event));
      const reset = rows.reset(event);
      if (reset) {
        // Rows of this batch are marked here (the batch's one statement cannot see its own inserts);
        // stored rows by the reset in SQL. The last reset of a stream decides for every row before it.
        applyHistoryReset(history, reset);
        resets.set(`${reset.worldId}|${reset.playerId}`, reset);
      }
    }
    const stream = parseStreamId(event.streamId);
    const projection = stream && docProjections.get(stream.aggregate);
    if (!stream || !projection) continue;
    const key = docKey(projection.name, event.streamId);
    const before = changed.get(key) ?? current.get(key);
    if (before && event.revision <= before.revision) continue;
    const expected = (before?.revision ?? -1n) + 1n;
    if (event.revision !== expected) {
      // The feed keeps each stream in order, so this means the read model lost rows it had committed.
      throw new ProjectionGapError(projection.name, event.streamId, expected, event.revision);
    }
    const decider = deciders[projection.aggregate];
    const evolve = options.inPlace && decider.evolveInPlace ? decider.evolveInPlace : decider.evolve;
    let state = evolve(before ? before.state : decider.initialState(), toDomainEvent(event));
    // An erased player stays erased in the read model: a rollback (which replaces the whole state) brings
    // back only envelopes that no longer open, and the document keeps saying so.
    const erasedAt = projection.aggregate === 'player' ? (before?.state as PlayerState | undefined)?.erasedAt : undefined;
    if (erasedAt !== undefined && (state as PlayerState).erasedAt === undefined) state = erasePlayerState(state as PlayerState, erasedAt);
    if (options.inPlace && before) {
      // The caller's document, moved on where it is.
      before.revision = event.revision;
      before.position = event.position.prepare;
      before.state = state;
      changed.set(key, before);
    } else {
      changed.set(key, {
        table: projection.name,
        streamId: event.streamId,
        worldId: stream.worldId,
        id: stream.id,
        revision: event.revision,
        position: event.position.prepare,
        state,
        updatedAt: '',
      });
    }
    lastEvent.set(key, event);
  }
  for (const [key, event] of lastEvent) {
    const doc = changed.get(key)!;
    doc.updatedAt = updatedAt(doc.table, doc.state, event);
  }
  const last = events.at(-1);
  return {
    docs: [...changed.values()],
    history,
    historyResets: [...resets.values()],
    ...(erasures.length > 0 ? { erasures } : {}),
    checkpoint: last ? { position: last.position, time: last.created } : null,
  };
};

/** The documents and rows that `planBatch` needs loaded before it runs: one key per projected stream. */
export const docKeysOf = (projections: readonly Projection[], events: readonly RecordedEvent[]): Map<DocTable, string[]> => {
  const byAggregate = new Map<AggregateName, DocTable>();
  for (const p of projections) if (p.kind === 'doc') byAggregate.set(p.aggregate, p.name);
  const keys = new Map<DocTable, Set<string>>();
  for (const event of events) {
    const stream = parseStreamId(event.streamId);
    const table = stream && byAggregate.get(stream.aggregate);
    if (!table) continue;
    if (!keys.has(table)) keys.set(table, new Set());
    keys.get(table)!.add(event.streamId);
  }
  return new Map([...keys].map(([table, ids]) => [table, [...ids]]));
};
