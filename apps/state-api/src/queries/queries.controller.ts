import { Controller, Get, Param, Query, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { QueryBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ApiPointInTime, ApiProblems } from '../http/openapi';
import { z } from 'zod';
import { id, slug, streamIdSchema } from '../commands/command.schemas';
import { decodeCursor, encodeCursor } from '../http/cursor';
import { isoTime, parseOrThrow } from '../http/validate';
import { GetEntity, ListEntities } from './entity.queries';
import { GetPlayer, GetPlayerHistory } from './player.queries';
import { ONE_POINT_MESSAGE, atMostOnePointInTime, isPointInTime, pointInTimeShape, type PointInTime } from './point-in-time';
import { ReadModels } from './read-models';
import { StateReader } from './state-reader';
import { GetStreamEvents } from './stream.queries';
import { GetNarrative, GetWorldState } from './world.queries';

const limit = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);
const withPointInTime = <T extends z.ZodRawShape>(shape: T) =>
  z.object({ ...pointInTimeShape, ...shape }).strict().refine((q) => atMostOnePointInTime(q as PointInTime), ONE_POINT_MESSAGE);

const stateQuery = withPointInTime({});
const entityListQuery = withPointInTime({
  kind: z.string().min(1).max(64).optional(),
  locationId: id.optional(),
  updatedSince: isoTime.optional(),
  limit: limit(500, 50),
  cursor: z.string().max(200).optional(),
});
const historyQuery = withPointInTime({
  from: isoTime.optional(),
  to: isoTime.optional(),
  limit: limit(500, 50),
  cursor: z.coerce.number().int().min(0).optional(),
});
const eventsQuery = withPointInTime({ fromRevision: z.coerce.number().int().min(0).default(0), limit: limit(1000, 100) });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An entity page's cursor: the last entity id (read model) or stream id (point in time) of the previous page. */
const entityCursor = (c: string | undefined) => decodeCursor(c, (d) => UUID.test(d) || streamIdSchema.safeParse(d).success);

@ApiTags('queries')
@ApiBearerAuth()
@ApiPointInTime()
@ApiProblems(400, 404, 504)
@Controller('v1/worlds/:worldId')
export class QueriesController {
  constructor(
    private readonly queryBus: QueryBus,
    private readonly reader: StateReader,
    private readonly readModels: ReadModels,
  ) {}

  /**
   * Validates the world and query, and waits for minPosition (or the
   * X-Consistency-Token header): until `projection` has applied it, or, for
   * reads of the log itself (point-in-time, raw events), until it is committed.
   */
  private async prepare<S extends z.ZodType>(worldId: string, schema: S, query: unknown, request: FastifyRequest, projection: string | null) {
    const world = parseOrThrow(slug, worldId, 'worldId');
    const input: Record<string, unknown> = { ...(query as object) };
    const token = request.headers['x-consistency-token'];
    if (input.minPosition === undefined && token !== undefined) input.minPosition = token;
    const q = parseOrThrow(schema, input) as z.output<S> & PointInTime & { minPosition?: number };
    if (projection === null || isPointInTime(q)) await this.reader.waitFor(q.minPosition);
    else q.fence = await this.readModels.waitFor(projection, q.minPosition);
    return { world, q };
  }

  @Get('entities/:entityId')
  @ApiOperation({ summary: 'One entity; 404 if never spawned, 410 if despawned' })
  async entity(@Param('worldId') w: string, @Param('entityId') e: string, @Query() query: unknown, @Req() r: FastifyRequest) {
    const { world, q } = await this.prepare(w, stateQuery, query, r, 'entities');
    return this.queryBus.execute(new GetEntity(world, parseOrThrow(id, e, 'entityId'), q));
  }

  @Get('entities')
  @ApiOperation({ summary: 'A page of the world’s active entities' })
  @ApiQuery({ name: 'kind', required: false })
  @ApiQuery({ name: 'locationId', required: false })
  @ApiQuery({ name: 'updatedSince', required: false, description: 'ISO-8601 time' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–500, default 50' })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  async entities(@Param('worldId') w: string, @Query() query: unknown, @Req() r: FastifyRequest) {
    const { world, q } = await this.prepare(w, entityListQuery, query, r, 'entities');
    const page = await this.queryBus.execute(
      new ListEntities(world, { kind: q.kind, locationId: q.locationId, updatedSince: q.updatedSince }, q.limit, entityCursor(q.cursor), q),
    );
    return { items: page.items, nextCursor: encodeCursor(page.nextCursor) };
  }

  @Get('state')
  @ApiOperation({ summary: 'World state: time, weather, factions' })
  async state(@Param('worldId') w: string, @Query() query: unknown, @Req() r: FastifyRequest) {
    const { world, q } = await this.prepare(w, stateQuery, query, r, 'world_state');
    return this.queryBus.execute(new GetWorldState(world, q));
  }

  @Get('narrative')
  @ApiOperation({ summary: 'Plots with their history, and flags' })
  async narrative(@Param('worldId') w: string, @Query() query: unknown, @Req() r: FastifyRequest) {
    const { world, q } = await this.prepare(w, stateQuery, query, r, 'narrative_state');
    return this.queryBus.execute(new GetNarrative(world, q));
  }

  @Get('players/:playerId')
  @ApiOperation({ summary: 'A player’s relationships, counters and profile' })
  async player(@Param('worldId') w: string, @Param('playerId') p: string, @Query() query: unknown, @Req() r: FastifyRequest) {
    const { world, q } = await this.prepare(w, stateQuery, query, r, 'player_state');
    return this.queryBus.execute(new GetPlayer(world, parseOrThrow(id, p, 'playerId'), q));
  }

  @Get('players/:playerId/history')
  @ApiOperation({ summary: 'A player’s actions, newest first' })
  @ApiQuery({ name: 'from', required: false, description: 'ISO-8601 time, inclusive' })
  @ApiQuery({ name: 'to', required: false, description: 'ISO-8601 time, exclusive' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–500, default 50' })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  async history(@Param('worldId') w: string, @Param('playerId') p: string, @Query() query: unknown, @Req() r: FastifyRequest) {
    const { world, q } = await this.prepare(w, historyQuery, query, r, 'player_history');
    return this.queryBus.execute(new GetPlayerHistory(world, parseOrThrow(id, p, 'playerId'), { from: q.from, to: q.to }, q.limit, q.cursor, q));
  }

  @Get('streams/:streamId/events')
  @ApiOperation({ summary: 'Raw events of one of the world’s streams' })
  @ApiQuery({ name: 'fromRevision', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–1000, default 100' })
  async events(@Param('worldId') w: string, @Param('streamId') s: string, @Query() query: unknown, @Req() r: FastifyRequest) {
    const { world, q } = await this.prepare(w, eventsQuery, query, r, null);
    return this.queryBus.execute(new GetStreamEvents(world, parseOrThrow(streamIdSchema, s, 'streamId'), q.fromRevision, q.limit, q));
  }
}
