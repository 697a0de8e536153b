import http from 'node:http';
import Fastify from 'fastify';
import Redis from 'ioredis';
import { hotKey } from '@lorestore/projections';
import { requiredEnv, serveUntilSignalled } from '../support/child-process';

/**
 * The floors for the reads of `npm run bench -- projections`: what a `GET`
 * entity costs a Node HTTP server on this machine with nothing of lorestore
 * in it. Started as a child process by reads.ts, one kind per process
 * (FLOOR_KIND), each a rung lower than the one before:
 * - `fastify`: a bare Fastify route that answers from the same Redis hash the
 *   service reads (the same HMGET through ioredis with auto-pipelining, as the
 *   service's client), parses the document and sends the same view. No auth,
 *   no validation, no metrics, no fallback to PostgreSQL, no timeout.
 * - `node`: the same read behind Node's own `http` server, no framework.
 * - `static`: Node's `http` server sending a fixed view-shaped body (about
 *   220 bytes; the bench's entities' views are about 350), no Redis: Node's
 *   HTTP alone, the least any Node server pays for a request.
 */

// The kinds of reads.ts (FloorKind), not imported from there: this file is a script, and reads.ts imports nothing of it.
type FloorKind = 'fastify' | 'node' | 'static';
const FLOOR_KINDS: readonly FloorKind[] = ['fastify', 'node', 'static'];

type EntityDoc = { entityId: string; kind: string; attributes: unknown; locationId: string | null; spawnedAt: string; updatedAt: string; memoryCount: number };

const kind = (process.env.FLOOR_KIND ?? 'fastify') as FloorKind;
if (!FLOOR_KINDS.includes(kind)) throw new Error(`FLOOR_KIND must be one of ${FLOOR_KINDS.join(', ')}, not ${kind}`);
const ENTITY_PATH = /^\/v1\/worlds\/([^/?]+)\/entities\/([^/?]+)$/;

const redis = kind === 'static' ? null : new Redis(requiredEnv('REDIS_URL'), { keyPrefix: process.env.REDIS_KEY_PREFIX ?? '', enableAutoPipelining: true, maxRetriesPerRequest: 2 });

/** The view the service answers, from the hash's fields; null when the key is absent. */
const readView = async (worldId: string, entityId: string) => {
  const [revision, , , doc] = await redis!.hmget(hotKey('entities', worldId, entityId), 'revision', 'position', 'updatedAt', 'doc');
  if (revision === null || doc === null) return null;
  const s = JSON.parse(doc) as EntityDoc;
  return { id: s.entityId, kind: s.kind, attributes: s.attributes, locationId: s.locationId, revision: Number(revision), spawnedAt: s.spawnedAt, updatedAt: s.updatedAt, memoryCount: s.memoryCount };
};

const STATIC_BODY = JSON.stringify({
  id: '00000000-0000-4000-8000-000000000000',
  kind: 'npc',
  attributes: { name: 'floor', hp: 30, level: 7 },
  locationId: null,
  revision: 3,
  spawnedAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  memoryCount: 0,
});

const send = (res: http.ServerResponse, status: number, body: string): void => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

/** The `node` and `static` kinds: one request listener on Node's own server. */
const nodeServer = () => {
  const server = http.createServer((req, res) => {
    if (req.url === '/health/ready') return send(res, 200, '{"status":"ok"}');
    const match = req.method === 'GET' ? ENTITY_PATH.exec(req.url ?? '') : null;
    if (!match) return send(res, 404, '{"title":"no such route"}');
    if (kind === 'static') return send(res, 200, STATIC_BODY);
    readView(match[1]!, match[2]!).then(
      (view) => (view ? send(res, 200, JSON.stringify(view)) : send(res, 404, '{"title":"not in Redis"}')),
      (error: unknown) => send(res, 500, JSON.stringify({ title: String(error) })),
    );
  });
  return {
    listen: (options: { port: number; host: string }) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, resolve);
      }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

const fastifyServer = () => {
  const app = Fastify({ logger: false });
  app.get('/health/ready', async () => ({ status: 'ok' }));
  app.get<{ Params: { worldId: string; entityId: string } }>('/v1/worlds/:worldId/entities/:entityId', async (request, reply) => {
    const view = await readView(request.params.worldId, request.params.entityId);
    return view ?? reply.code(404).send({ title: 'not in Redis' });
  });
  return app;
};

serveUntilSignalled(kind === 'fastify' ? fastifyServer() : nodeServer(), async () => {
  redis?.disconnect();
});
