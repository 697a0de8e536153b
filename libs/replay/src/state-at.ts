import type { Pool } from 'pg';
import { deciders, keptAt, parseStreamId, REDUCER_VERSIONS, type AggregateName, type RevisionRanges, type StreamRolledBack } from '@lorestore/domain';
import { eventColumns, toRecordedEvent, type EventRow, type EventStore, type RecordedEvent } from '@lorestore/event-store';
import { toDomainEvent } from '@lorestore/projections';
import type { Snapshot, SnapshotStore } from './snapshots';

/**
 * A point of a stream's history: after a revision, as of a global position
 * (the stream's events at or below it), or as of a time (its events appended
 * at or before it; the first one after ends the prefix). No target: the head.
 */
export type StateTarget = { revision?: bigint; position?: bigint; time?: Date };

export type StreamStateAt = {
  streamId: string;
  aggregate: AggregateName;
  state: unknown;
  /** The last revision folded; −1 when the point is before the stream's first event. */
  revision: bigint;
  /** Position and time of that event (null at −1). */
  position: bigint | null;
  time: Date | null;
  /** Where the fold started: the snapshot's revision, or null for the start of the stream. */
  snapshotRevision: bigint | null;
  eventsFolded: number;
};

export class UnknownStreamError extends Error {
  override readonly name = 'UnknownStreamError';
}

export type StateAtOptions = {
  store: EventStore;
  pool: Pool;
  snapshots: SnapshotStore;
  /** A snapshot every this many events of a stream. */
  snapshotEvery: number;
  onSnapshotError?: (error: unknown) => void;
};

/**
 * State at any point: fold from the nearest usable snapshot (same reducer
 * version, at or before the point), then the stream's events up to the point.
 * A fold that had to cover more than `snapshotEvery` events leaves the
 * snapshots it passed behind, so the next one is short.
 */
export class StateAt {
  constructor(private readonly options: StateAtOptions) {}

  async stream(streamId: string, target: StateTarget = {}): Promise<StreamStateAt> {
    const parsed = parseStreamId(streamId);
    if (!parsed) throw new UnknownStreamError(`"${streamId}" is not a stream this service writes`);
    const { aggregate } = parsed;
    const decider = deciders[aggregate];
    const version = REDUCER_VERSIONS[aggregate];
    const every = this.options.snapshotEvery;
    const page = Math.max(every * 2, 256);
    // One round trip for the common case: the snapshot and the events after it (at most one page).
    const first = await this.snapshotAndFirstPage(streamId, version, target, page);
    const snapshot = first.snapshot;
    let state = snapshot ? snapshot.state : decider.initialState();
    let last: { revision: bigint; position: bigint; time: Date } | null = snapshot
      ? { revision: snapshot.revision, position: snapshot.position, time: snapshot.eventTime }
      : null;
    const passed: { streamId: string; revision: bigint; reducerVersion: number; state: unknown }[] = [];
    let folded = 0;
    for (let from = snapshot ? snapshot.revision + 1n : 0n; ; ) {
      if (target.revision !== undefined && from > target.revision) break;
      // Each page is a bounded range of revisions, so a position bound far behind the head
      // never makes the database walk the rest of a long stream.
      const pageEnd = from + BigInt(page) - 1n;
      const until = {
        revision: target.revision !== undefined && target.revision < pageEnd ? target.revision : pageEnd,
        ...(target.position !== undefined ? { position: target.position } : {}),
      };
      const events = from === first.from ? first.events : await this.options.store.readStream(streamId, { fromRevision: from, maxCount: page, until });
      let ended = events.length < page;
      for (const event of events) {
        if (target.time !== undefined && event.created > target.time) {
          ended = true;
          break;
        }
        state = decider.evolve(state, toDomainEvent(event));
        last = { revision: event.revision, position: event.position.prepare, time: event.created };
        folded++;
        if (every > 0 && (event.revision + 1n) % BigInt(every) === 0n && (snapshot === null || event.revision > snapshot.revision)) {
          passed.push({ streamId, revision: event.revision, reducerVersion: version, state });
        }
      }
      if (ended || events.length === 0) break;
      from = events.at(-1)!.revision + 1n;
    }
    if (folded > every && passed.length > 0) {
      this.options.snapshots.save(passed).catch((error: unknown) => this.options.onSnapshotError?.(error));
    }
    return {
      streamId,
      aggregate,
      state,
      revision: last ? last.revision : -1n,
      position: last ? last.position : null,
      time: last ? last.time : null,
      snapshotRevision: snapshot ? snapshot.revision : null,
      eventsFolded: folded,
    };
  }

  /**
   * The newest usable snapshot within the target and the first page of
   * events after it (within the target), in one statement. `from` is the
   * revision that page starts at.
   */
  private async snapshotAndFirstPage(
    streamId: string,
    reducerVersion: number,
    target: StateTarget,
    page: number,
  ): Promise<{ snapshot: Snapshot | null; from: bigint; events: RecordedEvent[] }> {
    type Row = EventRow & { snapshot: boolean };
    const { rows } = await this.options.pool.query<Row>(
      `WITH snap AS (
         SELECT revision, position, event_time, state FROM snapshots
          WHERE stream_id = $1 AND reducer_version = $2
            AND ($3::bigint IS NULL OR revision <= $3) AND ($4::bigint IS NULL OR position <= $4) AND ($5::timestamptz IS NULL OR event_time <= $5)
          ORDER BY revision DESC LIMIT 1
       ), start AS (SELECT coalesce((SELECT revision FROM snap), -1) AS r)
       SELECT true AS snapshot, s.position, NULL::text AS transaction_id, $1 AS stream_id, s.revision, NULL::uuid AS event_id, NULL::text AS type,
              0 AS schema_version, s.state AS data, NULL::jsonb AS metadata, s.event_time AS created_at
         FROM snap s
       UNION ALL
       (SELECT false AS snapshot, ${eventColumns('e')}
          FROM events e, start
         WHERE e.stream_id = $1 AND e.revision > start.r AND e.revision <= start.r + $6
           AND ($3::bigint IS NULL OR e.revision <= $3) AND ($4::bigint IS NULL OR e.position <= $4)
         ORDER BY e.revision)`,
      [streamId, reducerVersion, target.revision?.toString() ?? null, target.position?.toString() ?? null, target.time ?? null, page],
    );
    const snap = rows.find((r) => r.snapshot);
    const snapshot: Snapshot | null = snap
      ? { streamId, revision: BigInt(snap.revision), reducerVersion, position: BigInt(snap.position), eventTime: snap.created_at, state: snap.data }
      : null;
    const events = rows.filter((r) => !r.snapshot).map(toRecordedEvent);
    events.sort((a, b) => (a.revision < b.revision ? -1 : 1));
    return { snapshot, from: snapshot ? snapshot.revision + 1n : 0n, events };
  }

  /** The last rollback event of a stream at or before a revision, with the revisions it kept. */
  async lastReset(streamId: string, atOrBefore: bigint): Promise<{ revision: number; kept: RevisionRanges } | null> {
    const { rows } = await this.options.pool.query<{ revision: string; kept: RevisionRanges }>(
      `SELECT revision, data->'kept' AS kept FROM events
        WHERE stream_id = $1 AND type = 'StreamRolledBack' AND revision <= $2
        ORDER BY revision DESC LIMIT 1`,
      [streamId, atOrBefore.toString()],
    );
    const row = rows[0];
    return row ? { revision: Number(row.revision), kept: row.kept } : null;
  }

  /** The revisions whose effects the state at `revision` holds (−1: none). */
  async keptAt(streamId: string, revision: bigint): Promise<RevisionRanges> {
    if (revision < 0n) return [];
    return keptAt(Number(revision), await this.lastReset(streamId, revision));
  }
}

/** The data of a rollback event, read from a recorded one. */
export const rollbackData = (event: RecordedEvent) => toDomainEvent(event).data as StreamRolledBack<unknown>['data'];
