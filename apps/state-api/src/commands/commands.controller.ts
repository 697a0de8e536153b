import { Body, Controller, Headers, HttpCode, Param, Post, Req } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { AuthenticatedRequest } from '../auth/auth.guard';
import { commandRequestJsonSchema, memoryRequestJsonSchema } from '../http/openapi';
import type { CommandResponse } from './execute-command';
import { correlationIdFrom, parseCommand, parseMemory } from './parse-command';

@ApiTags('commands')
@ApiBearerAuth()
@Controller('v1/worlds/:worldId')
export class CommandsController {
  constructor(private readonly commandBus: CommandBus) {}

  @Post('commands')
  @HttpCode(200)
  @ApiOperation({ summary: 'Send a command; its events are appended to one stream' })
  @ApiBody({ schema: commandRequestJsonSchema })
  execute(
    @Param('worldId') worldId: string,
    @Body() body: unknown,
    @Req() request: AuthenticatedRequest,
    @Headers('x-correlation-id') correlation?: string,
  ): Promise<CommandResponse> {
    return this.commandBus.execute(parseCommand(worldId, body, request.principal!, correlationIdFrom(correlation)));
  }

  @Post('npcs/:npcId/memories')
  @HttpCode(200)
  @ApiOperation({ summary: "Record an NPC memory (an npc.record_memory command); optional commandId makes it idempotent" })
  @ApiBody({ schema: memoryRequestJsonSchema })
  async recordMemory(
    @Param('worldId') worldId: string,
    @Param('npcId') npcId: string,
    @Body() body: unknown,
    @Req() request: AuthenticatedRequest,
    @Headers('x-correlation-id') correlation?: string,
  ): Promise<{ memoryId: string; position: number | null; revision: number; duplicate: boolean }> {
    const { command, memoryId } = parseMemory(worldId, npcId, body, request.principal!, correlationIdFrom(correlation));
    const result = await this.commandBus.execute<typeof command, CommandResponse>(command);
    return { memoryId, position: result.position, revision: result.revision, duplicate: result.duplicate };
  }
}
