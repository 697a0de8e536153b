import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { streamIds } from '@lorestore/domain';
import { PostgresEventStore, type StreamAppend } from '@lorestore/event-store';
import { ReadModelStore } from '@lorestore/projections';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '@lorestore/infra';
import { migrateReplay } from '@lorestore/replay';
import { createTestSchema, type TestSchema } from '../support/database';
import { cleanUpServiceProcesses, startServiceProcess, type ServiceProcess } from '../support/service-process';

const STREAMS = 1000;
const WORLD = 'crashworld';
const KEY = 'rollback-crash-admin';

/**
 * A world rollback of 1,000 streams is all-or-nothing: the service is
 * SIGKILLed in the middle of it (while its one transaction has locked half
 * the streams and waits for the rest, and at random moments), and afterwards
 * either every stream has its rollback event, with the audit record, or none
 * has. The same request sent again (same operationId) then completes it once.
 *
 * On a PostgreSQL server of its own (embedded, started for this file): the
 * lock it holds for seconds would hold back the gap-safe feed of every other
 * suite on a shared server.
 */
describe('crash: SIGKILL of state-api during a world rollback of 1,000 streams', () => {
  let server: RunningEmbeddedPostgres;
  let db: TestSchema;
  let store: PostgresEventStore;
  let service: ServiceProcess | null = null;
  let point = 0;

  beforeAll(async () => {
    const base = path.join(os.tmpdir(), 'lorestore-test');
    mkdirSync(base, { recursive: true, mode: 0o755 });
    server = await startEmbeddedPostgres({ dataDir: path.join(base, `pg-rollback-crash-${process.pid}`), port: 0, persistent: false, database: 'test' });
    db = await createTestSchema('rollback_crash', 20, server.url);
    await PostgresEventStore.migrate(db.pool, db.schema);
    await ReadModelStore.migrate(db.pool, db.schema);
    await migrateReplay(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema });
    const ids = Array.from({ length: STREAMS }, () => randomUUID());
    const write = async (make: (entityId: string) => StreamAppend) => {
      for (let i = 0; i < ids.length; i += 250) await store.appendToStreams(ids.slice(i, i + 250).map(make));
    };
    const at = new Date().toISOString();
    await write((entityId) => ({
      streamId: streamIds.entity(WORLD, entityId),
      expectedRevision: 'no_stream',
      events: [{ id: randomUUID(), type: 'EntitySpawned', data: { entityId, kind: 'item', attributes: { gold: 1 }, locationId: null, at }, metadata: { worldId: WORLD } }],
    }));
    point = Number((await db.pool.query<{ p: string }>('SELECT max(position) AS p FROM events')).rows[0]!.p);
    await write((entityId) => ({
      streamId: streamIds.entity(WORLD, entityId),
      expectedRevision: 0n,
      events: [{ id: randomUUID(), type: 'EntityUpdated', data: { entityId, set: { gold: 1_000_000 }, unset: [], at }, metadata: { worldId: WORLD } }],
    }));
  }, 60_000);

  afterAll(async () => {
    await service?.kill();
    await store?.close();
    await db?.drop();
    await server?.stop();
    await cleanUpServiceProcesses();
  });

  const start = async () => {
    service = await startServiceProcess({ DATABASE_URL: db.url, DATABASE_SCHEMA: db.schema, API_KEYS: `${KEY}:admin`, PROJECTOR: 'external' });
    return service;
  };

  const rollback = (url: string, operationId: string) =>
    fetch(`${url}/v1/admin/worlds/${WORLD}/rollback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ toPosition: point, reason: 'crash test', operationId }),
    });

  const appended = async (operationId: string) => {
    const { rows } = await db.pool.query<{ events: string; audit: string }>(
      `SELECT (SELECT count(*) FROM events WHERE type = 'StreamRolledBack' AND metadata->>'operationId' = $1) AS events,
              (SELECT count(*) FROM rollback_operations WHERE operation_id = $1::uuid) AS audit`,
      [operationId],
    );
    return { events: Number(rows[0]!.events), audit: Number(rows[0]!.audit) };
  };

  /** Completes the operation by sending the same request again to a fresh process: exactly one rollback event per stream. */
  const retry = async (operationId: string) => {
    const { url, kill } = await start();
    const response = await rollback(url, operationId);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { streams: unknown[] };
    expect(body.streams).toHaveLength(STREAMS);
    expect(await appended(operationId)).toEqual({ events: STREAMS, audit: 1 });
    await kill('SIGTERM');
  };

  it('killed while its transaction waits on a stream lock half-way: nothing appended; the retry appends all', async () => {
    const { url, kill } = await start();
    const operationId = randomUUID();
    // Hold the lock of the middle stream (streams are locked in id order), so the rollback's
    // transaction stops half-way through, holding the first half.
    const blocker = new Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query(`SET search_path TO "${db.schema}"`);
    await blocker.query('BEGIN');
    const { rows } = await blocker.query<{ stream_id: string }>(
      `SELECT stream_id FROM streams WHERE world_id = $1 ORDER BY stream_id OFFSET ${STREAMS / 2} LIMIT 1 FOR UPDATE`,
      [WORLD],
    );
    expect(rows).toHaveLength(1);
    const pending = rollback(url, operationId).catch(() => null);
    try {
      let waiting = false;
      for (let i = 0; i < 400 && !waiting; i++) {
        const { rows: w } = await db.pool.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'lorestore-state-api' AND wait_event_type = 'Lock' AND query LIKE '%append_batch%'",
        );
        waiting = Number(w[0]!.n) > 0;
        if (!waiting) await new Promise((r) => setTimeout(r, 25));
      }
      expect(waiting).toBe(true);
      await kill('SIGKILL');
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    await pending;
    expect(await appended(operationId)).toEqual({ events: 0, audit: 0 });
    await retry(operationId);
  }, 60_000);

  it.each([60, 180, 400])('killed %i ms into the request: nothing or everything appended, never part', async (delay) => {
    const { url, kill } = await start();
    const operationId = randomUUID();
    const pending = rollback(url, operationId).catch(() => null);
    await new Promise((r) => setTimeout(r, delay));
    await kill('SIGKILL');
    await pending;
    const after = await appended(operationId);
    expect([
      { events: 0, audit: 0 },
      { events: STREAMS, audit: 1 },
    ]).toContainEqual(after);
    await retry(operationId);
  }, 60_000);
});
