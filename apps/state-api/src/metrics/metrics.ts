import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  /** Lag gauges, read from the checkpoints when Prometheus scrapes (whoever runs the projector). */
  registerProjectionLag(statuses: () => Promise<{ name: string; lag: { events: number; ms: number }; eventsProcessed: number }[]>): void {
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
