/** A minimal, reproducible environment for the servers a bench starts: nothing of ours leaks in but PATH and HOME. */
export const baseEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
});

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
  RATE_LIMIT_MAX: '0',
  LOG_LEVEL: 'warn',
});
