/**
 * The EventStore port, in EventStoreDB's vocabulary so the PostgreSQL adapter
 * and the EventStoreDB adapter are interchangeable behind it.
 */

/** `any`: no check; `no_stream`: the stream must not exist; `exists`: it must; a bigint: its last revision must be exactly that. */
export type ExpectedRevision = 'any' | 'no_stream' | 'exists' | bigint;

/**
 * A place in the global feed. Like EventStoreDB's `{ commit, prepare }`.
 * PostgreSQL adapter: `commit` is the writing transaction's id and `prepare`
 * the event's global position; the feed is ordered by (commit, prepare).
 */
export type Position = { commit: bigint; prepare: bigint };

export const START = 'start' as const;
export const END = 'end' as const;

export type EventData = {
  /** UUID; unique across the store. Appending the same ids to the same stream again is a no-op. */
  id: string;
  type: string;
  data: unknown;
  metadata?: Record<string, unknown>;
  schemaVersion?: number;
};

export type RecordedEvent = {
  streamId: string;
  revision: bigint;
  position: Position;
  id: string;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: Record<string, unknown>;
  created: Date;
};

export type AppendOptions = {
  expectedRevision?: ExpectedRevision;
  /** Makes the append idempotent: a second append with the same commandId returns the first result. */
  commandId?: string;
  /** A digest of the command; the same commandId with another hash is a client bug, refused. */
  commandHash?: string;
};

/** One stream's part of a multi-stream append. */
export type StreamAppend = { streamId: string; events: EventData[]; expectedRevision: ExpectedRevision };

export type AppendedEvent = { id: string; type: string; revision: bigint; position: Position };

export type AppendResult = {
  streamId: string;
  /** The stream's last revision after the append. */
  nextExpectedRevision: bigint;
  /** The position of the last event appended: a consistency token. */
  position: Position;
  events: AppendedEvent[];
  /** True when this append was a repeat of an earlier one and appended nothing. */
  duplicate: boolean;
  /**
   * EventStoreDB mode only: whether the PostgreSQL mirror held the events
   * within MIRROR_WAIT_MS. When false, `position` is EventStoreDB's, not a
   * position of the mirror (not a consistency token); the events are safe in EventStoreDB.
   */
  mirrored?: boolean;
};

export type ReadStreamOptions = {
  direction?: 'forwards' | 'backwards';
  /** Inclusive. Default: start (forwards) or end (backwards). */
  fromRevision?: bigint | typeof START | typeof END;
  maxCount?: number;
  /** Stop at the state as of a point: events after it are not returned. */
  until?: { revision?: bigint; position?: bigint; time?: Date };
};

export type ReadAllOptions = {
  /** Inclusive, as in EventStoreDB's readAll. */
  fromPosition?: Position | typeof START;
  maxCount?: number;
};

export type SubscribeToAllOptions = {
  /** Exclusive: the subscription delivers events after this position, as EventStoreDB's does. */
  fromPosition?: Position | typeof START | typeof END;
  /** Events per read while catching up. */
  batchSize?: number;
  /**
   * Events per read while the subscriber is behind: once a read comes back
   * full (`batchSize` or more were waiting), the next reads ask for up to
   * this many, until one comes back short (EventStoreDB: a batch takes up to
   * this many while more than `batchSize` are queued). Fewer, larger batches
   * for a consumer that pays per batch (a projection's transaction); a
   * consumer near the head still gets small batches. Default: `batchSize`.
   */
  catchUpBatchSize?: number;
  /**
   * False: the events may come without their metadata (an empty object), for
   * a consumer that never reads it (the read-model projections); PostgreSQL
   * then renders and Node parses about half as much JSON. EventStoreDB sends
   * it anyway. Default true.
   */
  withMetadata?: boolean;
};

export interface AllSubscription extends AsyncIterable<RecordedEvent> {
  /** The same events grouped as they were read, for consumers that work a batch at a time (projections). */
  batches(): AsyncIterable<RecordedEvent[]>;
  unsubscribe(): Promise<void>;
}

export type StreamHead = { streamId: string; revision: bigint };

export interface EventStore {
  appendToStream(streamId: string, events: EventData[], options?: AppendOptions): Promise<AppendResult>;
  /** Events of one stream; an empty array when the stream does not exist. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** The global feed, gap-safe: never returns an event while one before it may still commit. */
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  subscribeToAll(options?: SubscribeToAllOptions): AllSubscription;
  /** The stream's last revision, or null when it has no events. */
  streamRevision(streamId: string): Promise<bigint | null>;
  /** The result recorded for a command id (and the hash it was sent with), if that command was appended. */
  commandResult(commandId: string): Promise<{ result: AppendResult; commandHash: string | null } | null>;
  /** Streams of one world and category that have events, in stream id order, after a cursor. */
  listStreams(filter: { worldId: string; category: string; after?: string; limit: number }): Promise<StreamHead[]>;
  /** Whether the event at this global position (`prepare`) is committed and readable. */
  isPositionCommitted(prepare: bigint): Promise<boolean>;
  close(): Promise<void>;
}

export const positionToJSON = (p: Position) => ({ commit: p.commit.toString(), prepare: p.prepare.toString() });
export const comparePositions = (a: Position, b: Position): number =>
  a.commit === b.commit ? (a.prepare === b.prepare ? 0 : a.prepare < b.prepare ? -1 : 1) : a.commit < b.commit ? -1 : 1;
