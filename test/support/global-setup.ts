import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '../../libs/infra/src/postgres/embedded';
import { REQUIRE_SERVICES, START_POSTGRES_HINT, START_REDIS_HINT } from './services';

declare global {
  var __LORESTORE_EMBEDDED_PG__: RunningEmbeddedPostgres | undefined;
}

const reachable = async (url: string): Promise<string | null> => {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
};

const redisReachable = async (url: string): Promise<string | null> => {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    client.disconnect();
  }
};

/** Redis: REDIS_URL, else the default local server; missing, its suites are skipped (or, in CI, the run fails). */
const setUpRedis = async (): Promise<void> => {
  const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const problem = await redisReachable(url);
  if (!problem) {
    process.env.LORESTORE_TEST_REDIS_URL = url;
    console.log(`[lorestore tests] Redis: ${url}`);
    return;
  }
  if (REQUIRE_SERVICES) throw new Error(`Redis at ${url} is unreachable (${problem}) and LORESTORE_REQUIRE_SERVICES=1; ${START_REDIS_HINT}`);
  process.env.LORESTORE_TEST_REDIS_SKIPPED = `Redis unreachable at ${url} (${problem}); ${START_REDIS_HINT}`;
  console.warn(`[lorestore tests] ${process.env.LORESTORE_TEST_REDIS_SKIPPED}. Redis suites are skipped.`);
};

export default async function globalSetup(): Promise<void> {
  await setUpRedis();
  await setUpPostgres();
}

async function setUpPostgres(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const problem = await reachable(url);
    if (!problem) {
      process.env.LORESTORE_TEST_DATABASE_URL = url;
      console.log(`\n[lorestore tests] PostgreSQL: ${url.replace(/:[^:@/]*@/, ':***@')}`);
      return;
    }
    if (REQUIRE_SERVICES) {
      throw new Error(`PostgreSQL at DATABASE_URL is unreachable (${problem}) and LORESTORE_REQUIRE_SERVICES=1; ${START_POSTGRES_HINT}`);
    }
    console.warn(`\n[lorestore tests] PostgreSQL at DATABASE_URL unreachable (${problem}); ${START_POSTGRES_HINT}. Falling back to embedded PostgreSQL.`);
  } else if (REQUIRE_SERVICES) {
    throw new Error('LORESTORE_REQUIRE_SERVICES=1 needs DATABASE_URL pointing at a real PostgreSQL server');
  }
  // A folder other users can traverse: as root, embedded PostgreSQL runs as the `postgres` user.
  const base = path.join(os.tmpdir(), 'lorestore-test');
  await mkdir(base, { recursive: true, mode: 0o755 });
  const embedded = await startEmbeddedPostgres({
    dataDir: path.join(base, `pg-${process.pid}-${Date.now()}`),
    port: 0,
    persistent: false,
    database: 'test',
  });
  globalThis.__LORESTORE_EMBEDDED_PG__ = embedded;
  process.env.LORESTORE_TEST_DATABASE_URL = embedded.url;
  console.log(`\n[lorestore tests] PostgreSQL: embedded server on port ${embedded.port} (set DATABASE_URL to use your own)`);
}
