import { Inject, Logger, Module, Optional, type DynamicModule, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import { EsdbEventStore, EsdbMirror, MirroredEventStore, PostgresEventStore } from '@lorestore/event-store';
import { migrateReplay } from '@lorestore/replay';
import { APP_CONFIG, type AppConfig } from '../config';
import { Metrics } from '../metrics/metrics';
import { Database } from './database';
import { DATABASE, ESDB_MIRROR, EVENT_STORE, PG_POOL } from './tokens';

const logger = new Logger('EventStore');
const mirrorLogger = { info: (m: string) => logger.log(m), warn: (m: string) => logger.warn(m), error: (m: string) => logger.error(m) };

/**
 * The PostgreSQL pool and the event store on it; migrations run before the
 * app takes traffic. EVENT_STORE=esdb: appends go to EventStoreDB, reads to
 * its PostgreSQL mirror, which every process runs (one leads and writes,
 * the others stand by), so commands are answered even with no projector up.
 */
@Module({})
export class PersistenceModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(EVENT_STORE) private readonly store: PostgresEventStore,
    @Inject(DATABASE) private readonly database: Database,
    @Optional() @Inject(ESDB_MIRROR) private readonly mirror: EsdbMirror | null,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.mirror?.start();
    await this.database.start();
  }

  static forRoot(databaseUrl: string): DynamicModule {
    return {
      module: PersistenceModule,
      global: true,
      providers: [
        {
          provide: DATABASE,
          inject: [APP_CONFIG, Metrics],
          useFactory: async (config: AppConfig, metrics: Metrics) => {
            const database = new Database(config, databaseUrl, metrics);
            await PostgresEventStore.migrate(database.primary, config.DATABASE_SCHEMA);
            await migrateReplay(database.primary, config.DATABASE_SCHEMA);
            return database;
          },
        },
        { provide: PG_POOL, inject: [DATABASE], useFactory: (database: Database) => database.primary },
        {
          provide: EVENT_STORE,
          inject: [PG_POOL, APP_CONFIG, Metrics],
          useFactory: (pool: Pool, config: AppConfig, metrics: Metrics) => {
            const options = {
              pool,
              schema: config.DATABASE_SCHEMA,
              groupCommit: { maxBatchSize: config.GROUP_COMMIT_MAX_BATCH, maxConcurrentBatches: config.GROUP_COMMIT_CONCURRENCY },
              fastAppend: config.APPEND_FAST_PATH,
              onFastAppendFallback: () => metrics.appendFastPathFallbacks.inc(),
              onBatch: (size: number, ms: number) => {
                metrics.appendBatchSize.observe(size);
                metrics.appendBatchDuration.observe(ms / 1000);
              },
            };
            if (config.EVENT_STORE !== 'esdb') return new PostgresEventStore(options);
            const esdb = new EsdbEventStore({ connectionString: config.EVENTSTORE_CONNECTION_STRING!, logger: { warn: (m) => logger.warn(m) } });
            return new MirroredEventStore({ ...options, esdb, mirrorWaitMs: config.MIRROR_WAIT_MS });
          },
        },
        {
          provide: ESDB_MIRROR,
          inject: [PG_POOL, APP_CONFIG, EVENT_STORE, Metrics],
          useFactory: (pool: Pool, config: AppConfig, store: PostgresEventStore, metrics: Metrics) => {
            if (!(store instanceof MirroredEventStore)) return null;
            return new EsdbMirror({
              esdb: store.esdb,
              pool,
              lockName: `lorestore.esdb-mirror.${config.DATABASE_SCHEMA}`,
              batchSize: config.PROJECTION_BATCH_SIZE,
              logger: mirrorLogger,
              delayMs: config.MIRROR_TEST_DELAY_MS,
              onCommitted: (ids) => {
                metrics.mirroredEvents.inc(ids.length);
                store.mirroredNow();
              },
            });
          },
        },
      ],
      exports: [DATABASE, PG_POOL, EVENT_STORE, ESDB_MIRROR],
    };
  }

  /** Every append already accepted is committed before the pool closes. */
  async onApplicationShutdown(): Promise<void> {
    await this.mirror?.stop();
    await this.store.close();
    if (this.store instanceof MirroredEventStore) await this.store.esdb.close();
    await this.database.close();
  }
}
