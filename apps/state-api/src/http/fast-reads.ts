import { Logger } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { ApiKeyRing } from '../auth/api-keys';
import { bearerPrincipal, type AuthenticatedRequest } from '../auth/auth.guard';
import { GUID, SLUG } from '../commands/command.schemas';
import { GetEntity, type GetEntityHandler } from '../queries/entity.queries';
import { replyWithProblem } from './problem.filter';

/** The route of `GET /v1/worlds/{w}/entities/{id}` as Nest registers it on Fastify. */
export const ENTITY_ROUTE = '/v1/worlds/:worldId/entities/:entityId';

export type FastReadDeps = { keys: ApiKeyRing; entities: GetEntityHandler };

type Params = { worldId?: unknown; entityId?: unknown };

/**
 * The request the short path takes: no query string, no consistency token,
 * a known API key, and ids that the route's own validation accepts (the
 * same patterns). Anything else is left to Nest, which answers it as before,
 * errors included.
 */
const plainEntityRead = (request: FastifyRequest, keys: ApiKeyRing): { worldId: string; entityId: string } | null => {
  if (request.url.includes('?') || request.headers['x-consistency-token'] !== undefined) return null;
  const principal = bearerPrincipal(keys, request.headers.authorization);
  if (!principal) return null;
  const { worldId, entityId } = request.params as Params;
  if (typeof worldId !== 'string' || typeof entityId !== 'string' || !SLUG.test(worldId) || !GUID.test(entityId)) return null;
  (request as AuthenticatedRequest).principal = principal;
  return { worldId, entityId: entityId.toLowerCase() };
};

/**
 * The hottest read, `GET /v1/worlds/{w}/entities/{id}` without query or
 * consistency token, answered without Nest's per-request pipeline. Nest's
 * route stays (OpenAPI, and every other request of it); its handler is
 * wrapped as Fastify registers it. Measured on a 2-core VM: Nest's router,
 * guard, parameter decorators, zod of an empty query and the query bus cost
 * more CPU than the read itself, and at 10,000 reads/s the event loop is
 * the limit (bench/RESULTS.md). What the short path skips, and why that is
 * the same answer:
 * - the guard: the route needs role `game`, which every key has; the key is
 *   checked by the same ring, and an unknown or missing key goes to Nest for
 *   its 401;
 * - the zod parsing: an id the same pattern refuses goes to Nest for its 400;
 *   an absent query parses to `{}`, which is what this passes;
 * - the query bus: the same handler is called directly.
 * Fastify's hooks still run (rate limit, request logs, the HTTP metrics).
 * An error is answered as the exception filter answers it.
 */
export const installFastReads = (fastify: FastifyInstance, deps: () => FastReadDeps): void => {
  // The exception filter's name: a 500 is logged as it is for every other route.
  const logger = new Logger('ProblemFilter');
  fastify.addHook('onRoute', (route) => {
    if (route.url !== ENTITY_ROUTE || route.method !== 'GET') return;
    const nest = route.handler;
    const { keys, entities } = deps();
    const fast: RouteHandlerMethod = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      const read = plainEntityRead(request, keys);
      if (!read) return nest.call(this, request, reply);
      return entities.execute(new GetEntity(read.worldId, read.entityId, {})).then(
        (view) => reply.send(view),
        (error: unknown) => {
          replyWithProblem(reply, error, logger);
          return reply;
        },
      );
    };
    route.handler = fast;
  });
};
