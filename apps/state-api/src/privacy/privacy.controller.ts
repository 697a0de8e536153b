import { Body, Controller, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { RequireRole, type AuthenticatedRequest } from '../auth/auth.guard';
import { id } from '../commands/command.schemas';
import { correlationIdFrom } from '../commands/parse-command';
import { ApiProblems } from '../http/openapi';
import { parseOrThrow } from '../http/validate';
import { PrivacyService } from './privacy.service';

const eraseBody = z
  .object({
    /** Goes into the audit event and the key's tombstone: say why, name no one (no personal data here). */
    reason: z.string().trim().min(1, 'say why (it goes into the audit trail)').max(500),
  })
  .strict();

@ApiTags('privacy')
@ApiBearerAuth()
@ApiProblems(400, 403, 404)
@RequireRole('admin')
@Controller('v1/admin/players')
export class PrivacyController {
  constructor(private readonly privacy: PrivacyService) {}

  @Post(':playerId/erase')
  @HttpCode(200)
  @ApiOperation({
    summary: "Erase a player's personal data everywhere (crypto-shredding)",
    description:
      "Body `{ reason }`. Destroys the player's data key: their profile, action contexts and the memories about them can never be read again, " +
      'in the log, its mirrors or any backup. Appends a `PlayerErased` audit event; the read models drop the data, the memories leave search. ' +
      'Answers `{ playerId, erasedAt, reason, erasedBy, position }` (`position` is a consistency token). Erasing again changes nothing and answers the same. ' +
      '404 when lorestore holds nothing about the player.',
  })
  @ApiBody({ schema: { type: 'object', required: ['reason'], properties: { reason: { type: 'string', maxLength: 500 } } } })
  async erase(@Param('playerId') p: string, @Body() body: unknown, @Req() request: AuthenticatedRequest) {
    const playerId = parseOrThrow(id, p, 'playerId');
    const { reason } = parseOrThrow(eraseBody, body ?? {});
    return this.privacy.erase(playerId, reason, `${request.principal!.role}:${request.principal!.keyId}`, correlationIdFrom(request.headers['x-correlation-id']));
  }

  @Get(':playerId/export')
  @ApiOperation({
    summary: 'Everything lorestore holds about a player, decrypted (streamed JSON)',
    description:
      '`{ playerId, exportedAt, erased, erasure, worlds: [{ worldId, profile, relationships, counters, lastActionAt, revision, updatedAt }], ' +
      'actions: [{ worldId, action, context, at, revision, position, rolledBack }], memories: [{ memoryId, worldId, npcId, text, importance, createdAt, forgotten, rolledBack, otherSubjects }] }`. ' +
      'Waits until the read models hold everything appended before the request. 404 when lorestore holds nothing about the player.',
  })
  async export(@Param('playerId') p: string, @Res() reply: FastifyReply): Promise<void> {
    const playerId = parseOrThrow(id, p, 'playerId');
    const body = await this.privacy.export(playerId);
    await reply
      .header('content-type', 'application/json; charset=utf-8')
      .header('content-disposition', `attachment; filename="lorestore-player-${playerId}.json"`)
      .header('cache-control', 'no-store')
      .send(body);
  }
}
