import 'reflect-metadata';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApiKeyRing } from '../../apps/state-api/src/auth/api-keys';
import { createApp } from '../../apps/state-api/src/bootstrap';
import { loadConfig } from '../../apps/state-api/src/config';
import { createTestSchema, type TestSchema } from './database';
import { TEST_MASTER_KEY, testDatabaseUrl } from './services';
import { startEsdbTestServer, type EsdbTestServer } from './esdb-test-server';

/**
 * `LORESTORE_TEST_EVENT_STORE=esdb` (the jest project `e2e-esdb`) runs every
 * test app in EventStoreDB mode: appends to a protocol-level EventStoreDB test
 * double started per app (shared by a second instance), reads from its mirror.
 */
export const TEST_EVENT_STORE = process.env.LORESTORE_TEST_EVENT_STORE === 'esdb' ? 'esdb' : 'postgres';

export const ADMIN_KEY = 'admin-key-for-tests';
export const GAME_KEY = 'game-key-for-tests';

export type TestApp = {
  app: NestFastifyApplication;
  db: TestSchema;
  /** EventStoreDB mode: the test double this app appends to. */
  esdb: EsdbTestServer | null;
  /** Injects a request without a socket (fast, deterministic); headers default to the game key and JSON. */
  request: (options: { method: 'GET' | 'POST' | 'DELETE'; url: string; body?: unknown; headers?: Record<string, string>; key?: string | null }) => Promise<{
    status: number;
    body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
    headers: Record<string, unknown>;
  }>;
  close: () => Promise<void>;
};

/**
 * The whole service on a schema of its own in the test database, or on the
 * schema of another test app (`sharedWith`) to stand for a second instance.
 */
export const startTestApp = async (label: string, env: Record<string, string> = {}, sharedWith?: TestApp): Promise<TestApp> => {
  // env.DATABASE_URL: a server of the test's own (a private primary with replicas, say) instead of the shared one.
  const db = sharedWith ? sharedWith.db : await createTestSchema(label, 20, env.DATABASE_URL ?? testDatabaseUrl());
  if (!sharedWith) await db.pool.end();
  const wantsEsdb = (env.EVENT_STORE ?? TEST_EVENT_STORE) === 'esdb';
  const esdb = wantsEsdb ? (sharedWith?.esdb ?? (await startEsdbTestServer())) : null;
  if (esdb) env = { EVENT_STORE: 'esdb', EVENTSTORE_CONNECTION_STRING: esdb.connectionString, ...env };
  // Suites run side by side on one PostgreSQL cluster, and a suite's long transaction holds every
  // gap-safe feed of the cluster back (see README, operations note): reads wait longer than in production.
  const config = loadConfig({ DATABASE_URL: db.url, DATABASE_SCHEMA: db.schema, LOG_LEVEL: 'silent', NODE_ENV: 'test', CONSISTENCY_WAIT_MS: '10000', VECTOR_DIMENSION: '2', LORESTORE_MASTER_KEY: TEST_MASTER_KEY, ...env });
  const keys = ApiKeyRing.parse(`${ADMIN_KEY}:admin,${GAME_KEY}:game`);
  const app = await createApp({ config, databaseUrl: db.url, keys }, { logger: false, docsUi: false });
  const fastify = app.getHttpAdapter().getInstance();
  return {
    app,
    db,
    esdb,
    request: async ({ method, url, body, headers = {}, key = GAME_KEY }) => {
      const response = await fastify.inject({
        method,
        url,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      let parsed: unknown = response.body;
      try {
        parsed = JSON.parse(response.body);
      } catch {
        // not JSON (metrics text)
      }
      return { status: response.statusCode, body: parsed, headers: response.headers };
    },
    close: async () => {
      await app.close();
      if (!sharedWith) {
        await esdb?.close();
        await db.drop();
      }
    },
  };
};
