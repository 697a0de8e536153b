import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AutoscaleSignal, PoolStats, ReplicaStatus } from '@lorestore/infra';

/** The service's Prometheus metrics, on a registry of its own (one per app instance). */
@Injectable()
export class Metrics {
  readonly registry = new Registry();

  readonly commands = new Counter({
    name: 'lorestore_commands_total',
    help: 'Commands handled, by type and outcome (ok, duplicate, refused, conflict, error)',
    labelNames: ['type', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly erasures = new Counter({
    name: 'lorestore_privacy_erasures_total',
    help: 'Player erasures made by this instance (a repeated erasure is not counted)',
    registers: [this.registry],
  });

  readonly exports = new Counter({
    name: 'lorestore_privacy_exports_total',
    help: 'Player data exports served by this instance',
    registers: [this.registry],
  });

  readonly unreadableValues = new Counter({
    name: 'lorestore_privacy_unreadable_values_total',
    help: 'Sealed values whose player key exists but does not open them (altered data, or a key mix-up): alert on any',
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'lorestore_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly appendBatchSize = new Histogram({
    name: 'lorestore_append_batch_size',
    help: 'Appends written per group commit',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });

  readonly appendBatchDuration = new Histogram({
    name: 'lorestore_append_batch_duration_seconds',
    help: 'Time to write and commit one group-commit batch',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });

  readonly appendFastPathFallbacks = new Counter({
    name: 'lorestore_append_fast_path_fallbacks_total',
    help: 'Group-commit batches that were not all plain appends: their short-path attempt rolled back and append_batch ran them',
    registers: [this.registry],
  });

  readonly projectedEvents = new Counter({
    name: 'lorestore_projector_events_total',
    help: 'Events this process has projected (PROJECTOR=inline)',
    registers: [this.registry],
  });

  readonly projectionBatchDuration = new Histogram({
    name: 'lorestore_projector_batch_duration_seconds',
    help: 'Time to project one batch: load, plan, write hot state, commit',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  readonly mirroredEvents = new Counter({
    name: 'lorestore_esdb_mirrored_events_total',
    help: 'EventStoreDB mode: events this process has written into the PostgreSQL mirror',
    registers: [this.registry],
  });

  readonly memoryProjectedEvents = new Counter({
    name: 'lorestore_memory_projector_events_total',
    help: 'Events the NPC memory projection has read in this process (PROJECTOR=inline or the projector app)',
    registers: [this.registry],
  });

  readonly memorySearchDuration = new Histogram({
    name: 'lorestore_memory_search_duration_seconds',
    help: 'NPC memory searches: candidates from the vector index, rows, scoring, last-access update',
    labelNames: ['index'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });

  readonly hotReads = new Counter({
    name: 'lorestore_hot_state_reads_total',
    help: 'Hot-state reads by result: hit, miss (filled from PostgreSQL), error or timeout (answered from PostgreSQL)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly poolWait = new Histogram({
    name: 'lorestore_db_pool_wait_seconds',
    help: 'Time a caller waited for a database connection, per pool',
    labelNames: ['pool'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly poolExhausted = new Counter({
    name: 'lorestore_db_pool_exhausted_total',
    help: 'Callers refused a connection (answered 503): reason queue-full (at once) or timeout (after POOL_ACQUIRE_TIMEOUT_MS)',
    labelNames: ['pool', 'reason'] as const,
    registers: [this.registry],
  });

  readonly readsRouted = new Counter({
    name: 'lorestore_db_reads_total',
    help: 'Read-model reads by the database that answered them: primary or a replica',
    labelNames: ['target'] as const,
    registers: [this.registry],
  });

  /** Per-pool gauges (in use, idle, waiting, max), read at scrape time. */
  registerPools(pools: () => PoolStats[]): void {
    const gauge = (name: string, help: string, pick: (p: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['pool'] as const,
        registers: [this.registry],
        collect() {
          for (const p of pools()) this.set({ pool: p.name }, pick(p));
        },
      });
    gauge('lorestore_db_pool_in_use', 'Connections checked out', (p) => p.inUse);
    gauge('lorestore_db_pool_idle', 'Open connections not in use', (p) => p.idle);
    gauge('lorestore_db_pool_waiting', 'Callers queued for a connection', (p) => p.waiting);
    gauge('lorestore_db_pool_max', 'Most connections the pool opens', (p) => p.max);
  }

  registerReplicas(statuses: () => ReplicaStatus[]): void {
    new Gauge({
      name: 'lorestore_db_replica_lag_seconds',
      help: 'Measured replay lag of each read replica behind the primary (absent while down)',
      labelNames: ['replica'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of statuses()) if (r.lagMs !== null) this.set({ replica: r.name }, r.lagMs / 1000);
      },
    });
    new Gauge({
      name: 'lorestore_db_replica_in_rotation',
      help: '1 while the replica takes reads, 0 while it is down or lags beyond REPLICA_MAX_LAG_MS',
      labelNames: ['replica'] as const,
      registers: [this.registry],
      collect() {
        for (const r of statuses()) this.set({ replica: r.name }, r.inRotation ? 1 : 0);
      },
    });
  }

  /**
   * `lorestore_autoscale_signal{reason}`: +1 scale out, 0 hold, −1 scale in, one
   * series at a time (the reason label says which rule decided), for an HPA or KEDA.
   */
  registerAutoscale(signal: AutoscaleSignal): void {
    new Gauge({
      name: 'lorestore_autoscale_signal',
      help: 'Autoscale signal by the brief’s rule: +1 (queue depth > 50 or wait > 1 s), -1 (depth < 5 for 5 min), 0; reason says which',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      collect() {
        const decision = signal.evaluate();
        this.reset();
        this.set({ reason: decision.code }, decision.signal);
      },
    });
  }

  /** Lag gauges, read from the checkpoints when Prometheus scrapes (whoever runs the projector). */
  registerProjectionLag(
    statuses: () => Promise<{ name: string; lag: { events: number; ms: number }; eventsProcessed: number; error: { failures: number } | null }[]>,
  ): void {
    // One read of the checkpoints serves the three gauges of a scrape.
    let last: { at: number; list: ReturnType<typeof statuses> } | null = null;
    const read = () => {
      if (!last || Date.now() - last.at > 1000) last = { at: Date.now(), list: statuses().catch(() => []) };
      return last.list;
    };
    new Gauge({
      name: 'lorestore_projection_lag_events',
      help: 'Committed events the projection has not applied yet',
      labelNames: ['projection'] as const,
      registers: [this.registry],
      async collect() {
        for (const s of await read()) this.set({ projection: s.name }, s.lag.events);
      },
    });
    new Gauge({
      name: 'lorestore_projection_lag_seconds',
      help: 'How long the oldest event the projection has not applied has been committed',
      labelNames: ['projection'] as const,
      registers: [this.registry],
      async collect() {
        for (const s of await read()) this.set({ projection: s.name }, s.lag.ms / 1000);
      },
    });
    new Gauge({
      name: 'lorestore_projection_failures',
      help: 'Failures of the live projector in a row since the projection last committed a batch (0: none); alert on > 0 for a few minutes',
      labelNames: ['projection'] as const,
      registers: [this.registry],
      async collect() {
        for (const s of await read()) this.set({ projection: s.name }, s.error?.failures ?? 0);
      },
    });
    new Gauge({
      name: 'lorestore_projection_events_processed',
      help: 'Events the projection has applied since it started from the beginning (use rate() for throughput)',
      labelNames: ['projection'] as const,
      registers: [this.registry],
      async collect() {
        for (const s of await read()) this.set({ projection: s.name }, s.eventsProcessed);
      },
    });
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'lorestore_' });
  }
}
