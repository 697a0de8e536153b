import type { ExpectedRevision } from './types';

export class WrongExpectedVersionError extends Error {
  override readonly name = 'WrongExpectedVersionError';
  constructor(
    readonly streamId: string,
    readonly expectedRevision: ExpectedRevision,
    /** null: the stream has no events. */
    readonly actualRevision: bigint | null,
  ) {
    super(
      `stream ${streamId}: expected revision ${String(expectedRevision)}, actual ${actualRevision === null ? 'no_stream' : actualRevision.toString()}`,
    );
  }
}

/** The same commandId was sent with a different command: a client bug, never a silent duplicate. */
export class CommandIdReusedError extends Error {
  override readonly name = 'CommandIdReusedError';
  constructor(readonly commandId: string) {
    super(`commandId ${commandId} was already used for a different command`);
  }
}

/** Some of the event ids exist already, but not as this exact append. */
export class EventIdConflictError extends Error {
  override readonly name = 'EventIdConflictError';
  constructor(readonly streamId: string) {
    super(`stream ${streamId}: some event ids were already appended elsewhere`);
  }
}

/** The store cannot take writes now (shutting down, server unreachable). Retry later. */
export class EventStoreUnavailableError extends Error {
  override readonly name = 'EventStoreUnavailableError';
}

/** The stream was deleted for good (an EventStoreDB tombstone): nothing can be appended to it again. */
export class StreamDeletedError extends Error {
  override readonly name = 'StreamDeletedError';
  constructor(readonly streamId: string) {
    super(`stream ${streamId} was deleted for good (tombstoned)`);
  }
}

/**
 * EventStoreDB mode: appends to several streams (a world rollback) cannot be
 * one transaction; the first `applied` streams were appended when `failedStream`
 * failed (`cause`). What was applied is recorded (the caller's `beforeCommit`
 * ran for it) so it can be audited and undone.
 */
export class PartialAppendError extends Error {
  override readonly name = 'PartialAppendError';
  /** Set by the operation that owned the appends (a rollback's id). */
  operationId: string | null = null;
  constructor(
    readonly applied: string[],
    readonly failedStream: string,
    override readonly cause: unknown,
  ) {
    super(`${applied.length} stream(s) were appended before ${failedStream} failed (${(cause as Error)?.message ?? String(cause)}); EventStoreDB has no transaction across streams`);
  }
}
