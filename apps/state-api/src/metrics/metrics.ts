import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'lorestore_' });
  }
}
