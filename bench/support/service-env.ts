/** A minimal, reproducible environment for the servers a bench starts: nothing of ours leaks in but PATH and HOME. */
export const baseEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
});

/** The master key of every bench deployment: 32 bytes, fixed, for throw-away databases only. */
export const BENCH_MASTER_KEY = Buffer.alloc(32, 0x42).toString('base64');

/**
 * The built state-api as the benches run it: production mode on loopback,
 * quiet logs, and no rate limit (one key drives the whole load: the per-key
 * limit would cap it). Callers add PROJECTOR, Redis and the like.
 */
export const serviceEnv = (options: { port: number; databaseUrl: string; schema: string; apiKeys: string }): NodeJS.ProcessEnv => ({
  ...baseEnv(),
  NODE_ENV: 'production',
  PORT: String(options.port),
  HOST: '127.0.0.1',
  DATABASE_URL: options.databaseUrl,
  DATABASE_SCHEMA: options.schema,
  API_KEYS: options.apiKeys,
  // Production mode needs a master key; every process of one bench shares it (a fixed bench key, never a real one).
  LORESTORE_MASTER_KEY: BENCH_MASTER_KEY,
  RATE_LIMIT_MAX: '0',
  LOG_LEVEL: 'warn',
});
