import { Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import { PostgresEventStore } from '@lorestore/event-store';
import { migrateReplay } from '@lorestore/replay';
import { createPostgresPool } from '@lorestore/infra';
import { APP_CONFIG, type AppConfig } from '../config';
import { Metrics } from '../metrics/metrics';
import { EVENT_STORE, PG_POOL } from './tokens';

/** The PostgreSQL pool and the event store on it; migrations run before the app takes traffic. */
@Module({})
export class PersistenceModule implements OnApplicationShutdown {
  constructor(
    @Inject(EVENT_STORE) private readonly store: PostgresEventStore,
    @Inject(PG_POOL) private readonly pool: Pool,
  ) {}

  static forRoot(databaseUrl: string): DynamicModule {
    return {
      module: PersistenceModule,
      global: true,
      providers: [
        {
          provide: PG_POOL,
          inject: [APP_CONFIG],
          useFactory: async (config: AppConfig) => {
            const pool = createPostgresPool({
              url: databaseUrl,
              schema: config.DATABASE_SCHEMA,
              max: config.DATABASE_POOL_MAX,
              applicationName: 'lorestore-state-api',
            });
            await PostgresEventStore.migrate(pool, config.DATABASE_SCHEMA);
            await migrateReplay(pool, config.DATABASE_SCHEMA);
            return pool;
          },
        },
        {
          provide: EVENT_STORE,
          inject: [PG_POOL, APP_CONFIG, Metrics],
          useFactory: (pool: Pool, config: AppConfig, metrics: Metrics) =>
            new PostgresEventStore({
              pool,
              schema: config.DATABASE_SCHEMA,
              groupCommit: { maxBatchSize: config.GROUP_COMMIT_MAX_BATCH, maxConcurrentBatches: config.GROUP_COMMIT_CONCURRENCY },
              onBatch: (size, ms) => {
                metrics.appendBatchSize.observe(size);
                metrics.appendBatchDuration.observe(ms / 1000);
              },
            }),
        },
      ],
      exports: [PG_POOL, EVENT_STORE],
    };
  }

  /** Every append already accepted is committed before the pool closes. */
  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
    await this.pool.end();
  }
}
