import Fastify from 'fastify';
import Redis from 'ioredis';
import { hotKey } from '@lorestore/projections';
import { requiredEnv, serveUntilSignalled } from '../support/child-process';

/**
 * The floor for the reads of `npm run bench -- projections`: a bare Fastify
 * route that answers GET entity from the same Redis hash the service reads
 * (the same HMGET through ioredis with auto-pipelining, as the service's client),
 * parses the document and sends the same view. No auth, no validation, no
 * metrics, no fallback to PostgreSQL, no timeout: what is left is Node's
 * HTTP server + one Redis round trip + JSON, the least any Node service pays
 * for this read. Started as a child process by reads.ts.
 */

type EntityDoc = { entityId: string; kind: string; attributes: unknown; locationId: string | null; spawnedAt: string; updatedAt: string; memoryCount: number };

const redis = new Redis(requiredEnv('REDIS_URL'), { keyPrefix: process.env.REDIS_KEY_PREFIX ?? '', enableAutoPipelining: true, maxRetriesPerRequest: 2 });
const app = Fastify({ logger: false });
app.get('/health/ready', async () => ({ status: 'ok' }));
app.get<{ Params: { worldId: string; entityId: string } }>('/v1/worlds/:worldId/entities/:entityId', async (request, reply) => {
  const [revision, , , doc] = await redis.hmget(hotKey('entities', request.params.worldId, request.params.entityId), 'revision', 'position', 'updatedAt', 'doc');
  if (revision === null || doc === null) return reply.code(404).send({ title: 'not in Redis' });
  const s = JSON.parse(doc) as EntityDoc;
  return { id: s.entityId, kind: s.kind, attributes: s.attributes, locationId: s.locationId, revision: Number(revision), spawnedAt: s.spawnedAt, updatedAt: s.updatedAt, memoryCount: s.memoryCount };
});

serveUntilSignalled(app, async () => {
  redis.disconnect();
});
