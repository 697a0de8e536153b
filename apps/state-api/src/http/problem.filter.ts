import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DomainRefusal } from '@lorestore/domain';
import { CommandIdReusedError, EventStoreUnavailableError, PartialAppendError, StreamDeletedError, WrongExpectedVersionError } from '@lorestore/event-store';
import {
  NotRestorableError,
  OperationIdReusedError,
  OperationNotFoundError,
  RebuildInProgressError,
  RestoreConflictError,
  RollbackTargetError,
  UnknownProjectionError,
  UnknownStreamError,
} from '@lorestore/replay';
import { PoolExhaustedError, isConnectionError } from '@lorestore/infra';
import { Problem } from './problem';

const rollbackTargetStatus: Record<RollbackTargetError['code'], number> = {
  'unknown-stream': 404,
  'stream-not-in-world': 404,
  'target-beyond-head': 422,
  'nothing-to-roll-back': 422,
};

const refusalStatus: Record<DomainRefusal['code'], number> = {
  not_found: 404,
  gone: 410,
  already_exists: 422,
  not_an_npc: 422,
  invalid_transition: 422,
  out_of_range: 422,
  erased: 410,
};

/** Errors raised before a handler runs (routing, body parsing, size limits), by status. */
const transportProblem = (status: number, message: string): Problem => {
  switch (status) {
    case 400:
      return new Problem(400, 'validation', 'Invalid request', message, { errors: [{ path: '', message }] });
    case 404:
      return new Problem(404, 'not-found', 'Not found', 'no such route');
    case 414:
      return new Problem(414, 'uri-too-long', 'URI too long', message);
    case 413:
      return new Problem(413, 'payload-too-large', 'Payload too large', message);
    case 429:
      return new Problem(429, 'rate-limited', 'Too many requests', message, {}, { 'retry-after': '1' });
    case 415:
      return new Problem(415, 'unsupported-media-type', 'Unsupported media type', 'send the body as application/json');
    default:
      return new Problem(status, 'http', message, message);
  }
};

export const toProblem = (error: unknown): Problem | null => {
  if (error instanceof Problem) return error;
  if (error instanceof DomainRefusal) {
    return new Problem(refusalStatus[error.code], `refused-${error.code.replace(/_/g, '-')}`, 'Command refused', error.message, {
      code: error.code,
    });
  }
  if (error instanceof WrongExpectedVersionError) {
    return new Problem(409, 'wrong-expected-revision', 'Revision conflict', error.message, {
      streamId: error.streamId,
      expectedRevision: typeof error.expectedRevision === 'bigint' ? Number(error.expectedRevision) : error.expectedRevision,
      currentRevision: error.actualRevision === null ? -1 : Number(error.actualRevision),
    });
  }
  if (error instanceof CommandIdReusedError) {
    return new Problem(422, 'command-id-reused', 'commandId reused', error.message, { commandId: error.commandId });
  }
  if (error instanceof RollbackTargetError) {
    return new Problem(rollbackTargetStatus[error.code], error.code, 'Bad rollback target', error.message, error.details);
  }
  if (error instanceof UnknownStreamError) return new Problem(404, 'unknown-stream', 'Unknown stream', error.message);
  if (error instanceof OperationNotFoundError) return new Problem(404, 'operation-not-found', 'Operation not found', error.message);
  if (error instanceof OperationIdReusedError) return new Problem(422, 'operation-id-reused', 'operationId reused', error.message);
  if (error instanceof NotRestorableError) return new Problem(422, 'not-restorable', 'Not restorable', error.message);
  if (error instanceof RestoreConflictError) return new Problem(409, 'restore-conflict', 'Streams changed since the rollback', error.message, { streams: error.streams });
  if (error instanceof UnknownProjectionError) return new Problem(404, 'unknown-projection', 'Unknown projection', error.message);
  if (error instanceof RebuildInProgressError) {
    return new Problem(409, 'rebuild-in-progress', 'Rebuild in progress', error.message, {
      projection: error.projection,
      jobId: error.jobId,
      ...(error.blockedBy !== error.projection ? { blockedBy: error.blockedBy } : {}),
    });
  }
  if (error instanceof PartialAppendError) {
    return new Problem(409, 'partially-applied', 'Applied to part of the streams', error.message, {
      operationId: error.operationId,
      appliedStreams: error.applied,
      failedStream: error.failedStream,
    });
  }
  if (error instanceof StreamDeletedError) return new Problem(409, 'stream-deleted', 'Stream deleted', error.message, { streamId: error.streamId });
  if (error instanceof EventStoreUnavailableError) {
    return new Problem(503, 'unavailable', 'Service unavailable', 'the event store is unreachable; retry shortly', {}, { 'retry-after': '1' });
  }
  if (error instanceof PoolExhaustedError) {
    return new Problem(503, 'pool-exhausted', 'Service busy', `${error.message}; retry shortly`, { pool: error.pool, reason: error.reason }, { 'retry-after': '1' });
  }
  if (isConnectionError(error)) {
    return new Problem(503, 'unavailable', 'Service unavailable', 'the database is unreachable; retry shortly', {}, { 'retry-after': '1' });
  }
  if (error instanceof HttpException) {
    // Readiness (Terminus) answers 503 with every check's result: keep them, and name the ones down.
    const body = error.getResponse() as { status?: string; error?: Record<string, unknown>; details?: Record<string, unknown> };
    if (error.getStatus() === 503 && body && typeof body === 'object' && body.status === 'error' && body.details) {
      const down = Object.keys(body.error ?? {});
      return new Problem(503, 'not-ready', 'Not ready', `not ready: ${down.join(', ') || 'a dependency'} down`, { error: body.error ?? {}, details: body.details }, { 'retry-after': '1' });
    }
    return transportProblem(error.getStatus(), error.message);
  }
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return transportProblem(status, (error as Error).message);
  return null;
};

@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  catch(error: unknown, host: ArgumentsHost): void {
    replyWithProblem(host.switchToHttp().getResponse<FastifyReply>(), error, this.logger);
  }
}

/** What the filter answers for an error: its problem, or a 500 with the error logged. */
export const replyWithProblem = (reply: FastifyReply, error: unknown, logger: Pick<Logger, 'error'>): void => {
  const problem = toProblem(error);
  if (!problem) logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  sendProblem(reply, problem ?? new Problem(500, 'internal', 'Internal error', 'an unexpected error occurred; it has been logged'));
};

export const sendProblem = (reply: FastifyReply, problem: Problem): void => {
  void reply
    .status(problem.status)
    .headers(problem.headers)
    .header('content-type', 'application/problem+json; charset=utf-8')
    .send(JSON.stringify(problem.toBody()));
};
