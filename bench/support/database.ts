import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'pg';
import { startEmbeddedPostgres } from '@lorestore/infra';
import { log } from './env';

export type BenchDatabase = {
  url: string;
  source: 'DATABASE_URL' | 'embedded';
  /** Stops the embedded server (if we started one) and removes its files. */
  release: () => Promise<void>;
};

/** `DATABASE_URL` when set, else a throwaway embedded PostgreSQL. */
export const acquireDatabase = async (): Promise<BenchDatabase> => {
  const url = process.env.DATABASE_URL;
  if (url) return { url, source: 'DATABASE_URL', release: async () => undefined };
  // As root, postgres runs as the `postgres` user: every parent of the data
  // folder must be traversable by it, hence 0755 and not mkdtemp's 0700.
  const root = path.join(os.tmpdir(), `lorestore-bench-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(root, { mode: 0o755 });
  await chmod(root, 0o755);
  log(`DATABASE_URL is unset: starting an embedded PostgreSQL under ${root}`);
  const server = await startEmbeddedPostgres({ dataDir: path.join(root, 'data'), port: 0, persistent: false, database: 'bench' });
  return {
    url: server.url,
    source: 'embedded',
    release: async () => {
      await server.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
};

/** A schema name no other run uses: `<prefix>_<time>_<random>`. */
export const freshSchema = (prefix: string): string =>
  `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** A small pool without a search_path, for setup, settings and cleanup. */
export const adminPool = (url: string): Pool => {
  const pool = new Pool({ connectionString: url, max: 2, application_name: 'lorestore-bench' });
  pool.on('error', () => undefined);
  return pool;
};

export const dropSchemas = async (pool: Pool, schemas: string[]): Promise<void> => {
  for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
};

/**
 * Flushes dirty pages before a measurement so one contender does not pay for
 * the checkpoint of the one before it. Needs superuser or pg_checkpoint; skipped otherwise.
 */
export const checkpoint = async (pool: Pool): Promise<void> => {
  await pool.query('CHECKPOINT').catch(() => undefined);
};

/** Fresh statistics for every table of a schema, so the planner sees the tables as they are. */
export const analyzeSchema = async (pool: Pool, schema: string): Promise<void> => {
  const { rows } = await pool.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE schemaname = $1', [schema]);
  for (const { tablename } of rows) await pool.query(`ANALYZE ${quoteIdent(schema)}.${quoteIdent(tablename)}`);
};

/** The URL without its password, for the report. */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable url)';
  }
};
