import { Inject, Injectable, Logger, type OnApplicationBootstrap, type Provider } from '@nestjs/common';
import { REDUCER_VERSIONS } from '@lorestore/domain';
import type { Pool } from 'pg';
import { PostgresEventStore, type EventStore } from '@lorestore/event-store';
import { ALL_PROJECTIONS } from '@lorestore/projections';
import { READ_MODELS_JOB, RebuildJobs, Rollbacks, SnapshotStore, StateAt } from '@lorestore/replay';
import { MEMORY_PROJECTION } from '@lorestore/semantic-memory';
import { APP_CONFIG, type AppConfig } from '../config';
import { EVENT_STORE, PG_POOL } from '../persistence/tokens';

export const SNAPSHOTS = Symbol('SNAPSHOTS');
export const STATE_AT = Symbol('STATE_AT');
export const ROLLBACKS = Symbol('ROLLBACKS');
export const REBUILD_JOBS = Symbol('REBUILD_JOBS');

const logger = new Logger('Replay');

/**
 * At start, in the background: snapshots made by other reducer versions are
 * never read again (state-at asks for the current version only), so they go.
 */
@Injectable()
export class SnapshotPruner implements OnApplicationBootstrap {
  constructor(@Inject(SNAPSHOTS) private readonly snapshots: SnapshotStore) {}

  onApplicationBootstrap(): void {
    this.snapshots
      .pruneStale(REDUCER_VERSIONS)
      .then((n) => n > 0 && logger.log(`deleted ${n} snapshot(s) of earlier reducer versions`))
      .catch((error: unknown) => logger.warn(`stale snapshots not pruned: ${String(error)}`));
  }
}

/** Snapshots, state-at, rollbacks and rebuild jobs, on the service's pool and event store. */
export const replayProviders: Provider[] = [
  { provide: SNAPSHOTS, inject: [PG_POOL], useFactory: (pool: Pool) => new SnapshotStore(pool) },
  {
    provide: STATE_AT,
    inject: [EVENT_STORE, PG_POOL, SNAPSHOTS, APP_CONFIG],
    useFactory: (store: EventStore, pool: Pool, snapshots: SnapshotStore, config: AppConfig) =>
      new StateAt({ store, pool, snapshots, snapshotEvery: config.SNAPSHOT_EVERY, onSnapshotError: (e) => logger.warn(`snapshot not saved: ${String(e)}`) }),
  },
  {
    provide: ROLLBACKS,
    inject: [EVENT_STORE, PG_POOL, STATE_AT],
    useFactory: (store: EventStore, pool: Pool, stateAt: StateAt) => {
      // All-or-nothing over many streams needs the log's own transaction: PostgreSQL.
      if (!(store instanceof PostgresEventStore)) throw new Error('rollbacks need the PostgreSQL event store');
      return new Rollbacks({ store, pool, stateAt });
    },
  },
  // Every projection can be rebuilt from the API: the read models and the NPC memory index.
  {
    provide: REBUILD_JOBS,
    inject: [PG_POOL],
    useFactory: (pool: Pool) => new RebuildJobs(pool, [...ALL_PROJECTIONS.map((p) => p.name), READ_MODELS_JOB, MEMORY_PROJECTION]),
  },
  SnapshotPruner,
];
