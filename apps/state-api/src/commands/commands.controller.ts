import { Body, Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthenticatedRequest } from '../auth/auth.guard';
import { APP_CONFIG, type AppConfig } from '../config';
import { ApiProblems, commandRequestJsonSchema, memoryRequestJsonSchema } from '../http/openapi';
import type { CommandResponse } from './execute-command';
import { correlationIdFrom, parseCommand, parseMemory } from './parse-command';

@ApiTags('commands')
@ApiBearerAuth()
@ApiHeader({ name: 'x-correlation-id', required: false, description: 'carried into the events’ metadata' })
@Controller('v1/worlds/:worldId')
export class CommandsController {
  constructor(
    private readonly commandBus: CommandBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('commands')
  @HttpCode(200)
  @ApiOperation({ summary: 'Send a command; its events are appended to one stream' })
  @ApiBody({ schema: commandRequestJsonSchema })
  @ApiOkResponse({ description: '{ streamId, revision, position, events: [{ type, revision, position }], duplicate }' })
  @ApiProblems(400, 403, 404, 409, 410, 413, 422, 503)
  execute(
    @Param('worldId') worldId: string,
    @Body() body: unknown,
    @Req() request: AuthenticatedRequest,
  ): Promise<CommandResponse> {
    return this.commandBus.execute(parseCommand(worldId, body, request.principal!, correlationIdFrom(request.headers['x-correlation-id']), this.config.VECTOR_DIMENSION));
  }

  @Post('npcs/:npcId/memories')
  @HttpCode(200)
  @ApiOperation({ summary: "Record an NPC memory (an npc.record_memory command); optional commandId makes it idempotent" })
  @ApiBody({ schema: memoryRequestJsonSchema })
  @ApiOkResponse({ description: '{ memoryId, position, revision, duplicate }' })
  @ApiProblems(400, 404, 410, 413, 422, 503)
  async recordMemory(
    @Param('worldId') worldId: string,
    @Param('npcId') npcId: string,
    @Body() body: unknown,
    @Req() request: AuthenticatedRequest,
  ): Promise<{ memoryId: string; position: number | null; revision: number; duplicate: boolean }> {
    const command = parseMemory(worldId, npcId, body, request.principal!, correlationIdFrom(request.headers['x-correlation-id']), this.config.VECTOR_DIMENSION);
    const result = await this.commandBus.execute<typeof command, CommandResponse>(command);
    return { memoryId: result.memoryId!, position: result.position, revision: result.revision, duplicate: result.duplicate };
  }
}
