import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { createPostgresPool } from '@lorestore/infra';
import { requiredEnv, serveUntilSignalled } from '../support/child-process';

/**
 * The ceiling for `npm run bench -- http`: a bare Fastify route that turns
 * each command into one event row, and requests that arrive together share one
 * multi-row INSERT (one commit, synchronous_commit as the server has it). No
 * auth, no domain, no idempotency, no concurrency check: what is left is HTTP +
 * JSON + a batched durable write. Started as a child process by http.ts.
 */

type Row = { streamId: string; revision: string; eventId: string; data: string; metadata: string };
type Pending = { row: Row; resolve: (position: string) => void; reject: (error: unknown) => void };

const INSERT = `
  INSERT INTO events (stream_id, revision, event_id, type, data, metadata)
  SELECT s, r, e, 'PlayerActionRecorded', d, m
    FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::jsonb[], $5::jsonb[]) AS t(s, r, e, d, m)
  RETURNING event_id::text AS event_id, position::text AS position`;

const MAX_CONCURRENT_INSERTS = Number(process.env.CEILING_CONCURRENT_INSERTS ?? 2);
const MAX_BATCH = 256;

const pool = createPostgresPool({ url: requiredEnv('DATABASE_URL'), schema: requiredEnv('DATABASE_SCHEMA'), max: MAX_CONCURRENT_INSERTS + 2, applicationName: 'bench-ceiling' });
const queue: Pending[] = [];
let inFlight = 0;
const stats = { batches: 0, rows: 0, insertMs: 0 };

const flush = (): void => {
  while (inFlight < MAX_CONCURRENT_INSERTS && queue.length > 0) {
    const batch = queue.splice(0, MAX_BATCH);
    inFlight++;
    const started = performance.now();
    pool
      .query<{ event_id: string; position: string }>(INSERT, [
        batch.map((p) => p.row.streamId),
        batch.map((p) => p.row.revision),
        batch.map((p) => p.row.eventId),
        batch.map((p) => p.row.data),
        batch.map((p) => p.row.metadata),
      ])
      .then(
        ({ rows }) => {
          stats.batches++;
          stats.rows += batch.length;
          stats.insertMs += performance.now() - started;
          const positions = new Map(rows.map((r) => [r.event_id, r.position]));
          for (const p of batch) p.resolve(positions.get(p.row.eventId) ?? '');
        },
        (error: unknown) => {
          for (const p of batch) p.reject(error);
        },
      )
      .finally(() => {
        inFlight--;
        flush();
      });
  }
};

const insert = (row: Row): Promise<string> =>
  new Promise((resolve, reject) => {
    queue.push({ row, resolve, reject });
    flush();
  });

/** Next revision per stream; one process owns the table, so a counter is enough. */
const revisions = new Map<string, bigint>();

type CommandBody = { commandId?: unknown; type?: unknown; payload?: { playerId?: unknown; action?: unknown; context?: unknown } };

const app = Fastify({ logger: false });
app.get('/health/ready', async () => ({ status: 'ok' }));
app.get('/stats', async () => ({
  batches: stats.batches,
  meanBatchSize: stats.batches ? Math.round((stats.rows / stats.batches) * 10) / 10 : 0,
  meanInsertMs: stats.batches ? Math.round((stats.insertMs / stats.batches) * 100) / 100 : 0,
}));
app.post('/stats/reset', async () => {
  Object.assign(stats, { batches: 0, rows: 0, insertMs: 0 });
  return {};
});
app.post<{ Params: { worldId: string }; Body: CommandBody }>('/v1/worlds/:worldId/commands', async (request, reply) => {
  const { commandId, type, payload } = request.body ?? {};
  if (typeof commandId !== 'string' || type !== 'player.record_action' || typeof payload?.playerId !== 'string') {
    return reply.code(400).send({ title: 'bad command' });
  }
  const streamId = `player-${request.params.worldId}-${payload.playerId}`;
  const revision = revisions.get(streamId) ?? 0n;
  revisions.set(streamId, revision + 1n);
  const eventId = randomUUID();
  const position = await insert({
    streamId,
    revision: revision.toString(),
    eventId,
    data: JSON.stringify({ playerId: payload.playerId, action: payload.action, context: payload.context }),
    metadata: JSON.stringify({ commandId, worldId: request.params.worldId }),
  });
  return { streamId, revision: revision.toString(), position, events: [{ type: 'PlayerActionRecorded', revision: revision.toString(), position }], duplicate: false };
});

serveUntilSignalled(app, () => pool.end());
