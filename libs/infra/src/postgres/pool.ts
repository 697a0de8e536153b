import type { Pool, PoolClient, PoolConfig } from 'pg';
import { BoundedPool, type BoundedPoolOptions } from './bounded-pool';

export type PostgresPoolOptions = {
  url: string;
  /** Every connection's search_path; lets tests and tenants use their own schema. */
  schema: string;
  max?: number;
  min?: number;
  applicationName?: string;
  /** Label in metrics and errors (default `primary`). */
  name?: string;
  /** Callers allowed to queue for a connection (default 100); the next is refused at once. */
  queueMax?: number;
  /** Longest wait for a connection, and connect timeout of a new one (default 5000 ms). */
  acquireTimeoutMs?: number;
  onAcquire?: BoundedPoolOptions['onAcquire'];
  onExhausted?: BoundedPoolOptions['onExhausted'];
  idleTimeoutMillis?: number;
  statementTimeoutMillis?: number;
  /** Errors of idle clients (server restart, network cut); the pool replaces them. */
  onIdleError?: (error: Error) => void;
};

export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** A bounded pool (see BoundedPool): at most `queueMax` waiters, each for at most `acquireTimeoutMs`. */
export const createPostgresPool = (options: PostgresPoolOptions): BoundedPool => {
  if (!SCHEMA_NAME.test(options.schema)) throw new Error(`invalid schema name ${options.schema}`);
  const config: PoolConfig = {
    connectionString: options.url,
    max: options.max ?? 20,
    min: options.min ?? 0,
    application_name: options.applicationName ?? 'lorestore',
    idleTimeoutMillis: options.idleTimeoutMillis ?? 30_000,
    options: `-c search_path=${options.schema},public`,
    ...(options.statementTimeoutMillis ? { statement_timeout: options.statementTimeoutMillis } : {}),
  };
  const pool = new BoundedPool({
    ...config,
    name: options.name ?? 'primary',
    queueMax: options.queueMax ?? 100,
    acquireTimeoutMs: options.acquireTimeoutMs ?? 5000,
    onAcquire: options.onAcquire,
    onExhausted: options.onExhausted,
  });
  // An idle client whose server went away emits 'error'; without a listener Node would crash the process.
  pool.on('error', (error) => options.onIdleError?.(error));
  // A checked-out client whose server goes away between two queries (a restart terminates every
  // session) emits 'error' too, and pg-pool listens only while a client is idle: without this, the
  // process would crash. The holder's next query fails and its release drops the broken client.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
};

/** Runs `work` in one transaction on one pooled connection: COMMIT when it resolves, ROLLBACK when it throws. */
export const withTransaction = async <T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> => {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
};
