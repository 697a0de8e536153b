import { randomUUID } from 'node:crypto';
import type { CommandType, DomainCommand } from '@lorestore/domain';
import type { ExpectedRevision } from '@lorestore/event-store';
import type { Principal } from '../auth/api-keys';
import { InvalidEmbeddingError, unitVector } from '@lorestore/semantic-memory';
import { Problem, validationProblem } from '../http/problem';
import { parseOrThrow } from '../http/validate';
import { COMMAND_TYPES, commandEnvelopeSchema, id, isCommandType, memorySchema, payloadSchemas, slug } from './command.schemas';
import { ExecuteCommand } from './execute-command';

export const worldIdSchema = slug;

const toExpected = (value: number | 'any' | 'no_stream' | 'exists' | undefined): ExpectedRevision | undefined =>
  typeof value === 'number' ? BigInt(value) : value;

/** Who a command acts for: the envelope's actorId, else for a player's command the player. */
const actorIdOf = (type: CommandType, data: unknown, actorId: string | undefined): string | undefined =>
  actorId ?? (type.startsWith('player.') ? ((data as { playerId?: string }).playerId ?? undefined) : undefined);

const build = (type: CommandType, data: unknown, worldId: string, commandId: string, principal: Principal, actorId?: string): DomainCommand => {
  const actsFor = actorIdOf(type, data, actorId);
  return {
    type,
    data,
    metadata: { commandId, worldId, actor: `${principal.role}:${principal.keyId}`, ...(actsFor ? { actorId: actsFor } : {}), now: new Date().toISOString() },
  } as DomainCommand;
};

/**
 * An embedding must have the deployment's dimension (VECTOR_DIMENSION), finite
 * numbers and a direction: the one rule of the vector index, checked before
 * anything is recorded.
 */
export const checkEmbedding = (embedding: readonly number[], dimension: number, path: string): void => {
  try {
    unitVector(embedding, dimension);
  } catch (error) {
    if (error instanceof InvalidEmbeddingError) throw validationProblem([{ path, message: error.message }]);
    throw error;
  }
};

/** `POST /v1/worlds/{w}/commands`: validates the envelope, then the payload of its type. */
export const parseCommand = (worldIdParam: string, body: unknown, principal: Principal, correlationId: string, vectorDimension: number): ExecuteCommand => {
  const worldId = parseOrThrow(worldIdSchema, worldIdParam, 'worldId');
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new Problem(400, 'validation', 'Invalid request', 'the body must be a JSON object', { errors: [{ path: '', message: 'must be a JSON object' }] });
  }
  const type = (body as { type?: unknown }).type;
  if (typeof type === 'string' && !isCommandType(type)) {
    throw new Problem(400, 'unknown-command-type', 'Unknown command type', `unknown command type "${type.slice(0, 64)}"`, {
      errors: [{ path: 'type', message: `must be one of ${COMMAND_TYPES.join(', ')}` }],
    });
  }
  const envelope = parseOrThrow(commandEnvelopeSchema, body);
  const commandType = envelope.type as CommandType;
  const payload = parseOrThrow(payloadSchemas[commandType], envelope.payload, 'payload');
  if (commandType === 'npc.record_memory') checkEmbedding((payload as { embedding: number[] }).embedding, vectorDimension, 'payload.embedding');
  return new ExecuteCommand(build(commandType, payload, worldId, envelope.commandId, principal, envelope.actorId), toExpected(envelope.expectedRevision), correlationId);
};

const memoryBodySchema = memorySchema.extend({ commandId: id.optional() }).strict();

/** `POST /v1/worlds/{w}/npcs/{npcId}/memories`: an `npc.record_memory` command under the hood. */
export const parseMemory = (
  worldIdParam: string,
  npcIdParam: string,
  body: unknown,
  principal: Principal,
  correlationId: string,
  vectorDimension: number,
): ExecuteCommand => {
  const worldId = parseOrThrow(worldIdSchema, worldIdParam, 'worldId');
  const npcId = parseOrThrow(id, npcIdParam, 'npcId');
  const { commandId = randomUUID(), ...memory } = parseOrThrow(memoryBodySchema, body ?? {});
  checkEmbedding(memory.embedding, vectorDimension, 'embedding');
  const command = build('npc.record_memory', { ...memory, npcId }, worldId, commandId, principal);
  return new ExecuteCommand(command, undefined, correlationId);
};

export const correlationIdFrom = (header: unknown): string =>
  typeof header === 'string' && /^[\w.:-]{1,128}$/.test(header) ? header : randomUUID();


/** `DELETE /v1/worlds/{w}/npcs/{npcId}/memories/{memoryId}`: an `npc.forget_memory` command. */
export const parseForget = (
  worldId: string,
  npcId: string,
  memoryId: string,
  commandId: string | undefined,
  principal: Principal,
  correlationId: string,
): ExecuteCommand =>
  new ExecuteCommand(build('npc.forget_memory', { npcId, memoryId }, worldId, commandId ?? randomUUID(), principal), undefined, correlationId);
