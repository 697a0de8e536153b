import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { parseStreamId } from '@lorestore/domain';
import type { EventStore } from '@lorestore/event-store';
import type { PersonalDataCodec } from '@lorestore/privacy';
import { worldStateAt, type OperationRecord, type RebuildJobs, type RollbackScope, type Rollbacks, type StateAt, type StreamStateAt } from '@lorestore/replay';
import { RequireRole, type AuthenticatedRequest } from '../auth/auth.guard';
import { id, slug, streamIdSchema } from '../commands/command.schemas';
import { correlationIdFrom } from '../commands/parse-command';
import { ApiProblems } from '../http/openapi';
import { Problem } from '../http/problem';
import { decodeCursor, encodeCursor } from '../http/cursor';
import { isoTime, parseOrThrow } from '../http/validate';
import { EVENT_STORE } from '../persistence/tokens';
import { atMostOnePointInTime, ONE_POINT_MESSAGE, pointInTimeShape, toUntil, type PointInTime } from '../queries/point-in-time';
import { REBUILD_JOBS, ROLLBACKS, STATE_AT } from '../replay/replay.providers';
import { PERSONAL_DATA } from '../privacy/privacy.providers';

/** A second of grace for clocks that differ a little. */
const pastTime = isoTime.refine((t) => Date.parse(t) <= Date.now() + 1000, 'is in the future');
const reason = z.string().trim().min(1, 'say why (it goes into the audit trail)').max(500);
const revision = z.number().int().min(-1).max(Number.MAX_SAFE_INTEGER);
const actorId = z.string().regex(/^[\w.:@-]{1,128}$/, '1–128 letters, digits, _ . : @ -');

const streamRollbackBody = z
  .object({
    toRevision: revision,
    reason,
    dryRun: z.boolean().optional(),
    /** Idempotency key: the same id again answers the first result. */
    operationId: id.optional(),
    /** The stream's head as the admin saw it; a write since then makes this a 409. */
    expectedRevision: revision.optional(),
  })
  .strict();

const worldRollbackBody = z
  .object({
    toPosition: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    toTime: pastTime.optional(),
    actorId: actorId.optional(),
    since: pastTime.optional(),
    reason,
    dryRun: z.boolean().optional(),
    operationId: id.optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    const targets = [b.toPosition !== undefined, b.toTime !== undefined, b.actorId !== undefined].filter(Boolean).length;
    if (targets !== 1) ctx.addIssue({ code: 'custom', path: ['toPosition'], message: 'give exactly one of toPosition, toTime, or actorId with since' });
    if (b.actorId !== undefined && b.since === undefined) ctx.addIssue({ code: 'custom', path: ['since'], message: 'required with actorId' });
    if (b.actorId === undefined && b.since !== undefined) ctx.addIssue({ code: 'custom', path: ['since'], message: 'only with actorId' });
  });

const restoreBody = z.object({ reason: reason.optional(), force: z.boolean().optional() }).strict();
const rebuildBody = z.object({ reason: reason.optional() }).strict();
const listQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.string().max(200).optional() })
  .strict();
const streamStateQuery = z.object(pointInTimeShape).omit({ minPosition: true }).strict().refine((q) => atMostOnePointInTime(q), ONE_POINT_MESSAGE);
const worldStateQuery = z
  .object({
    atPosition: pointInTimeShape.atPosition,
    asOf: pointInTimeShape.asOf,
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(300).optional(),
  })
  .strict()
  .refine((q) => (q.atPosition === undefined) !== (q.asOf === undefined), { message: 'give exactly one of atPosition, asOf', path: ['atPosition'] });

const operationView = (op: OperationRecord, duplicate: boolean) => ({
  operationId: op.operationId,
  kind: op.kind,
  position: op.position,
  streams: op.streams.map((s) => ({ streamId: s.streamId, fromRevision: s.fromRevision, toRevision: s.toRevision, events: s.events, revision: s.revision })),
  scope: op.scope,
  reason: op.reason,
  actor: op.actor,
  createdAt: op.createdAt,
  restores: op.restores,
  restoredBy: op.restoredBy,
  duplicate,
});

const stateView = (s: StreamStateAt) => ({
  streamId: s.streamId,
  aggregate: s.aggregate,
  revision: Number(s.revision),
  position: s.position === null ? null : Number(s.position),
  time: s.time?.toISOString() ?? null,
  state: s.state,
  snapshotRevision: s.snapshotRevision === null ? null : Number(s.snapshotRevision),
  eventsFolded: s.eventsFolded,
});

const ISO_CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An audit page's cursor: `<created_at as toISOString()>_<operationId>`; the time must be a real one (2026-02-30 is not). */
const isAuditCursor = (c: string): boolean => {
  const [createdAt, operationId, extra] = c.split('_');
  if (!createdAt || !operationId || extra !== undefined || !ISO_CURSOR_TIME.test(createdAt) || !UUID.test(operationId)) return false;
  const time = new Date(createdAt);
  return Number.isFinite(time.getTime()) && time.toISOString() === createdAt;
};

@ApiTags('admin')
@ApiBearerAuth()
@ApiProblems(400, 403)
@RequireRole('admin')
@Controller('v1/admin')
export class AdminReplayController {
  constructor(
    @Inject(ROLLBACKS) private readonly rollbacks: Rollbacks,
    @Inject(STATE_AT) private readonly stateAt: StateAt,
    @Inject(REBUILD_JOBS) private readonly jobs: RebuildJobs,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(PERSONAL_DATA) private readonly personal: PersonalDataCodec,
  ) {}

  @Post('worlds/:worldId/streams/:streamId/rollback')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Roll one stream back to a revision (appends one rollback event restoring that state)',
    description:
      'Body `{ toRevision, reason, dryRun?, operationId?, expectedRevision? }`; `toRevision: -1` is the state before the first event. ' +
      'Answers `{ operationId, position, streams: [{ streamId, fromRevision, toRevision, events, revision }], … }`; a dry run answers the plan only. ' +
      '409 when the stream moved past `expectedRevision` (or moves during the rollback); 422 for a target beyond the head.',
  })
  @ApiProblems(404, 409, 422)
  async rollbackStream(@Param('worldId') w: string, @Param('streamId') s: string, @Body() body: unknown, @Req() request: AuthenticatedRequest) {
    const worldId = parseOrThrow(slug, w, 'worldId');
    const streamId = parseOrThrow(streamIdSchema, s, 'streamId');
    const b = parseOrThrow(streamRollbackBody, body ?? {});
    const scope: RollbackScope = { type: 'stream', streamId, toRevision: b.toRevision, ...(b.expectedRevision !== undefined ? { expectedRevision: b.expectedRevision } : {}) };
    return this.rollback(worldId, scope, b, request);
  }

  @Post('worlds/:worldId/rollback')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Roll a whole world back to a position or time, or undo what one actor did since a time',
    description:
      'Body `{ toPosition | toTime | (actorId, since), reason, dryRun?, operationId? }`. All streams are rolled back in one transaction, or none. ' +
      'A dry run lists the streams with event counts and, for an actor, `collateral`: the other actors’ later events on those streams that would be undone too. ' +
      'The same operationId again answers the first result (`duplicate: true`) and appends nothing.',
  })
  @ApiProblems(404, 409, 422)
  async rollbackWorld(@Param('worldId') w: string, @Body() body: unknown, @Req() request: AuthenticatedRequest) {
    const worldId = parseOrThrow(slug, w, 'worldId');
    const b = parseOrThrow(worldRollbackBody, body ?? {});
    const scope: RollbackScope =
      b.actorId !== undefined
        ? { type: 'actor', actorId: b.actorId, since: b.since! }
        : b.toPosition !== undefined
          ? { type: 'world', toPosition: b.toPosition }
          : { type: 'world', toTime: b.toTime! };
    return this.rollback(worldId, scope, b, request);
  }

  private async rollback(worldId: string, scope: RollbackScope, b: { reason: string; dryRun?: boolean; operationId?: string }, request: AuthenticatedRequest) {
    if (b.dryRun) {
      const plan = await this.rollbacks.plan(worldId, scope);
      return {
        dryRun: true,
        // The contract's shape: a rollback's answer without `position` (the id is the one the real run would use, if given).
        operationId: b.operationId ?? null,
        scope,
        streams: plan.streams,
        totalEvents: plan.streams.reduce((n, s) => n + s.events, 0),
        ...(plan.collateral ? { collateral: plan.collateral } : {}),
      };
    }
    const outcome = await this.rollbacks.rollback({
      worldId,
      scope,
      reason: b.reason,
      actor: `${request.principal!.role}:${request.principal!.keyId}`,
      ...(b.operationId ? { operationId: b.operationId } : {}),
      correlationId: correlationIdFrom(request.headers['x-correlation-id']),
    });
    return operationView(outcome.operation, outcome.duplicate);
  }

  @Post('rollbacks/:operationId/restore')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Undo a rollback: its streams get back the state they had just before it',
    description:
      'Body `{ reason?, force? }`. 409 when a stream changed after the rollback (restoring would undo that too) unless `force: true`. Restoring again answers the first restore.',
  })
  @ApiBody({ required: false, schema: { type: 'object', properties: { reason: { type: 'string' }, force: { type: 'boolean' } } } })
  @ApiProblems(404, 409, 422)
  async restore(@Param('operationId') o: string, @Body() body: unknown, @Req() request: AuthenticatedRequest) {
    const operationId = parseOrThrow(id, o, 'operationId');
    const b = parseOrThrow(restoreBody, body ?? {});
    const outcome = await this.rollbacks.restore({
      operationId,
      actor: `${request.principal!.role}:${request.principal!.keyId}`,
      ...(b.reason ? { reason: b.reason } : {}),
      ...(b.force ? { force: b.force } : {}),
      correlationId: correlationIdFrom(request.headers['x-correlation-id']),
    });
    return operationView(outcome.operation, outcome.duplicate);
  }

  @Get('rollbacks/:operationId')
  @ApiOperation({ summary: 'One rollback or restore, as the audit trail records it' })
  @ApiProblems(404)
  async operation(@Param('operationId') o: string) {
    const operationId = parseOrThrow(id, o, 'operationId');
    const op = await this.rollbacks.load(operationId);
    if (!op) throw new Problem(404, 'operation-not-found', 'Operation not found', `no rollback or restore with operation id ${operationId}`);
    return operationView(op, false);
  }

  @Get('worlds/:worldId/rollbacks')
  @ApiOperation({ summary: 'Audit trail of a world’s rollbacks and restores, newest first: who, when, why, scope, operation id' })
  async audit(@Param('worldId') w: string, @Query() query: unknown) {
    const worldId = parseOrThrow(slug, w, 'worldId');
    const q = parseOrThrow(listQuery, query);
    // Exactly what `list` issues (an ISO time and a UUID): anything else would reach PostgreSQL's casts.
    const raw = decodeCursor(q.cursor, isAuditCursor);
    const before = raw === undefined ? undefined : { createdAt: raw.split('_')[0]!, operationId: raw.split('_')[1]! };
    const page = await this.rollbacks.list(worldId, q.limit, before);
    return { items: page.items.map((op) => operationView(op, false)), nextCursor: encodeCursor(page.nextCursor) };
  }

  @Get('worlds/:worldId/streams/:streamId/state')
  @ApiOperation({
    summary: 'A stream’s state at a revision, position or time (folded from the nearest snapshot)',
    description: '`?atRevision=` | `?atPosition=` | `?asOf=`; none: the head. Answers the state and how it was folded (`snapshotRevision`, `eventsFolded`).',
  })
  @ApiProblems(404)
  async streamState(@Param('worldId') w: string, @Param('streamId') s: string, @Query() query: unknown) {
    const worldId = parseOrThrow(slug, w, 'worldId');
    const streamId = parseOrThrow(streamIdSchema, s, 'streamId');
    const q = parseOrThrow(streamStateQuery, query) as PointInTime;
    const head = await this.store.streamRevision(streamId);
    if (head === null || parseStreamId(streamId)?.worldId !== worldId) throw new Problem(404, 'unknown-stream', 'Unknown stream', `stream ${streamId} has no events in world ${worldId}`);
    if (q.atRevision !== undefined && BigInt(q.atRevision) > head) {
      throw new Problem(422, 'target-beyond-head', 'Bad target', `stream ${streamId} is at revision ${head}; it has no revision ${q.atRevision}`, { currentRevision: Number(head) });
    }
    // Personal fields opened for the admin (ERASED for an erased player), as the queries show them.
    const state = await this.stateAt.stream(streamId, toUntil(q) ?? {});
    return stateView({ ...state, state: await this.personal.open(state.state) });
  }

  @Get('worlds/:worldId/state-at')
  @ApiOperation({
    summary: 'A whole world at a global position or time: every stream of the world folded to that point, a page at a time',
    description: '`?atPosition=` or `?asOf=` (one of them), `limit` (≤ 1000), `cursor`. Streams with nothing at or before the point are left out.',
  })
  async worldState(@Param('worldId') w: string, @Query() query: unknown) {
    const worldId = parseOrThrow(slug, w, 'worldId');
    const q = parseOrThrow(worldStateQuery, query);
    const target = q.atPosition !== undefined ? { position: BigInt(q.atPosition) } : { time: new Date(q.asOf!) };
    const cursor = decodeCursor(q.cursor, (d) => streamIdSchema.safeParse(d).success);
    const page = await worldStateAt({ store: this.store, stateAt: this.stateAt }, worldId, target, { limit: q.limit, ...(cursor ? { cursor } : {}) });
    return {
      worldId,
      ...(q.atPosition !== undefined ? { atPosition: q.atPosition } : { asOf: q.asOf }),
      streams: (await this.personal.open(page.streams.map((p) => p.state))).map((state, i) => stateView({ ...page.streams[i]!, state })),
      nextCursor: encodeCursor(page.nextCursor),
    };
  }

  @Post('projections/:name/rebuild')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Start a blue-green rebuild of a projection → { jobId }',
    description:
      'Builds the projection into new tables and a new hot-state key generation from position 0 while the live one serves, switches readers in one transaction when caught up, then drops the old. ' +
      'Runs in the process that leads the projections. 409 while another rebuild of the projection is unfinished; 404 for an unknown projection.',
  })
  @ApiBody({ required: false, schema: { type: 'object', properties: { reason: { type: 'string' } } } })
  @ApiProblems(404, 409)
  async rebuild(@Param('name') name: string, @Body() body: unknown, @Req() request: AuthenticatedRequest) {
    const b = parseOrThrow(rebuildBody, body ?? {});
    const job = await this.jobs.request(name, `${request.principal!.role}:${request.principal!.keyId}`, b.reason ?? null);
    return job;
  }

  @Get('jobs/:jobId')
  @ApiOperation({ summary: 'A rebuild job: `{ jobId, projection, state, processed, total, eventsPerSecond, etaSeconds, startedAt, finishedAt, error? }`' })
  @ApiProblems(404)
  async job(@Param('jobId') j: string) {
    const jobId = parseOrThrow(id, j, 'jobId');
    const job = await this.jobs.get(jobId);
    if (!job) throw new Problem(404, 'job-not-found', 'Job not found', `no job ${jobId}`);
    return job;
  }
}
