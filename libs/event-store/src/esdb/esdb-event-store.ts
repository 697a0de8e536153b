import { randomUUID } from 'node:crypto';
import {
  ANY,
  BACKWARDS,
  END as ESDB_END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START as ESDB_START,
  STREAM_EXISTS,
  StreamDeletedError as EsdbStreamDeletedError,
  StreamNotFoundError,
  WrongExpectedVersionError as EsdbWrongExpectedVersionError,
  excludeSystemEvents,
  jsonEvent,
  type AllStreamResolvedEvent,
  type AllStreamSubscription,
  type AppendExpectedRevision,
  type JSONType,
  type ResolvedEvent,
  type StreamingRead,
} from '@eventstore/db-client';
import { EventStoreUnavailableError, StreamDeletedError, WrongExpectedVersionError } from '../errors';
import { deriveEventId } from '../event-ids';
import {
  END,
  START,
  type AllSubscription,
  type AppendOptions,
  type AppendResult,
  type EventData,
  type EventStore,
  type ExpectedRevision,
  type Position,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StreamHead,
  type SubscribeToAllOptions,
} from '../types';

export type EsdbEventStoreOptions = {
  /** `esdb://host:2113?tls=false`, `esdb+discover://…` for a cluster: whatever the official client takes. */
  connectionString: string;
  logger?: { warn(msg: string): void };
  /** Back-off of a subscription that lost its connection: first and longest wait. */
  reconnect?: { initialMs?: number; maxMs?: number };
};

/** Metadata keys the adapter adds to every event written, and takes off when reading. */
const SCHEMA_VERSION = 'schemaVersion';
const COMMAND_HASH = 'commandHash';

const toEsdbExpected = (expected: ExpectedRevision | undefined): AppendExpectedRevision => {
  if (expected === undefined || expected === 'any') return ANY;
  if (expected === 'no_stream') return NO_STREAM;
  if (expected === 'exists') return STREAM_EXISTS;
  return expected;
};

/** gRPC failures that mean "the server cannot be reached now": retry later (503), never a client error. */
const isUnavailable = (error: unknown): boolean =>
  ['UnavailableError', 'DeadlineExceededError', 'CancelledError', 'NotLeaderError', 'TimeoutError'].includes((error as { constructor?: { name?: string } })?.constructor?.name ?? '');

/** A recorded event as this adapter reads it: with the command's hash, which the mirror keeps for idempotency lookups. */
export type EsdbRecordedEvent = RecordedEvent & { commandHash?: string };

const toRecorded = (resolved: ResolvedEvent | AllStreamResolvedEvent): EsdbRecordedEvent | null => {
  const e = resolved.event;
  if (!e || !e.position) return null;
  const raw = (e.metadata ?? {}) as Record<string, unknown>;
  const { [SCHEMA_VERSION]: schemaVersion, [COMMAND_HASH]: commandHash, ...metadata } = raw instanceof Uint8Array ? {} : raw;
  return {
    streamId: e.streamId,
    revision: e.revision,
    position: { commit: e.position.commit, prepare: e.position.prepare },
    id: e.id,
    type: e.type,
    schemaVersion: typeof schemaVersion === 'number' ? schemaVersion : 1,
    data: e.isJson ? e.data : Buffer.from(e.data as Uint8Array).toString('base64'),
    metadata,
    created: e.created,
    ...(typeof commandHash === 'string' ? { commandHash } : {}),
  };
};

const isSystem = (type: string) => type.startsWith('$');
const APPEND_ATTEMPTS = 3;

/**
 * The EventStore port on EventStoreDB / KurrentDB, through the official
 * `@eventstore/db-client`. Positions are EventStoreDB's commit/prepare
 * positions. Event ids of a command's events are derived from its commandId
 * and their index, so a retried append carries the same ids and the server
 * itself drops the repeat. What EventStoreDB does not keep — the result of a
 * command by its id, the streams of a world — the PostgreSQL mirror does
 * (MirroredEventStore); this adapter alone answers `commandResult` with null
 * and reports a repeated append as a success, not as `duplicate`.
 */
export class EsdbEventStore implements EventStore {
  readonly client: EventStoreDBClient;

  constructor(private readonly options: EsdbEventStoreOptions) {
    this.client = EventStoreDBClient.connectionString(options.connectionString);
  }

  async appendToStream(streamId: string, events: EventData[], options: AppendOptions = {}): Promise<AppendResult> {
    const ids = events.map((e, i) => e.id ?? (options.commandId ? deriveEventId(options.commandId, i) : randomUUID()));
    const proposed = events.map((e, i) =>
      jsonEvent({
        id: ids[i]!,
        type: e.type,
        data: e.data as JSONType,
        metadata: {
          ...(e.metadata ?? {}),
          [SCHEMA_VERSION]: e.schemaVersion ?? 1,
          ...(options.commandId ? { commandId: options.commandId, ...(options.commandHash ? { [COMMAND_HASH]: options.commandHash } : {}) } : {}),
        },
      }),
    );
    let result;
    // The client does not retry; after a dropped connection its next call may fail once more before it reconnects.
    // The ids are fixed before the first attempt, so a retry of an append that did land is dropped by the server.
    for (let attempt = 1; ; attempt++) {
      try {
        result = await this.client.appendToStream(streamId, proposed, { expectedRevision: toEsdbExpected(options.expectedRevision) });
        break;
      } catch (error) {
        if (attempt < APPEND_ATTEMPTS && isUnavailable(error)) {
          await new Promise((r) => setTimeout(r, 20 * attempt));
          continue;
        }
        throw this.mapError(error, streamId, options.expectedRevision ?? 'any');
      }
    }
    const position: Position = result.position ? { commit: result.position.commit, prepare: result.position.prepare } : { commit: 0n, prepare: 0n };
    const first = result.nextExpectedRevision - BigInt(events.length) + 1n;
    // The answer carries one position for the whole append; each event's own is read back when there are several.
    const positions = events.length === 1 ? [position] : (await this.readStream(streamId, { fromRevision: first, maxCount: events.length })).map((e) => e.position);
    return {
      streamId,
      nextExpectedRevision: result.nextExpectedRevision,
      position: positions.at(-1) ?? position,
      events: events.map((e, i) => ({ id: ids[i]!, type: e.type, revision: first + BigInt(i), position: positions[i] ?? position })),
      duplicate: false,
    };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const backwards = options.direction === 'backwards';
    const from = options.fromRevision ?? (backwards ? END : START);
    const until = options.until ?? {};
    const out: RecordedEvent[] = [];
    // `until` is applied here, so with it the count is too (forwards, the first event past it ends the read).
    const serverCounts = options.maxCount !== undefined && until.revision === undefined && until.position === undefined && until.time === undefined;
    let cut = false;
    try {
      const read: StreamingRead<ResolvedEvent> = this.client.readStream(streamId, {
        direction: backwards ? BACKWARDS : FORWARDS,
        fromRevision: from === START ? ESDB_START : from === END ? ESDB_END : from,
        ...(serverCounts ? { maxCount: options.maxCount } : {}),
      });
      for await (const resolved of read) {
        const event = toRecorded(resolved);
        if (!event) continue;
        const past =
          (until.revision !== undefined && event.revision > until.revision) ||
          (until.position !== undefined && event.position.prepare > until.position) ||
          (until.time !== undefined && event.created > until.time);
        if (past) {
          if (backwards) continue;
          cut = true;
        } else if (options.maxCount === undefined || out.length < options.maxCount) {
          out.push(event);
          if (options.maxCount !== undefined && out.length >= options.maxCount && !serverCounts) cut = true;
        }
        if (cut) {
          // Leaving a read before its end would leave the gRPC call open (and the client's dispose waiting on
          // it): cancel it first. Reads the server counts itself end on their own and are read to their end.
          await read.cancel().catch(() => undefined);
          break;
        }
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw this.mapError(error, streamId, 'any');
    }
    return out;
  }

  async readAll(options: ReadAllOptions = {}): Promise<RecordedEvent[]> {
    const from = options.fromPosition ?? START;
    const out: RecordedEvent[] = [];
    try {
      const read = this.client.readAll({
        direction: FORWARDS,
        fromPosition: from === START ? ESDB_START : from,
        maxCount: options.maxCount ?? 1000,
      });
      for await (const resolved of read) {
        const event = toRecorded(resolved);
        if (event && !isSystem(event.type)) out.push(event);
      }
    } catch (error) {
      throw this.mapError(error, '$all', 'any');
    }
    return out;
  }

  subscribeToAll(options: SubscribeToAllOptions = {}): AllSubscription {
    const batchSize = options.batchSize ?? 1000;
    const catchUp = Math.max(batchSize, options.catchUpBatchSize ?? batchSize);
    return new EsdbAllSubscription(this.client, options.fromPosition ?? START, batchSize, catchUp, this.options);
  }

  async streamRevision(streamId: string): Promise<bigint | null> {
    const [last] = await this.readStream(streamId, { direction: 'backwards', maxCount: 1 });
    return last ? last.revision : null;
  }

  /** EventStoreDB keeps no command results: the mirror does (MirroredEventStore). */
  async commandResult(): Promise<null> {
    return null;
  }

  /** EventStoreDB has no index of streams by world: the mirror does (MirroredEventStore). */
  async listStreams(): Promise<StreamHead[]> {
    throw new Error('listStreams needs the PostgreSQL mirror (MirroredEventStore)');
  }

  /** Every position EventStoreDB hands out is committed. */
  async isPositionCommitted(): Promise<boolean> {
    return true;
  }

  /** The position of the last event of the log (system events included), or null for an empty log. */
  async headPosition(): Promise<Position | null> {
    let head: Position | null = null;
    for await (const resolved of this.client.readAll({ direction: BACKWARDS, fromPosition: ESDB_END, maxCount: 1 })) {
      const p = resolved.event?.position;
      if (p) head = { commit: p.commit, prepare: p.prepare };
    }
    return head;
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }

  private mapError(error: unknown, streamId: string, expected: ExpectedRevision): unknown {
    if (error instanceof EsdbWrongExpectedVersionError) {
      const actual = error.actualVersion;
      return new WrongExpectedVersionError(streamId, expected, typeof actual === 'bigint' ? actual : null);
    }
    if (error instanceof EsdbStreamDeletedError) return new StreamDeletedError(streamId);
    if (isUnavailable(error)) return new EventStoreUnavailableError(`EventStoreDB is unreachable: ${(error as Error).message}`);
    return error;
  }
}

/**
 * A catch-up subscription to `$all` without system events (filtered by the
 * server), starting after `from`. On a lost connection it subscribes again
 * from the last event it delivered, with back-off, so a consumer sees every
 * event once, in order, across reconnects. `batches()` hands out what has
 * arrived, up to `batchSize` at a time (up to `catchUpBatchSize` while more
 * than `batchSize` are waiting); the gRPC stream is paused while the
 * consumer is behind.
 */
class EsdbAllSubscription implements AllSubscription {
  private readonly queue: RecordedEvent[] = [];
  private wake: (() => void) | null = null;
  private closed = false;
  private last: Position | typeof START | typeof END;
  private current: AllStreamSubscription | null = null;
  private paused = false;
  private timer: NodeJS.Timeout | null = null;
  private backoff: number;

  /** Events queued before the gRPC stream is paused: a few batches, so a catch-up batch can fill. */
  private get queueLimit(): number {
    return Math.max(this.batchSize * 4, this.catchUpBatchSize);
  }

  constructor(
    private readonly client: EventStoreDBClient,
    from: Position | typeof START | typeof END,
    private readonly batchSize: number,
    private readonly catchUpBatchSize: number,
    private readonly options: EsdbEventStoreOptions,
  ) {
    this.last = from;
    this.backoff = options.reconnect?.initialMs ?? 100;
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const from = this.last;
    const subscription = this.client.subscribeToAll({
      fromPosition: from === START ? ESDB_START : from === END ? ESDB_END : from,
      filter: excludeSystemEvents(),
    });
    this.current = subscription;
    // A new stream starts unpaused; a consumer still behind pauses it again at once.
    this.paused = false;
    if (this.queue.length >= this.queueLimit) {
      this.paused = true;
      subscription.pause();
    }
    subscription.on('data', (resolved: AllStreamResolvedEvent) => {
      // A stream given up on (reconnecting) must not deliver anything more.
      if (this.current !== subscription) return;
      const event = toRecorded(resolved);
      if (!event || isSystem(event.type)) return;
      this.backoff = this.options.reconnect?.initialMs ?? 100;
      this.last = event.position;
      this.queue.push(event);
      if (this.queue.length >= this.queueLimit && !this.paused) {
        this.paused = true;
        subscription.pause();
      }
      this.notify();
    });
    const lost = (error?: Error) => {
      if (this.closed || this.current !== subscription) return;
      this.current = null;
      subscription.unsubscribe().catch(() => undefined);
      this.options.logger?.warn(`EventStoreDB subscription lost (${error?.message ?? 'ended'}); subscribing again in ${this.backoff} ms`);
      this.timer = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, this.options.reconnect?.maxMs ?? 5000);
    };
    subscription.on('error', lost);
    subscription.on('end', () => lost());
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async *batches(): AsyncGenerator<RecordedEvent[]> {
    while (!this.closed) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      // Up to catchUpBatchSize: with batchSize or fewer waiting, that is all of them (and no more than batchSize).
      const batch = this.queue.splice(0, this.catchUpBatchSize);
      if (this.paused && this.queue.length < this.batchSize) {
        this.paused = false;
        this.current?.resume();
      }
      yield batch;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<RecordedEvent> {
    for await (const batch of this.batches()) yield* batch;
  }

  async unsubscribe(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.notify();
    await this.current?.unsubscribe().catch(() => undefined);
    this.current = null;
  }
}
