import path from 'node:path';
import { z } from 'zod';

/**
 * Every setting the service reads, validated once at boot (12-factor). Unset
 * means the embedded default: `npm start` works on a bare machine.
 */
const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** PostgreSQL primary. Unset: an embedded PostgreSQL under DATA_DIR. */
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL identifier').default('lorestore'),
  DATABASE_POOL_MAX: int(2, 500).default(20),
  /** Where the embedded default keeps its PostgreSQL cluster and generated admin key. */
  DATA_DIR: z.string().min(1).default('.lorestore'),
  EMBEDDED_PG_PORT: int(0, 65535).default(0),
  EVENT_STORE: z.enum(['postgres', 'esdb']).default('postgres'),
  /** `key:role,key:role` with roles game and admin. */
  API_KEYS: z.string().optional(),
  API_KEYS_FILE: z.string().optional(),
  BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_REQUESTS: bool.default(false),
  GROUP_COMMIT_MAX_BATCH: int(1, 10_000).default(256),
  GROUP_COMMIT_CONCURRENCY: int(1, 64).default(2),
  /** How often a command with no expectedRevision is re-decided after losing a race on its stream. */
  COMMAND_RETRIES: int(0, 50).default(10),
  /** Folded aggregate states kept in memory, so a command reads only the events after them; 0 turns it off. */
  AGGREGATE_CACHE_SIZE: int(0, 10_000_000).default(10_000),
  /** Bound on the wait of a query carrying minPosition / X-Consistency-Token. */
  CONSISTENCY_WAIT_MS: int(0, 60_000).default(2000),
  SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),
});

export type AppConfig = z.infer<typeof configSchema> & { dataDir: string };

export const APP_CONFIG = Symbol('APP_CONFIG');

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): AppConfig => {
  // Empty strings mean "unset", as in most .env tooling.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  if (config.EVENT_STORE === 'esdb') {
    throw new ConfigError('EVENT_STORE=esdb is not available in this version yet; use EVENT_STORE=postgres (the default)');
  }
  if (config.NODE_ENV === 'production' && !config.API_KEYS && !config.API_KEYS_FILE) {
    throw new ConfigError('API_KEYS (or API_KEYS_FILE) is required when NODE_ENV=production');
  }
  return { ...config, dataDir: path.resolve(config.DATA_DIR) };
};
