import { readFileSync } from 'node:fs';
import { Logger as NestLogger, type Logger, type Provider } from '@nestjs/common';
import type { Pool } from 'pg';
import type { EventStore } from '@lorestore/event-store';
import { MemoryHotState, ProjectionRunner, ReadModelStore, RedisHotState, type HotStateStore, type RedisHotStateOptions, type RunnerLogger } from '@lorestore/projections';
import { RebuildWorker } from '@lorestore/replay';
import {
  EmbeddedVectorIndex,
  MEMORY_PROJECTION,
  MemoryProjector,
  MemoryRebuildWorker,
  MemoryStore,
  PineconeVectorIndex,
  migrateSemanticMemory,
  type VectorIndex,
} from '@lorestore/semantic-memory';
import type { AppConfig } from '../config';
import { APP_CONFIG } from '../config';
import { Metrics } from '../metrics/metrics';
import { PG_POOL } from '../persistence/tokens';
import { PERSONAL_DATA } from '../privacy/privacy.providers';
import type { PersonalDataCodec } from '@lorestore/privacy';

export const HOT_STATE = Symbol('HOT_STATE');
export const READ_MODELS = Symbol('READ_MODELS');
export const PROJECTION_RUNNER = Symbol('PROJECTION_RUNNER');
export const MEMORY_STORE = Symbol('MEMORY_STORE');
export const VECTOR_INDEX = Symbol('VECTOR_INDEX');

/** REDIS_USERNAME / REDIS_PASSWORD, and TLS (REDIS_TLS, a rediss:// URL) with REDIS_TLS_CA_FILE's CAs and REDIS_TLS_SERVERNAME. */
export const redisAuth = (config: AppConfig): Pick<RedisHotStateOptions, 'username' | 'password' | 'tls'> => {
  const tls =
    config.REDIS_TLS || (!config.REDIS_CLUSTER_NODES && config.REDIS_URL?.startsWith('rediss://')) || config.REDIS_TLS_CA_FILE !== undefined || config.REDIS_TLS_SERVERNAME !== undefined;
  return {
    ...(config.REDIS_USERNAME !== undefined ? { username: config.REDIS_USERNAME } : {}),
    ...(config.REDIS_PASSWORD !== undefined ? { password: config.REDIS_PASSWORD } : {}),
    ...(tls
      ? {
          tls: {
            ...(config.REDIS_TLS_CA_FILE ? { ca: readFileSync(config.REDIS_TLS_CA_FILE) } : {}),
            ...(config.REDIS_TLS_SERVERNAME ? { servername: config.REDIS_TLS_SERVERNAME } : {}),
          },
        }
      : {}),
  };
};

/** Redis Cluster, one Redis node, or the in-process store, as configured. */
export const createHotState = (config: AppConfig): HotStateStore => {
  if (config.REDIS_CLUSTER_NODES || config.REDIS_URL) {
    return new RedisHotState({
      clusterNodes: config.REDIS_CLUSTER_NODES,
      url: config.REDIS_URL,
      keyPrefix: config.REDIS_KEY_PREFIX,
      ttlSeconds: config.HOT_STATE_TTL_SECONDS,
      connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
      commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
      ...redisAuth(config),
    });
  }
  return new MemoryHotState({ ttlSeconds: config.HOT_STATE_TTL_SECONDS, maxEntries: config.HOT_STATE_MEMORY_MAX_ENTRIES });
};

/** The runner's log lines through a Nest logger. */
const runnerLogger = (logger: Logger): RunnerLogger => ({ info: (m) => logger.log(m), warn: (m) => logger.warn(m), error: (m) => logger.error(m) });

export const createRunner = (
  config: AppConfig,
  deps: { store: EventStore; pool: Pool; readModels: ReadModelStore; hot: HotStateStore; metrics: Metrics; logger: Logger },
): ProjectionRunner =>
  new ProjectionRunner({
    store: deps.store,
    pool: deps.pool,
    readModels: deps.readModels,
    hot: deps.hot,
    batchSize: config.PROJECTION_BATCH_SIZE,
    catchUpBatchSize: config.PROJECTION_CATCH_UP_BATCH_SIZE,
    lockName: `lorestore.projector.${config.DATABASE_SCHEMA}`,
    partitions: { monthsBack: 1, monthsAhead: config.PLAYER_HISTORY_MONTHS_AHEAD, retentionMonths: config.PLAYER_HISTORY_RETENTION_MONTHS ?? null },
    // Readers look at the bypass at most every 250 ms (ProjectionsService.hotBypassed): settle 4× that.
    hotBypass: { afterMs: config.HOT_STATE_BYPASS_AFTER_MS, settleMs: 1000, probeMs: 1000 },
    reportFailures: true,
    logger: runnerLogger(deps.logger),
    onBatch: ({ events, ms }) => {
      deps.metrics.projectedEvents.inc(events);
      deps.metrics.projectionBatchDuration.observe(ms / 1000);
    },
  });

/** Rebuild jobs run where the live projections run, beside them. */
export const createRebuildWorker = (
  config: AppConfig,
  deps: { store: EventStore; pool: Pool; hot: HotStateStore; runner: ProjectionRunner; logger: Logger },
): RebuildWorker =>
  new RebuildWorker({
    pool: deps.pool,
    store: deps.store,
    hot: deps.hot,
    live: deps.runner,
    schema: config.DATABASE_SCHEMA,
    batchSize: config.PROJECTION_BATCH_SIZE,
    logger: runnerLogger(deps.logger),
  });

/** The NPC memory index: embedded (in process, over the rows in PostgreSQL) or Pinecone. */
export const createVectorIndex = (config: AppConfig, memories: MemoryStore, logger: Logger): VectorIndex =>
  config.VECTOR_INDEX === 'pinecone'
    ? new PineconeVectorIndex({
        apiKey: config.PINECONE_API_KEY!,
        host: config.PINECONE_HOST,
        indexName: config.PINECONE_INDEX,
        namespacePrefix: config.PINECONE_NAMESPACE_PREFIX,
        logger: { warn: (m) => logger.warn(m) },
      })
    : new EmbeddedVectorIndex(memories, {
        dimension: config.VECTOR_DIMENSION,
        exactMax: config.MEMORY_EXACT_MAX,
        maxBytes: config.MEMORY_INDEX_MAX_MB * 1024 * 1024,
        logger: { warn: (m) => logger.warn(m) },
      });

/** The vector-index projection and its rebuild jobs: where the live projections run. */
export const createMemoryProjection = (
  config: AppConfig,
  deps: { store: EventStore; pool: Pool; readModels: ReadModelStore; memories: MemoryStore; index: VectorIndex; metrics: Metrics; logger: Logger },
): { projector: MemoryProjector; rebuilds: MemoryRebuildWorker } => {
  const logger = runnerLogger(deps.logger);
  const projector: MemoryProjector = new MemoryProjector({
    store: deps.store,
    pool: deps.pool,
    memories: deps.memories,
    index: deps.index,
    checkpointName: MEMORY_PROJECTION,
    dimension: config.VECTOR_DIMENSION,
    batchSize: config.PROJECTION_BATCH_SIZE,
    lockName: `lorestore.memory-projector.${config.DATABASE_SCHEMA}`,
    logger,
    onBatch: ({ events }) => deps.metrics.memoryProjectedEvents.inc(events),
    // Shown as npc_memories' error until its next committed batch (which makes the row stale: no clearing needed).
    onError: (error) => void deps.readModels.recordFailure([MEMORY_PROJECTION], error, projector.position).catch(() => undefined),
  });
  const rebuilds = new MemoryRebuildWorker({
    pool: deps.pool,
    store: deps.store,
    live: projector,
    external: config.VECTOR_INDEX !== 'embedded',
    schema: config.DATABASE_SCHEMA,
    batchSize: config.PROJECTION_BATCH_SIZE,
    logger,
  });
  return { projector, rebuilds };
};

/** The read side's providers: read models, hot state, and (when PROJECTOR=inline) the runner that keeps them current. */
export const projectionProviders: Provider[] = [
  {
    provide: READ_MODELS,
    inject: [PG_POOL, APP_CONFIG],
    useFactory: async (pool: Pool, config: AppConfig) => {
      await ReadModelStore.migrate(pool, config.DATABASE_SCHEMA);
      return new ReadModelStore(pool);
    },
  },
  { provide: HOT_STATE, inject: [APP_CONFIG], useFactory: (config: AppConfig) => createHotState(config) },
  {
    provide: MEMORY_STORE,
    // After the read models' migrations: the memory rows' checkpoint lives in their table.
    inject: [PG_POOL, APP_CONFIG, PERSONAL_DATA, READ_MODELS],
    useFactory: async (pool: Pool, config: AppConfig, personal: PersonalDataCodec) => {
      await migrateSemanticMemory(pool, config.DATABASE_SCHEMA);
      // Memories about players stay sealed in the rows: the store opens them as it reads.
      const store = new MemoryStore(pool, MEMORY_PROJECTION, config.VECTOR_INDEX !== 'embedded', personal);
      const previous = await store.adoptIndexKind(config.VECTOR_INDEX);
      if (previous !== null && previous !== config.VECTOR_INDEX) {
        new NestLogger('VectorIndex').warn(`VECTOR_INDEX changed from ${previous} to ${config.VECTOR_INDEX}: every memory is sent to the new index`);
      }
      return store;
    },
  },
  {
    provide: VECTOR_INDEX,
    inject: [APP_CONFIG, MEMORY_STORE],
    useFactory: (config: AppConfig, memories: MemoryStore) => createVectorIndex(config, memories, new NestLogger('VectorIndex')),
  },
];
