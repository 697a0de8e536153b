import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { isConnectionError, isUniqueViolation, loadMigrations, migrate, withTransaction } from '@lorestore/infra';
import { CommandIdReusedError, EventIdConflictError, EventStoreUnavailableError, WrongExpectedVersionError } from '../errors';
import {
  END,
  START,
  comparePositions,
  type AllSubscription,
  type AppendOptions,
  type AppendResult,
  type EventData,
  type EventStore,
  type StreamAppend,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StreamHead,
  type SubscribeToAllOptions,
} from '../types';
import { MicroBatcher, type MicroBatchOptions } from './micro-batcher';
import { PostgresAllSubscription } from './subscription';
import { EVENT_ROW_TYPES } from './timestamptz';

/**
 * The NOTIFY channel of a schema's appends. PostgreSQL truncates identifiers
 * at 63 bytes and pg_notify refuses a longer channel, so a long schema name
 * (up to 63 characters are allowed) is replaced by a hash of it.
 */
export const notifyChannel = (schema: string): string => {
  const channel = `lorestore_events_${schema}`;
  return channel.length <= 63 ? channel : `lorestore_events_${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
};

/** A batch gives way to newer writers this often before its error reaches the callers. */
const MAX_ORDER_RETRIES = 20;

/** A transaction PostgreSQL rolled back whole and that may simply run again: it gave way to a newer writer (40001) or lost a deadlock (40P01). */
const worthRunningAgain = (error: unknown): boolean => {
  const code = (error as { code?: string }).code;
  return code === '40001' || code === '40P01';
};

export const EVENT_STORE_MIGRATIONS_DIR = path.join(__dirname, 'migrations');

export type PostgresEventStoreOptions = {
  pool: Pool;
  /** The schema the pool's search_path points at; names the NOTIFY channel. */
  schema: string;
  groupCommit?: Partial<MicroBatchOptions>;
  /** Concurrent reads of whole streams share one query; set maxBatchSize 1 to turn it off. */
  readBatch?: Partial<MicroBatchOptions>;
  /** Fallback poll interval of subscriptions when no NOTIFY arrives. */
  pollIntervalMs?: number;
  onBatch?: (size: number, ms: number) => void;
  /**
   * Try each batch first as the common case (migration 004: every request a
   * plain append, three statements), falling back to the full append_batch
   * when it is not. Default true; false runs every batch through append_batch.
   */
  fastAppend?: boolean;
  /** Called for each batch that took the short path's attempt and then went through append_batch. */
  onFastAppendFallback?: () => void;
};

/**
 * Whether an error of append_batch_fast (migration 004) means "not all plain
 * appends": its own LSA01, or what it meets on the way to finding out — a
 * command id or event id stored before, a deadlock PostgreSQL broke. The batch,
 * rolled back whole, then runs again through append_batch. Any other error
 * (a stream's revision already in `events`, a lost connection) is the caller's.
 */
const fastAppendGaveWay = (error: unknown): boolean => {
  const code = (error as { code?: string }).code;
  return code === 'LSA01' || code === '40P01' || isUniqueViolation(error, 'commands_pkey') || isUniqueViolation(error, 'events_event_id');
};

/** Whether a batch can be the common case at all: each stream and each command once. */
const fastAppendCandidate = (batch: readonly BatchRequest[]): boolean => {
  const streams = new Set<string>();
  const commands = new Set<string>();
  for (const request of batch) {
    if (streams.has(request.stream)) return false;
    streams.add(request.stream);
    if (request.commandId !== null) {
      if (commands.has(request.commandId)) return false;
      commands.add(request.commandId);
    }
  }
  return true;
};

type BatchRequest = {
  stream: string;
  world: string | null;
  category: string;
  expected: string;
  commandId: string | null;
  commandHash: string | null;
  events: { id: string; type: string; v: number; data: unknown; metadata: Record<string, unknown> }[];
};

type StoredResult = {
  streamId: string;
  revision: number | string;
  position: number | string;
  commit: string;
  events: { id: string; type: string; revision: number | string; position: number | string; commit: string }[];
};

/** One row of append_batch per request (migrations/001_event_store.sql). */
type BatchRow = {
  status: 'ok' | 'same_as' | 'duplicate' | 'command_reused' | 'wrong_expected_version' | 'event_id_conflict';
  current_revision: string | null;
  same_as: number | null;
  first_revision: string | null;
  positions: string[] | null;
  tx: string;
  prior: StoredResult | null;
};

/** What became of one append of a batch. */
type BatchOutcome =
  | { status: 'appended' | 'duplicate'; result: AppendResult }
  | { status: 'command_reused' | 'event_id_conflict' }
  | { status: 'wrong_expected_version'; current: bigint };

/** A row of `events` as `eventColumns` selects it (for PostgreSQL-bound readers such as libs/replay). */
export type EventRow = {
  position: string;
  transaction_id: string;
  stream_id: string;
  revision: string;
  event_id: string;
  type: string;
  schema_version: number;
  data: unknown;
  /** Null when the read left it out. */
  metadata: Record<string, unknown> | null;
  created_at: Date;
};

/**
 * The columns every read returns. `transaction_id` goes out as text (an xid8
 * does not fit a JS number); an ORDER BY must therefore name the table's
 * column (`events.transaction_id`): a bare name means this text output
 * column, whose order ('999' > '1000') is not the transactions' order.
 */
export const eventColumns = (t: string, withMetadata = true) =>
  `${t}.position, ${t}.transaction_id::text AS transaction_id, ${t}.stream_id, ${t}.revision, ${t}.event_id, ${t}.type, ${t}.schema_version, ${t}.data, ${withMetadata ? `${t}.metadata` : 'NULL::jsonb AS metadata'}, ${t}.created_at`;

/** The metadata of an event read without it (`withMetadata: false` of `readFeed`, `readFeedRange`): empty, and shared, so frozen. */
const UNREAD_METADATA: Record<string, unknown> = Object.freeze({});
const EVENT_COLUMNS = eventColumns('events');
const EVENT_COLUMNS_WITHOUT_METADATA = eventColumns('events', false);

export const toRecordedEvent = (row: EventRow): RecordedEvent => ({
  streamId: row.stream_id,
  revision: BigInt(row.revision),
  position: { commit: BigInt(row.transaction_id), prepare: BigInt(row.position) },
  id: row.event_id,
  type: row.type,
  schemaVersion: row.schema_version,
  data: row.data,
  metadata: row.metadata ?? UNREAD_METADATA,
  created: row.created_at,
});

const toAppendResult = (stored: StoredResult, duplicate: boolean): AppendResult => ({
  streamId: stored.streamId,
  nextExpectedRevision: BigInt(stored.revision),
  position: { commit: BigInt(stored.commit), prepare: BigInt(stored.position) },
  events: stored.events.map((e) => ({
    id: e.id,
    type: e.type,
    revision: BigInt(e.revision),
    position: { commit: BigInt(e.commit), prepare: BigInt(e.position) },
  })),
  duplicate,
});

/**
 * The system of record in PostgreSQL: `events` is the log, `streams` holds each
 * stream's head (and its row lock serialises writers of one stream), `commands`
 * remembers what each commandId got. See migrations/001_event_store.sql.
 */
export class PostgresEventStore implements EventStore {
  private readonly committer: MicroBatcher<BatchRequest, BatchOutcome>;
  private readonly reader: MicroBatcher<{ streamId: string; from: bigint }, RecordedEvent[]>;
  private readonly subscriptions = new Set<PostgresAllSubscription>();

  constructor(private readonly options: PostgresEventStoreOptions) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(options.schema)) throw new Error(`invalid schema name ${options.schema}`);
    this.committer = new MicroBatcher<BatchRequest, BatchOutcome>(
      (batch) => this.writeBatch(batch),
      { maxConcurrentBatches: 2, maxBatchSize: 256, ...options.groupCommit },
      options.onBatch,
    );
    this.reader = new MicroBatcher<{ streamId: string; from: bigint }, RecordedEvent[]>((reads) => this.readStreams(reads), {
      maxConcurrentBatches: 4,
      maxBatchSize: 128,
      ...options.readBatch,
    });
  }

  static async migrate(pool: Pool, schema: string): Promise<string[]> {
    return migrate(pool, schema, await loadMigrations(EVENT_STORE_MIGRATIONS_DIR));
  }

  get pool(): Pool {
    return this.options.pool;
  }

  async appendToStream(streamId: string, events: EventData[], options: AppendOptions = {}): Promise<AppendResult> {
    if (events.length === 0) throw new RangeError('appendToStream needs at least one event');
    const expected = options.expectedRevision ?? 'any';
    const worldId = events[0]?.metadata?.worldId;
    const request: BatchRequest = {
      stream: streamId,
      world: typeof worldId === 'string' ? worldId : null,
      category: streamId.split('-', 1)[0]!,
      expected: typeof expected === 'bigint' ? expected.toString() : expected,
      commandId: options.commandId ?? null,
      commandHash: options.commandHash ?? null,
      events: events.map((e) => ({ id: e.id, type: e.type, v: e.schemaVersion ?? 1, data: e.data, metadata: e.metadata ?? {} })),
    };
    let response: BatchOutcome;
    try {
      response = await this.committer.submit(request);
    } catch (error) {
      // Constraint violations that the batch's own checks cannot see coming (a race with
      // another instance, or two requests of one batch sharing an id) land here.
      if (isUniqueViolation(error)) {
        const constraint = (error as { constraint?: string }).constraint;
        if (constraint === 'commands_pkey') throw new CommandIdReusedError(options.commandId ?? '');
        if (constraint === 'events_event_id') throw new EventIdConflictError(streamId);
      }
      if (isConnectionError(error)) throw new EventStoreUnavailableError(`event store unavailable: ${(error as Error).message}`);
      throw error;
    }
    switch (response.status) {
      case 'appended':
      case 'duplicate':
        return response.result;
      case 'command_reused':
        throw new CommandIdReusedError(options.commandId ?? '');
      case 'wrong_expected_version':
        throw new WrongExpectedVersionError(streamId, expected, response.current < 0n ? null : response.current);
      case 'event_id_conflict':
        throw new EventIdConflictError(streamId);
    }
  }

  /**
   * Appends to several streams all-or-nothing, in one transaction: either every
   * append commits or none does (the first failing check is thrown, as
   * `appendToStream` would throw it). `beforeCommit` runs in the same
   * transaction after the appends, for a record that must commit with them
   * (a rollback's audit entry). No commandId: callers make these idempotent
   * by their own key. PostgreSQL only: EventStoreDB has no such transaction.
   */
  async appendToStreams(appends: StreamAppend[], options: { beforeCommit?: (client: PoolClient, results: AppendResult[]) => Promise<void> } = {}): Promise<AppendResult[]> {
    if (appends.length === 0) return [];
    const batch: BatchRequest[] = appends.map(({ streamId, events, expectedRevision }) => {
      if (events.length === 0) throw new RangeError(`appendToStreams: no events for ${streamId}`);
      const worldId = events[0]?.metadata?.worldId;
      return {
        stream: streamId,
        world: typeof worldId === 'string' ? worldId : null,
        category: streamId.split('-', 1)[0]!,
        expected: typeof expectedRevision === 'bigint' ? expectedRevision.toString() : expectedRevision,
        commandId: null,
        commandHash: null,
        events: events.map((e) => ({ id: e.id, type: e.type, v: e.schemaVersion ?? 1, data: e.data, metadata: e.metadata ?? {} })),
      };
    });
    const requests = JSON.stringify(batch);
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await withTransaction(this.options.pool, async (client) => {
          const { rows } = await client.query<BatchRow>('SELECT * FROM append_batch($1::jsonb)', [requests]);
          const out: AppendResult[] = [];
          rows.forEach((row, i) => {
            const { streamId, expectedRevision } = appends[i]!;
            switch (row.status) {
              case 'ok': {
                const first = BigInt(row.first_revision!);
                const commit = BigInt(row.tx);
                const events = batch[i]!.events.map((e, k) => ({ id: e.id, type: e.type, revision: first + BigInt(k), position: { commit, prepare: BigInt(row.positions![k]!) } }));
                out.push({ streamId, nextExpectedRevision: events.at(-1)!.revision, position: events.at(-1)!.position, events, duplicate: false });
                return;
              }
              case 'wrong_expected_version': {
                const current = BigInt(row.current_revision!);
                throw new WrongExpectedVersionError(streamId, expectedRevision, current < 0n ? null : current);
              }
              case 'same_as':
              case 'event_id_conflict':
                throw new EventIdConflictError(streamId);
              default:
                throw new Error(`append_batch answered ${row.status} for ${streamId}`);
            }
          });
          await options.beforeCommit?.(client, out);
          return out;
        });
        this.wakeSubscribers();
        return results;
      } catch (error) {
        if (isUniqueViolation(error, 'events_event_id')) throw new EventIdConflictError(appends[0]!.streamId);
        if (!worthRunningAgain(error) || attempt >= MAX_ORDER_RETRIES) {
          if (isConnectionError(error)) throw new EventStoreUnavailableError(`event store unavailable: ${(error as Error).message}`);
          throw error;
        }
        this.orderRetries++;
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 10)));
      }
    }
  }

  private async writeBatch(batch: BatchRequest[]): Promise<BatchOutcome[]> {
    const requests = JSON.stringify(batch);
    const rows = (this.options.fastAppend !== false && fastAppendCandidate(batch) && (await this.runFastAppend(requests))) || (await this.runAppendBatch(requests));
    if (rows.length !== batch.length) throw new Error(`append_batch answered ${rows.length} results for ${batch.length} requests`);
    const appended = (i: number): AppendResult => {
      const row = rows[i]!;
      const first = BigInt(row.first_revision!);
      const commit = BigInt(row.tx);
      const events = batch[i]!.events.map((e, k) => ({
        id: e.id,
        type: e.type,
        revision: first + BigInt(k),
        position: { commit, prepare: BigInt(row.positions![k]!) },
      }));
      const last = events.at(-1)!;
      return { streamId: batch[i]!.stream, nextExpectedRevision: last.revision, position: last.position, events, duplicate: false };
    };
    const outcomes = rows.map((row, i): BatchOutcome => {
      switch (row.status) {
        case 'ok':
          return { status: 'appended', result: appended(i) };
        case 'same_as':
          return { status: 'duplicate', result: { ...appended(row.same_as!), duplicate: true } };
        case 'duplicate':
          return { status: 'duplicate', result: toAppendResult(row.prior!, true) };
        case 'wrong_expected_version':
          return { status: 'wrong_expected_version', current: BigInt(row.current_revision!) };
        case 'command_reused':
        case 'event_id_conflict':
          return { status: row.status };
      }
    });
    if (outcomes.some((o) => o.status === 'appended')) this.wakeSubscribers();
    return outcomes;
  }

  /**
   * The batch as the common case (migration 004), or null when it is not and
   * nothing of it was written: then append_batch decides each request.
   */
  private async runFastAppend(requests: string): Promise<BatchRow[] | null> {
    try {
      return (await this.options.pool.query<BatchRow>('SELECT * FROM append_batch_fast($1::jsonb)', [requests])).rows;
    } catch (error) {
      if (!fastAppendGaveWay(error)) throw error;
      this.fastAppendFallbacks++;
      this.options.onFastAppendFallback?.();
      return null;
    }
  }

  /** Batches that were not the common case and ran again through append_batch; for tests and metrics. */
  fastAppendFallbacks = 0;

  /**
   * One append_batch call; again, in a new transaction, when it gives way to a
   * newer writer of one of its streams (SQLSTATE 40001, see migration 002):
   * that keeps each stream's revisions in order in the global feed. Also when
   * PostgreSQL broke a deadlock by rolling it back (40P01; writers of the heads
   * lock them in stream order, so this is not expected).
   */
  private async runAppendBatch(requests: string): Promise<BatchRow[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.options.pool.query<BatchRow>('SELECT * FROM append_batch($1::jsonb)', [requests])).rows;
      } catch (error) {
        if (!worthRunningAgain(error) || attempt >= MAX_ORDER_RETRIES) throw error;
        this.orderRetries++;
        // A little jitter, growing, so batches that keep meeting on a hot stream fall out of step.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 10)));
      }
    }
  }

  /** Batches run again to keep per-stream order, or after a deadlock (see runAppendBatch); for tests and metrics. */
  orderRetries = 0;

  private notifying = false;
  private notifyAgain = false;

  /**
   * Tells subscribers (of every instance) that events were committed, after the
   * commit, outside the batch's transaction: a NOTIFY inside it would hold the
   * database-wide notify lock through the commit and serialise concurrent
   * batches. At most one in flight; a lost wake-up is covered by polling.
   * The channel name is built from the schema, a validated SQL identifier, so it can sit in the text.
   */
  /** Wakes subscribers after rows were committed by another writer of this table (the EventStoreDB mirror). */
  notifyCommitted(): void {
    this.wakeSubscribers();
  }

  private wakeSubscribers(): void {
    if (this.notifying) {
      this.notifyAgain = true;
      return;
    }
    this.notifying = true;
    this.notifyAgain = false;
    // NOTIFY gives its transaction an id and a commit record; with synchronous_commit on, that
    // is one more WAL flush per batch. A lost wake-up costs a poll interval, never an event.
    this.options.pool
      .query(`BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_notify('${this.channel}', ''); COMMIT`)
      .catch(() => undefined)
      .finally(() => {
        this.notifying = false;
        if (this.notifyAgain) this.wakeSubscribers();
      });
  }

  private get channel(): string {
    return notifyChannel(this.options.schema);
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    // The command path reads streams forwards to their end; concurrent reads go out as one query.
    const from = options.fromRevision;
    if (options.direction !== 'backwards' && options.maxCount === undefined && !options.until && from !== END) {
      return this.reader.submit({ streamId, from: from === undefined || from === START ? 0n : from });
    }
    const backwards = options.direction === 'backwards';
    const params: unknown[] = [streamId];
    const where = ['stream_id = $1'];
    if (from !== undefined && from !== START && from !== END) {
      params.push(from.toString());
      where.push(`revision ${backwards ? '<=' : '>='} $${params.length}`);
    }
    const until = options.until ?? {};
    if (until.revision !== undefined) {
      params.push(until.revision.toString());
      where.push(`revision <= $${params.length}`);
    }
    if (until.position !== undefined) {
      params.push(until.position.toString());
      where.push(`position <= $${params.length}`);
    }
    if (until.time !== undefined) {
      params.push(until.time);
      where.push(`created_at <= $${params.length}`);
    }
    let limit = '';
    if (options.maxCount !== undefined) {
      params.push(options.maxCount);
      limit = `LIMIT $${params.length}`;
    }
    const { rows } = await this.options.pool.query<EventRow>({
      text: `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where.join(' AND ')} ORDER BY revision ${backwards ? 'DESC' : 'ASC'} ${limit}`,
      values: params,
      types: EVENT_ROW_TYPES,
    });
    return rows.map(toRecordedEvent);
  }

  private async readStreams(reads: { streamId: string; from: bigint }[]): Promise<RecordedEvent[][]> {
    const { rows } = await this.options.pool.query<EventRow & { read: string }>({
      text: `SELECT q.read, ${eventColumns('e')}
         FROM unnest($1::text[], $2::bigint[]) WITH ORDINALITY AS q(stream_id, from_revision, read)
         JOIN events e ON e.stream_id = q.stream_id AND e.revision >= q.from_revision
        ORDER BY q.read, e.revision`,
      values: [reads.map((r) => r.streamId), reads.map((r) => r.from.toString())],
      types: EVENT_ROW_TYPES,
    });
    const results: RecordedEvent[][] = reads.map(() => []);
    for (const row of rows) results[Number(row.read) - 1]!.push(toRecordedEvent(row));
    return results;
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const from = options.fromPosition ?? START;
    return this.readFeed(from === START ? null : from, true, options.maxCount ?? 1000);
  }

  /**
   * The gap-safe read: only rows written by transactions older than the
   * oldest one still running (`pg_snapshot_xmin`), in (transaction, position)
   * order. A transaction that holds a low position and commits late is still
   * "running" until then, so nothing after it is passed over.
   */
  async readFeed(from: Position | null, inclusive: boolean, maxCount: number, options: { withMetadata?: boolean } = {}): Promise<RecordedEvent[]> {
    const after = from
      ? `AND (transaction_id, position) ${inclusive ? '>=' : '>'} ($1::text::xid8, $2::bigint)`
      : 'AND $1::text IS NULL AND $2::bigint IS NULL';
    const { rows } = await this.options.pool.query<EventRow>({
      text: `SELECT ${options.withMetadata === false ? EVENT_COLUMNS_WITHOUT_METADATA : EVENT_COLUMNS} FROM events
        WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) ${after}
        ORDER BY events.transaction_id, events.position
        LIMIT $3`,
      values: [from ? from.commit.toString() : null, from ? from.prepare.toString() : null, maxCount],
      types: EVENT_ROW_TYPES,
    });
    return rows.map(toRecordedEvent);
  }

  /**
   * A bounded stretch of the feed, for bulk readers (a rebuild): the next
   * `window` events after `after` up to and including `until`, in feed order,
   * of which only those of some stream categories (the part of a stream id
   * before its first dash) come back; `scannedTo` is the last position the
   * window covered (null: nothing left), so the caller goes on from there.
   * Scanning a fixed window in index order keeps the plan an index scan
   * whatever share of the log the categories are (filtered in the same query,
   * PostgreSQL misjudges that share and sorts the whole table instead).
   * `until` must be a position a gap-safe read has returned (`headPosition`):
   * nothing can still commit at or below it. `withMetadata: false` leaves
   * each event's metadata out (an empty object): about half of what a
   * projection's rebuild would otherwise have PostgreSQL render and Node parse.
   */
  async readFeedRange(
    after: Position | null,
    until: Position,
    categories: readonly string[] | null,
    window: number,
    options: { withMetadata?: boolean } = {},
  ): Promise<{ events: RecordedEvent[]; scannedTo: Position | null }> {
    const { rows } = await this.options.pool.query<EventRow & { marker: boolean }>({
      text: `WITH w AS (
         SELECT * FROM events
          WHERE ($1::text IS NULL OR (transaction_id, position) > ($1::text::xid8, $2::bigint))
            AND (transaction_id, position) <= ($3::text::xid8, $4::bigint)
          ORDER BY transaction_id, position
          LIMIT $6)
       SELECT false AS marker, ${eventColumns('w', options.withMetadata ?? true)} FROM w
        WHERE $5::text[] IS NULL OR split_part(w.stream_id, '-', 1) = ANY ($5::text[])
       UNION ALL
       (SELECT true, w.position, w.transaction_id::text, '', 0, NULL, '', 0, NULL, NULL, now() FROM w
         ORDER BY w.transaction_id DESC, w.position DESC LIMIT 1)`,
      values: [after ? after.commit.toString() : null, after ? after.prepare.toString() : null, until.commit.toString(), until.prepare.toString(), categories, window],
      types: EVENT_ROW_TYPES,
    });
    const marker = rows.find((r) => r.marker);
    const events = rows.filter((r) => !r.marker).map(toRecordedEvent);
    events.sort((a, b) => comparePositions(a.position, b.position));
    return { events, scannedTo: marker ? { commit: BigInt(marker.transaction_id), prepare: BigInt(marker.position) } : null };
  }

  /** The last position a gap-safe reader can see now. */
  async headPosition(): Promise<Position | null> {
    const { rows } = await this.options.pool.query<{ transaction_id: string; position: string }>(
      `SELECT transaction_id::text AS transaction_id, position FROM events
        WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1`,
    );
    const row = rows[0];
    return row ? { commit: BigInt(row.transaction_id), prepare: BigInt(row.position) } : null;
  }

  /**
   * Where a subscription "from the end" starts: the gap-safe head, and the
   * snapshot taken with it. Events after that head whose transaction had
   * already committed in the snapshot were appended before the subscription
   * (they only waited for an older transaction to end) and are not delivered.
   */
  async endMarker(): Promise<{ head: Position | null; committedBefore: (commit: bigint) => boolean; horizon: bigint }> {
    const { rows } = await this.options.pool.query<{ snapshot: string; transaction_id: string | null; position: string | null }>(
      `WITH s AS (SELECT pg_current_snapshot() AS snap)
       SELECT s.snap::text AS snapshot, h.transaction_id::text AS transaction_id, h.position
         FROM s LEFT JOIN LATERAL (
           SELECT events.transaction_id, events.position FROM events
            WHERE events.transaction_id < pg_snapshot_xmin(s.snap)
            ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1) AS h ON true`,
    );
    const row = rows[0]!;
    // pg_snapshot text: xmin:xmax:xip,xip,… (the transactions still running).
    const [xmin, xmax, xip] = row.snapshot.split(':');
    const min = BigInt(xmin!);
    const max = BigInt(xmax!);
    const running = new Set((xip ?? '').split(',').filter(Boolean).map((x) => BigInt(x)));
    return {
      head: row.transaction_id !== null && row.position !== null ? { commit: BigInt(row.transaction_id), prepare: BigInt(row.position) } : null,
      committedBefore: (commit) => commit < min || (commit < max && !running.has(commit)),
      horizon: max,
    };
  }

  subscribeToAll(options: SubscribeToAllOptions = {}): AllSubscription {
    const batchSize = options.batchSize ?? 500;
    const subscription = new PostgresAllSubscription(this, {
      fromPosition: options.fromPosition ?? START,
      batchSize,
      catchUpBatchSize: Math.max(batchSize, options.catchUpBatchSize ?? batchSize),
      withMetadata: options.withMetadata ?? true,
      pollIntervalMs: this.options.pollIntervalMs ?? 500,
      channel: this.channel,
      onClose: () => this.subscriptions.delete(subscription),
    });
    this.subscriptions.add(subscription);
    return subscription;
  }

  async streamRevision(streamId: string): Promise<bigint | null> {
    const { rows } = await this.options.pool.query<{ revision: string }>(
      'SELECT revision FROM streams WHERE stream_id = $1 AND revision >= 0',
      [streamId],
    );
    return rows[0] ? BigInt(rows[0].revision) : null;
  }

  async commandResult(commandId: string): Promise<{ result: AppendResult; commandHash: string | null } | null> {
    const { rows } = await this.options.pool.query<{ command_hash: string | null; result: StoredResult }>(
      `SELECT command_hash, appended_result(stream_id, first_revision, last_revision) AS result FROM commands WHERE command_id = $1`,
      [commandId],
    );
    const row = rows[0];
    return row ? { result: toAppendResult(row.result, true), commandHash: row.command_hash } : null;
  }

  async listStreams(filter: { worldId: string; category: string; after?: string; limit: number }): Promise<StreamHead[]> {
    const { rows } = await this.options.pool.query<{ stream_id: string; revision: string }>(
      `SELECT stream_id, revision FROM streams
        WHERE world_id = $1 AND category = $2 AND revision >= 0 AND stream_id > $3
        ORDER BY stream_id LIMIT $4`,
      [filter.worldId, filter.category, filter.after ?? '', filter.limit],
    );
    return rows.map((r) => ({ streamId: r.stream_id, revision: BigInt(r.revision) }));
  }

  async isPositionCommitted(prepare: bigint): Promise<boolean> {
    const { rows } = await this.options.pool.query<{ ok: boolean }>('SELECT EXISTS (SELECT 1 FROM events WHERE position >= $1) AS ok', [
      prepare.toString(),
    ]);
    return rows[0]?.ok ?? false;
  }

  /** Finishes every accepted append, then stops the subscriptions. The pool belongs to the caller. */
  async close(): Promise<void> {
    await this.committer.drain();
    await this.reader.drain();
    await Promise.all([...this.subscriptions].map((s) => s.unsubscribe()));
  }
}
