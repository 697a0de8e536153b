import 'reflect-metadata';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ApiKeyRing } from '../../apps/state-api/src/auth/api-keys';
import { createApp } from '../../apps/state-api/src/bootstrap';
import { loadConfig } from '../../apps/state-api/src/config';
import { createTestSchema, type TestSchema } from './database';

export const ADMIN_KEY = 'admin-key-for-tests';
export const GAME_KEY = 'game-key-for-tests';

export type TestApp = {
  app: NestFastifyApplication;
  db: TestSchema;
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
  const db = sharedWith ? sharedWith.db : await createTestSchema(label);
  if (!sharedWith) await db.pool.end();
  // Suites run side by side on one PostgreSQL cluster, and a suite's long transaction holds every
  // gap-safe feed of the cluster back (see README, operations note): reads wait longer than in production.
  const config = loadConfig({ DATABASE_URL: db.url, DATABASE_SCHEMA: db.schema, LOG_LEVEL: 'silent', NODE_ENV: 'test', CONSISTENCY_WAIT_MS: '10000', VECTOR_DIMENSION: '2', ...env });
  const keys = ApiKeyRing.parse(`${ADMIN_KEY}:admin,${GAME_KEY}:game`);
  const app = await createApp({ config, databaseUrl: db.url, keys }, { logger: false, docsUi: false });
  const fastify = app.getHttpAdapter().getInstance();
  return {
    app,
    db,
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
      if (!sharedWith) await db.drop();
    },
  };
};
