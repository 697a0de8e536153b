import { Body, Controller, Delete, HttpCode, Inject, Param, Post, Query, Req } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import type { EntityState } from '@lorestore/domain';
import { MEMORY_PROJECTION, MemorySearch, type FoundMemory, type MemoryStore, type VectorIndex } from '@lorestore/semantic-memory';
import type { AuthenticatedRequest } from '../auth/auth.guard';
import { id, memorySearchSchema, slug } from '../commands/command.schemas';
import type { CommandResponse } from '../commands/execute-command';
import { checkEmbedding, correlationIdFrom, parseForget } from '../commands/parse-command';
import { APP_CONFIG, type AppConfig } from '../config';
import { ApiProblems, memorySearchJsonSchema } from '../http/openapi';
import { Problem, validationProblem } from '../http/problem';
import { parseOrThrow } from '../http/validate';
import { Metrics } from '../metrics/metrics';
import { MEMORY_STORE, VECTOR_INDEX } from '../projections/projections.providers';
import { ReadModels } from '../queries/read-models';

const forgetQuery = z.object({ commandId: id.optional(), minPosition: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional() }).strict();

/**
 * NPC memory search (Generative Agents retrieval) and forgetting. Recording
 * a memory is a command (CommandsController). Every route answers only about
 * the NPC of its path in the world of its path.
 */
@ApiTags('memory')
@ApiBearerAuth()
@Controller('v1/worlds/:worldId/npcs/:npcId/memories')
export class MemoryController {
  private readonly search: MemorySearch;

  constructor(
    private readonly commandBus: CommandBus,
    private readonly readModels: ReadModels,
    @Inject(MEMORY_STORE) private readonly memories: MemoryStore,
    @Inject(VECTOR_INDEX) private readonly index: VectorIndex,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: Metrics,
  ) {
    this.search = new MemorySearch(index, memories, { dimension: config.VECTOR_DIMENSION });
  }

  @Post('search')
  @HttpCode(200)
  @ApiOperation({
    summary: 'The NPC’s most fitting memories: relevance, recency and importance (Generative Agents), each term shown',
    description:
      'score = w_relevance·relevance + w_recency·recency + w_importance·importance, each term min-max normalised over the candidates ' +
      '(relevance: cosine similarity; recency: 0.995^hours since last retrieved; importance: 1–10). Weights default to 1. ' +
      'Returned memories are marked retrieved now. minPosition (or X-Consistency-Token) waits until the index holds that position.',
  })
  @ApiBody({ schema: memorySearchJsonSchema })
  @ApiOkResponse({ description: '{ memories: [{ memoryId, text, score, relevance, recency, importance, terms, subjects, createdAt, lastAccessedAt, position }] }' })
  @ApiProblems(400, 404, 422, 504)
  async searchMemories(
    @Param('worldId') worldIdParam: string,
    @Param('npcId') npcIdParam: string,
    @Body() body: unknown,
    @Req() request: AuthenticatedRequest,
  ): Promise<{ memories: FoundMemory[] }> {
    const worldId = parseOrThrow(slug, worldIdParam, 'worldId');
    const npcId = parseOrThrow(id, npcIdParam, 'npcId');
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw validationProblem([{ path: '', message: 'the body must be a JSON object' }]);
    const input: Record<string, unknown> = { ...(body as object) };
    const token = request.headers['x-consistency-token'];
    if (input.minPosition === undefined && typeof token === 'string') input.minPosition = Number(token);
    const q = parseOrThrow(memorySearchSchema, input);
    checkEmbedding(q.embedding, this.config.VECTOR_DIMENSION, 'embedding');
    await this.readModels.waitFor(MEMORY_PROJECTION, q.minPosition);
    const fence = await this.readModels.waitFor('entities', q.minPosition);
    await this.requireNpc(worldId, npcId, fence);
    if (q.minPosition && this.index.kind !== 'embedded') await this.waitForExternalIndex(worldId, npcId, q.minPosition);
    const started = performance.now();
    const memories = await this.search.search({ worldId, npcId, embedding: q.embedding, topK: q.topK, minScore: q.minScore, weights: q.weights });
    this.metrics.memorySearchDuration.observe({ index: this.index.kind }, (performance.now() - started) / 1000);
    return { memories };
  }

  @Delete(':memoryId')
  @HttpCode(200)
  @ApiOperation({
    summary: 'The NPC forgets a memory (an npc.forget_memory command): it leaves search; a rollback past the forget brings it back',
    description: 'commandId makes a retry idempotent; minPosition waits until the memory is known (right after recording it).',
  })
  @ApiQuery({ name: 'commandId', required: false })
  @ApiQuery({ name: 'minPosition', required: false })
  @ApiOkResponse({ description: '{ memoryId, position, revision, duplicate }' })
  @ApiProblems(400, 404, 410, 422, 504)
  async forget(
    @Param('worldId') worldIdParam: string,
    @Param('npcId') npcIdParam: string,
    @Param('memoryId') memoryIdParam: string,
    @Query() query: unknown,
    @Req() request: AuthenticatedRequest,
  ): Promise<{ memoryId: string; position: number | null; revision: number; duplicate: boolean }> {
    const worldId = parseOrThrow(slug, worldIdParam, 'worldId');
    const npcId = parseOrThrow(id, npcIdParam, 'npcId');
    const memoryId = parseOrThrow(id, memoryIdParam, 'memoryId');
    const q = parseOrThrow(forgetQuery, query ?? {});
    await this.readModels.waitFor(MEMORY_PROJECTION, q.minPosition);
    if (!(await this.memories.exists(worldId, npcId, memoryId))) {
      throw new Problem(404, 'memory-not-found', 'Memory not found', `NPC ${npcId} of world ${worldId} has no memory ${memoryId} (recorded just now? pass minPosition)`);
    }
    const command = parseForget(worldId, npcId, memoryId, q.commandId, request.principal!, correlationIdFrom(request.headers['x-correlation-id']));
    const result = await this.commandBus.execute<typeof command, CommandResponse>(command);
    return { memoryId, position: result.position, revision: result.revision, duplicate: result.duplicate };
  }

  /** 404 for an NPC never spawned here (or rolled back to before its spawn), 422 for an entity that is not an NPC. */
  private async requireNpc(worldId: string, npcId: string, fence: bigint | undefined): Promise<void> {
    const doc = await this.readModels.doc('entities', worldId, npcId, fence);
    const state = doc?.state as EntityState | undefined;
    if (!state || state.status === 'unspawned') throw new Problem(404, 'not-found', 'NPC not found', `NPC ${npcId} was never spawned in world ${worldId}`);
    if (state.kind !== 'npc') {
      throw new Problem(422, 'refused-not-an-npc', 'Not an NPC', `entity ${npcId} is a ${state.kind}, not an npc`, { code: 'not_an_npc' });
    }
  }

  /** An external index takes changes just after they commit: a read after a write waits for this NPC's, bounded like any consistency wait. */
  private async waitForExternalIndex(worldId: string, npcId: string, minPosition: number): Promise<void> {
    const deadline = Date.now() + this.config.CONSISTENCY_WAIT_MS;
    for (let delay = 5; await this.memories.hasPendingSync(worldId, npcId, BigInt(minPosition)); delay = Math.min(delay * 2, 100)) {
      if (Date.now() > deadline) {
        throw new Problem(504, 'consistency-timeout', 'Not caught up', `the ${this.index.kind} index did not take position ${minPosition} within ${this.config.CONSISTENCY_WAIT_MS} ms`, {}, { 'retry-after': '1' });
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
