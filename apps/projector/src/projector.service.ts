import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Pool } from 'pg';
import type { EventStore } from '@lorestore/event-store';
import type { HotStateStore, ProjectionRunner, ReadModelStore } from '@lorestore/projections';
import type { RebuildWorker } from '@lorestore/replay';
import type { MemoryProjector, MemoryRebuildWorker, MemoryStore, VectorIndex } from '@lorestore/semantic-memory';
import { APP_CONFIG, type AppConfig } from '../../state-api/src/config';
import { Metrics } from '../../state-api/src/metrics/metrics';
import { EVENT_STORE, PG_POOL } from '../../state-api/src/persistence/tokens';
import {
  HOT_STATE,
  MEMORY_STORE,
  READ_MODELS,
  VECTOR_INDEX,
  createMemoryProjection,
  createRebuildWorker,
  createRunner,
} from '../../state-api/src/projections/projections.providers';

/** Runs every projection from its checkpoint, and the rebuild jobs beside them, until the process is told to stop. */
@Injectable()
export class ProjectorService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Projector');
  private readonly runner: ProjectionRunner;
  private readonly rebuilds: RebuildWorker;
  private readonly memoryProjector: MemoryProjector;
  private readonly memoryRebuilds: MemoryRebuildWorker;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(EVENT_STORE) store: EventStore,
    @Inject(PG_POOL) pool: Pool,
    @Inject(READ_MODELS) readModels: ReadModelStore,
    @Inject(HOT_STATE) private readonly hot: HotStateStore,
    @Inject(MEMORY_STORE) memories: MemoryStore,
    @Inject(VECTOR_INDEX) private readonly vectorIndex: VectorIndex,
    metrics: Metrics,
  ) {
    this.runner = createRunner(config, {
      store,
      pool,
      readModels,
      hot,
      metrics,
      logger: this.logger,
    });
    this.rebuilds = createRebuildWorker(config, { store, pool, hot, runner: this.runner, logger: this.logger });
    ({ projector: this.memoryProjector, rebuilds: this.memoryRebuilds } = createMemoryProjection(config, { store, pool, readModels, memories, index: vectorIndex, metrics, logger: this.logger }));
  }

  onApplicationBootstrap(): void {
    this.logger.log(`hot state: ${this.hot.kind}; vector index: ${this.vectorIndex.kind}`);
    this.runner.start();
    this.rebuilds.start();
    this.memoryProjector.start();
    this.memoryRebuilds.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.memoryRebuilds.stop();
    await this.memoryProjector.stop();
    await this.vectorIndex.close();
    await this.rebuilds.stop();
    await this.runner.stop();
    await this.hot.close();
  }
}
