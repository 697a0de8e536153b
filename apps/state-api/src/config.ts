import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseMasterKey } from '@lorestore/privacy';

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
  /** Connections the primary pool keeps open when idle, and at most opens. */
  DATABASE_POOL_MIN: int(0, 500).default(10),
  DATABASE_POOL_MAX: int(2, 500).default(50),
  /** Callers that may wait for a connection of one pool; the next gets 503 at once. */
  POOL_QUEUE_MAX: int(0, 100_000).default(100),
  /** Longest wait for a connection; then 503 with Retry-After. */
  POOL_ACQUIRE_TIMEOUT_MS: int(10, 120_000).default(5000),
  /** Streaming replicas for reads, comma-separated postgres:// URLs. */
  DATABASE_REPLICA_URLS: z
    .string()
    .transform((v) => v.split(',').map((u) => u.trim()).filter((u) => u !== ''))
    .pipe(z.array(z.url({ protocol: /^postgres(ql)?$/, message: 'each replica must be a postgres:// URL' })))
    .optional(),
  REPLICA_POOL_MIN: int(0, 500).default(2),
  REPLICA_POOL_MAX: int(1, 500).default(50),
  /** Share of read-model reads sent to replicas when one is in rotation. */
  REPLICA_READ_SHARE: z.coerce.number().min(0).max(1).default(0.8),
  /** A replica further behind the primary than this is taken out of rotation until it catches up. */
  REPLICA_MAX_LAG_MS: int(1, 600_000).default(100),
  /** How often the primary's and replicas' WAL positions are sampled to measure lag. */
  REPLICA_SAMPLE_MS: int(10, 60_000).default(100),
  /** Autoscale signal (+1): more than this many callers waiting for a connection … */
  AUTOSCALE_UP_QUEUE: int(0, 100_000).default(50),
  /** … or one waiting longer than this. */
  AUTOSCALE_UP_WAIT_MS: int(1, 600_000).default(1000),
  /** Autoscale signal (−1): fewer waiting than this … */
  AUTOSCALE_DOWN_QUEUE: int(0, 100_000).default(5),
  /** … for this long without a break. */
  AUTOSCALE_DOWN_WINDOW_MS: int(0, 86_400_000).default(300_000),
  /** Requests per API key (or client address without one) within RATE_LIMIT_WINDOW_MS; 0 turns the limit off. */
  RATE_LIMIT_MAX: int(0, 100_000_000).default(60_000),
  RATE_LIMIT_WINDOW_MS: int(100, 3_600_000).default(10_000),
  /** Where the embedded default keeps its PostgreSQL cluster and generated admin key. */
  DATA_DIR: z.string().min(1).default('.lorestore'),
  EMBEDDED_PG_PORT: int(0, 65535).default(0),
  /** `postgres`: PostgreSQL is the log. `esdb`: EventStoreDB/KurrentDB is, mirrored into PostgreSQL. */
  EVENT_STORE: z.enum(['postgres', 'esdb']).default('postgres'),
  /** `esdb://host:2113?tls=false`, `esdb+discover://…` for a cluster: as the official client takes it. */
  EVENTSTORE_CONNECTION_STRING: z.string().regex(/^esdb(\+discover)?:\/\//, 'an esdb:// or esdb+discover:// connection string').optional(),
  /** EventStoreDB mode: how long a command waits for the mirror before answering `mirrored: false`. */
  MIRROR_WAIT_MS: int(0, 60_000).default(2000),
  /** Tests only: the mirror holds every batch this long (forces the window between EventStoreDB's acknowledgement and the mirror). */
  MIRROR_TEST_DELAY_MS: int(0, 600_000).optional(),
  /** `key:role,key:role` with roles game and admin. */
  API_KEYS: z.string().optional(),
  API_KEYS_FILE: z.string().optional(),
  /**
   * Wraps every player's data key (personal data is sealed per player): 32
   * random bytes, base64 or hex (`openssl rand -base64 32`). Required with
   * NODE_ENV=production; otherwise unset means a key generated once under
   * DATA_DIR (master.key). Lose it and no personal data can be read again.
   */
  LORESTORE_MASTER_KEY: z
    .string()
    .refine((text) => {
      try {
        parseMasterKey(text);
        return true;
      } catch {
        return false;
      }
    }, '32 random bytes as base64 (44 characters) or hex (64); make one with: openssl rand -base64 32')
    .optional(),
  /** Player data keys kept unwrapped in memory per process. */
  PRIVACY_KEY_CACHE_SIZE: int(100, 10_000_000).default(100_000),
  /** How long a cached key is trusted without hearing of an erasure (erasures are told at once by NOTIFY; this bounds a missed notice). */
  PRIVACY_KEY_CACHE_TTL_MS: int(1000, 3_600_000).default(60_000),
  BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_REQUESTS: bool.default(false),
  GROUP_COMMIT_MAX_BATCH: int(1, 10_000).default(256),
  GROUP_COMMIT_CONCURRENCY: int(1, 64).default(2),
  /** Batches of plain appends take the short path (migration 004); false sends every batch through append_batch. */
  APPEND_FAST_PATH: bool.default(true),
  /** How often a command with no expectedRevision is re-decided after losing a race on its stream. */
  COMMAND_RETRIES: int(0, 50).default(10),
  /** Folded aggregate states kept in memory, so a command reads only the events after them; 0 turns it off. */
  AGGREGATE_CACHE_SIZE: int(0, 10_000_000).default(10_000),
  /** Bound on the wait of a query carrying minPosition / X-Consistency-Token. */
  CONSISTENCY_WAIT_MS: int(0, 60_000).default(2000),
  SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),
  /**
   * After SIGTERM, keep serving this long with /health/ready at 503, so a load balancer takes the
   * instance out before its listener closes (Kubernetes: a few seconds, within terminationGracePeriodSeconds).
   */
  SHUTDOWN_DRAIN_DELAY_MS: int(0, 120_000).default(0),
  /** Hot state on one Redis node, e.g. redis://127.0.0.1:6379/0. */
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  /** Hot state on a Redis Cluster: seed nodes `host:port,host:port`. Wins over REDIS_URL. */
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, 'host:port,host:port')
    .transform((v) => v.split(',').map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })))
    .optional(),
  /** Prepended to every hot-state key, so several deployments can share one Redis. */
  REDIS_KEY_PREFIX: z.string().max(64).regex(/^[^{}\s]*$/, 'no braces or spaces').default(''),
  /** Redis AUTH (managed Redis needs it): an ACL user (Redis 6+) and/or password; credentials in REDIS_URL win over these. */
  REDIS_USERNAME: z.string().min(1).max(256).optional(),
  REDIS_PASSWORD: z.string().min(1).max(4096).optional(),
  /** TLS to every Redis node (a `rediss://` REDIS_URL turns it on by itself). */
  REDIS_TLS: bool.default(false),
  /** PEM file of the CA(s) that signed the Redis servers' certificates, when that is not a public CA. */
  REDIS_TLS_CA_FILE: z
    .string()
    .min(1)
    .refine((file) => {
      try {
        return /-----BEGIN CERTIFICATE-----/.test(readFileSync(file, 'utf8'));
      } catch {
        return false;
      }
    }, 'a readable PEM file with at least one CERTIFICATE')
    .optional(),
  /**
   * The name the Redis certificates are checked against, when nodes are dialled by an address the
   * certificate does not name (a Cluster whose nodes announce IP addresses).
   */
  REDIS_TLS_SERVERNAME: z.string().min(1).max(253).regex(/^[A-Za-z0-9.-]+$/, 'a host name').optional(),
  REDIS_CONNECT_TIMEOUT_MS: int(100, 60_000).default(5000),
  REDIS_COMMAND_TIMEOUT_MS: int(10, 60_000).default(5000),
  /** A hot-state read slower than this answers from PostgreSQL instead. */
  REDIS_READ_TIMEOUT_MS: int(1, 60_000).default(50),
  /**
   * After Redis has refused the projector's writes this long, the read models are committed without it
   * (reads answer from PostgreSQL) until it is back and caught up.
   */
  HOT_STATE_BYPASS_AFTER_MS: int(100, 600_000).default(2000),
  /** TTL of each hot-state document, refreshed on every write. */
  HOT_STATE_TTL_SECONDS: int(1, 30 * 86_400).default(3600),
  /** Documents kept by the in-process hot state (no REDIS_URL / REDIS_CLUSTER_NODES). */
  HOT_STATE_MEMORY_MAX_ENTRIES: int(0, 10_000_000).default(100_000),
  /** `inline`: this process runs the projections (the embedded default); `external`: `npm run start:projector` does. */
  PROJECTOR: z.enum(['inline', 'external']).default('inline'),
  /** Events per projector transaction. */
  PROJECTION_BATCH_SIZE: int(1, 100_000).default(1000),
  /** Events per read-model projector transaction while it is behind (a read came back full); at least PROJECTION_BATCH_SIZE. */
  PROJECTION_CATCH_UP_BATCH_SIZE: int(1, 100_000).default(5000),
  /** Monthly player_history partitions created ahead of now. */
  PLAYER_HISTORY_MONTHS_AHEAD: int(1, 120).default(3),
  /** Drop player_history partitions older than this many months; unset keeps everything. */
  PLAYER_HISTORY_RETENTION_MONTHS: int(1, 1200).optional(),
  /** A snapshot of an aggregate's state every this many events of its stream (state-at folds at most this many). */
  SNAPSHOT_EVERY: int(10, 1_000_000).default(100),
  /** Where NPC memories are searched: `embedded` (in process, over the rows in PostgreSQL) or `pinecone`. */
  VECTOR_INDEX: z.enum(['embedded', 'pinecone']).default('embedded'),
  /** The length of every embedding, fixed per deployment (1,536 for OpenAI's text-embedding-3-small). */
  VECTOR_DIMENSION: int(1, 4096).default(1536),
  PINECONE_API_KEY: z.string().min(1).optional(),
  /** The index's name (the client looks its host up) … */
  PINECONE_INDEX: z.string().min(1).optional(),
  /** … or its data-plane host, e.g. https://memories-abc123.svc.aped-1234.pinecone.io. */
  PINECONE_HOST: z.string().min(1).optional(),
  /** Prepended to each world's namespace, so deployments can share an index. */
  PINECONE_NAMESPACE_PREFIX: z.string().max(64).default(''),
  /** NPCs with at most this many memories are searched exactly; larger ones by an i8 scan and an exact re-rank. */
  MEMORY_EXACT_MAX: int(1, 10_000_000).default(4096),
  /** Memory vectors the embedded index keeps in process, in MiB (least recently searched NPCs dropped beyond). */
  MEMORY_INDEX_MAX_MB: int(16, 1_048_576).default(2048),
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
  if (config.EVENT_STORE === 'esdb' && !config.EVENTSTORE_CONNECTION_STRING) {
    throw new ConfigError('EVENT_STORE=esdb needs EVENTSTORE_CONNECTION_STRING (e.g. esdb://127.0.0.1:2113?tls=false)');
  }
  if (config.MIRROR_TEST_DELAY_MS !== undefined && config.NODE_ENV === 'production') {
    throw new ConfigError('MIRROR_TEST_DELAY_MS is for tests only');
  }
  if (config.VECTOR_INDEX === 'pinecone' && (!config.PINECONE_API_KEY || (!config.PINECONE_INDEX && !config.PINECONE_HOST))) {
    throw new ConfigError('VECTOR_INDEX=pinecone needs PINECONE_API_KEY and PINECONE_INDEX (or PINECONE_HOST)');
  }
  if (config.DATABASE_REPLICA_URLS?.length && !config.DATABASE_URL) {
    throw new ConfigError('DATABASE_REPLICA_URLS needs DATABASE_URL (the primary they replicate)');
  }
  if (config.DATABASE_POOL_MIN > config.DATABASE_POOL_MAX) {
    throw new ConfigError(`DATABASE_POOL_MIN (${config.DATABASE_POOL_MIN}) is above DATABASE_POOL_MAX (${config.DATABASE_POOL_MAX})`);
  }
  if (config.REPLICA_POOL_MIN > config.REPLICA_POOL_MAX) {
    throw new ConfigError(`REPLICA_POOL_MIN (${config.REPLICA_POOL_MIN}) is above REPLICA_POOL_MAX (${config.REPLICA_POOL_MAX})`);
  }
  const redisSettings = [
    ...(['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS_CA_FILE', 'REDIS_TLS_SERVERNAME'] as const).filter((k) => config[k] !== undefined),
    ...(config.REDIS_TLS ? ['REDIS_TLS'] : []),
  ];
  if (redisSettings.length > 0 && !config.REDIS_URL && !config.REDIS_CLUSTER_NODES) {
    throw new ConfigError(`${redisSettings.join(', ')} set, but no Redis to use them for: set REDIS_URL or REDIS_CLUSTER_NODES (without either, hot state is kept in process)`);
  }
  if (config.REDIS_USERNAME !== undefined && config.REDIS_PASSWORD === undefined && !(config.REDIS_URL && new URL(config.REDIS_URL).password)) {
    throw new ConfigError('REDIS_USERNAME needs REDIS_PASSWORD (or a password in REDIS_URL): AUTH with a user alone is not an ACL login');
  }
  if (config.NODE_ENV === 'production' && !config.API_KEYS && !config.API_KEYS_FILE) {
    throw new ConfigError('API_KEYS (or API_KEYS_FILE) is required when NODE_ENV=production');
  }
  if (config.NODE_ENV === 'production' && !config.LORESTORE_MASTER_KEY) {
    throw new ConfigError(
      'LORESTORE_MASTER_KEY is required when NODE_ENV=production: it wraps the players\' data keys (make one with `openssl rand -base64 32` and keep it in your secret store; lose it and no personal data can be read again)',
    );
  }
  return { ...config, dataDir: path.resolve(config.DATA_DIR) };
};
