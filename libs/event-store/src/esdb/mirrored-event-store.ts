import { CommandIdReusedError, EventStoreUnavailableError, PartialAppendError } from '../errors';
import { deriveEventId } from '../event-ids';
import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { PostgresEventStore, type PostgresEventStoreOptions } from '../postgres/postgres-event-store';
import type { AppendOptions, AppendResult, EventData, Position, RecordedEvent, StreamAppend } from '../types';
import type { EsdbEventStore } from './esdb-event-store';

export type MirroredEventStoreOptions = PostgresEventStoreOptions & {
  esdb: EsdbEventStore;
  /** How long an append waits for the mirror to hold its events before answering `mirrored: false`. */
  mirrorWaitMs: number;
};

/**
 * EventStoreDB mode: appends go to EventStoreDB (the log of record); every
 * read — streams, the gap-safe feed, subscriptions, command results, stream
 * lists — comes from the PostgreSQL mirror, which is this class's own table
 * (it is a PostgresEventStore whose rows the EsdbMirror writes). An append
 * answers once the mirror holds its events, with the mirror's positions, so
 * consistency tokens, projections, replay and idempotency work as in
 * PostgreSQL mode; past `mirrorWaitMs` it answers `mirrored: false` (the
 * events are safe in EventStoreDB; the mirror catches up).
 */
export class MirroredEventStore extends PostgresEventStore {
  readonly esdb: EsdbEventStore;
  private readonly waiters = new Set<() => void>();
  private readonly byCommand = new Map<string, Promise<unknown>>();

  constructor(private readonly mirrored: MirroredEventStoreOptions) {
    super(mirrored);
    this.esdb = mirrored.esdb;
  }

  /** The in-process mirror committed events: wake the appends waiting for theirs, and the subscribers. */
  mirroredNow(): void {
    for (const wake of [...this.waiters]) wake();
    this.notifyCommitted();
  }

  override async appendToStream(streamId: string, events: EventData[], options: AppendOptions = {}): Promise<AppendResult> {
    if (events.length === 0) throw new RangeError('appendToStream needs at least one event');
    const commandId = options.commandId;
    if (!commandId) return this.appendOnce(streamId, events, options);
    // Copies of one command in this process go one after another, so the second finds the first's result.
    const previous = this.byCommand.get(commandId) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.appendOnce(streamId, events, options));
    this.byCommand.set(commandId, run);
    try {
      return await run;
    } finally {
      if (this.byCommand.get(commandId) === run) this.byCommand.delete(commandId);
    }
  }

  private async appendOnce(streamId: string, events: EventData[], options: AppendOptions): Promise<AppendResult> {
    if (options.commandId) {
      const prior = await this.priorResult(streamId, options.commandId, options.commandHash);
      if (prior) return prior;
    }
    const ids = events.map((e, i) => e.id ?? (options.commandId ? deriveEventId(options.commandId, i) : randomUUID()));
    // The same event ids already mirrored into this stream: a repeat, answered as the first append was.
    // (With a commandId, priorResult has looked already: the mirror writes a command's row with its events.)
    const before = options.commandId ? null : await this.mirroredPositions(ids);
    if (before && before.every((r) => r.streamId === streamId)) return { ...this.resultFrom(streamId, before, events), duplicate: true };
    const appended = await this.esdb.appendToStream(
      streamId,
      events.map((e, i) => ({ ...e, id: ids[i]! })),
      options,
    );
    const rows = await this.waitForMirror(ids);
    if (!rows) return { ...appended, mirrored: false };
    return this.resultFrom(streamId, rows, events);
  }

  /**
   * Several streams, for rollbacks. EventStoreDB has no transaction across
   * streams: the appends go one after another, each at its exact expected
   * revision with ids derived from the operation (a retry cannot double one);
   * `beforeCommit` runs in a PostgreSQL transaction once all are mirrored.
   * A failure on a later stream leaves the earlier ones appended: then
   * `beforeCommit` runs for those (so the part is recorded) and a
   * PartialAppendError says which. In PostgreSQL mode the set is one transaction.
   */
  override async appendToStreams(
    appends: StreamAppend[],
    options: { beforeCommit?: (client: PoolClient, results: AppendResult[]) => Promise<void> } = {},
  ): Promise<AppendResult[]> {
    const results: AppendResult[] = [];
    for (const append of appends) {
      try {
        let result = await this.appendToStream(append.streamId, append.events, { expectedRevision: append.expectedRevision });
        if (result.mirrored === false) {
          // Appended, not yet mirrored: an admin operation can wait longer than a command.
          const rows = await this.waitForMirror(result.events.map((e) => e.id), this.mirrored.mirrorWaitMs * 10);
          if (!rows) {
            results.push(result);
            throw new EventStoreUnavailableError('the PostgreSQL mirror did not catch up in time; the events are in EventStoreDB');
          }
          result = this.resultFrom(append.streamId, rows, append.events);
        }
        results.push(result);
      } catch (error) {
        if (results.length === 0) throw error;
        // Part is in EventStoreDB for good: record that part (the caller's audit row), then say what happened.
        if (options.beforeCommit) await this.inTransaction((client) => options.beforeCommit!(client, results));
        throw new PartialAppendError(
          results.map((r) => r.streamId),
          append.streamId,
          error,
        );
      }
    }
    if (options.beforeCommit) await this.inTransaction((client) => options.beforeCommit!(client, results));
    return results;
  }

  private async inTransaction(work: (client: PoolClient) => Promise<void>): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * The answer to a command already appended: from the mirror's command
   * results, or — when the mirror has not caught up with it yet — found in
   * EventStoreDB's stream by the event id its commandId derives, then waited
   * for in the mirror. Without the second look, a command resent while the
   * mirror lags would be decided again on EventStoreDB's newer state and
   * appended a second time at the next revision (EventStoreDB drops a
   * repeated event id only at the same expected revision).
   */
  async priorResult(streamId: string, commandId: string, commandHash: string | undefined): Promise<AppendResult | null> {
    const check = (hash: string | null | undefined) => {
      if (hash && commandHash !== undefined && hash !== commandHash) throw new CommandIdReusedError(commandId);
    };
    const mirrored = await this.commandResult(commandId);
    if (mirrored) {
      check(mirrored.commandHash);
      return { ...mirrored.result, duplicate: true };
    }
    const first = deriveEventId(commandId, 0);
    // Only what the mirror does not hold yet is looked at (usually nothing: one empty read).
    const { rows: heads } = await this.pool.query<{ revision: string }>('SELECT revision FROM streams WHERE stream_id = $1', [streamId]);
    const mirroredHead = heads[0] ? BigInt(heads[0].revision) : -1n;
    const tail = await this.esdb.readStream(streamId, { fromRevision: mirroredHead + 1n, maxCount: PRIOR_SCAN });
    const found = tail.find((e) => e.id === first) as (RecordedEvent & { commandHash?: string }) | undefined;
    if (!found) return null;
    check(found.commandHash);
    const ids = tail.filter((e) => e.metadata?.commandId === commandId).map((e) => e.id);
    const rows = await this.waitForMirror(ids);
    if (rows) return { ...this.resultFrom(streamId, rows, []), duplicate: true };
    const ordered = tail.filter((e) => ids.includes(e.id)).sort((a, b) => (a.revision < b.revision ? -1 : 1));
    const last = ordered.at(-1)!;
    return {
      streamId,
      nextExpectedRevision: last.revision,
      position: last.position,
      events: ordered.map((e) => ({ id: e.id, type: e.type, revision: e.revision, position: e.position })),
      duplicate: true,
      mirrored: false,
    };
  }

  /**
   * A stream as EventStoreDB has it now, for deciding a command: the mirror
   * may lag, and a decision on a stale state would be refused by the expected
   * revision, or worse, refused by the domain (an entity the mirror has not
   * seen yet). `lastPosition` is the mirror's position of the last event, or
   * null while it is not mirrored (not a consistency token).
   */
  async readForDecision(streamId: string, fromRevision?: bigint): Promise<{ events: RecordedEvent[]; lastPosition: bigint | null }> {
    const events = await this.esdb.readStream(streamId, fromRevision === undefined ? {} : { fromRevision });
    const last = events.at(-1);
    if (!last) return { events, lastPosition: null };
    const rows = await this.mirroredPositions([last.id]);
    return { events, lastPosition: rows ? rows[0]!.position.prepare : null };
  }

  private resultFrom(streamId: string, rows: MirroredRow[], events: EventData[]): AppendResult {
    const ordered = [...rows].sort((a, b) => (a.revision < b.revision ? -1 : 1));
    const last = ordered.at(-1)!;
    return {
      streamId,
      nextExpectedRevision: last.revision,
      position: last.position,
      events: ordered.map((r, i) => ({ id: r.id, type: events[i]?.type ?? r.type, revision: r.revision, position: r.position })),
      duplicate: false,
    };
  }

  /** The mirror's rows of these event ids, or null unless all are there. */
  private async mirroredPositions(ids: string[]): Promise<MirroredRow[] | null> {
    const { rows } = await this.pool.query<{ event_id: string; stream_id: string; revision: string; position: string; commit: string; type: string }>(
      'SELECT event_id, stream_id, revision, position, transaction_id::text AS commit, type FROM events WHERE event_id = ANY ($1::uuid[])',
      [ids],
    );
    if (rows.length < ids.length) return null;
    return rows.map((r) => ({
      id: r.event_id,
      streamId: r.stream_id,
      revision: BigInt(r.revision),
      position: { commit: BigInt(r.commit), prepare: BigInt(r.position) },
      type: r.type,
    }));
  }

  /** Until the mirror holds every one of these events (woken by the mirror of this process, else polling), or null after `mirrorWaitMs`. */
  private async waitForMirror(ids: string[], waitMs = this.mirrored.mirrorWaitMs): Promise<MirroredRow[] | null> {
    const deadline = Date.now() + waitMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      const rows = await this.mirroredPositions(ids);
      if (rows) return rows;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(delay, left));
        this.waiters.add(done);
      });
    }
  }
}

type MirroredRow = { id: string; streamId: string; revision: bigint; position: Position; type: string };

/** How many of a stream's events beyond the mirror's head are searched for a command the mirror has not caught up with. */
const PRIOR_SCAN = 64;
