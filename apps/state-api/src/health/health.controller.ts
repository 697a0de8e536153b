import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Pool } from 'pg';
import { Public } from '../auth/auth.guard';
import { Metrics } from '../metrics/metrics';
import { Lifecycle } from './lifecycle';
import { MirroredEventStore, type EventStore } from '@lorestore/event-store';
import type { Database } from '../persistence/database';
import { DATABASE, EVENT_STORE, PG_POOL } from '../persistence/tokens';
import type { HotStateStore } from '@lorestore/projections';
import { HOT_STATE } from '../projections/projections.providers';
import { ProjectionsService } from '../projections/projections.service';

@ApiExcludeController()
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(DATABASE) private readonly database: Database,
    private readonly metrics: Metrics,
    @Inject(HOT_STATE) private readonly hot: HotStateStore,
    private readonly projections: ProjectionsService,
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly lifecycle: Lifecycle,
  ) {}

  /** The process is up (no dependency checks: a restart would not help a down database). */
  @Get('health/live')
  live() {
    return { status: 'ok' };
  }

  /**
   * Ready to take traffic: PostgreSQL (the event store and read models)
   * answers, and in EventStoreDB mode EventStoreDB does. The hot store and projection lag are reported, not judged: a
   * Redis outage or a lagging projector must not take the write path out of
   * the load balancer.
   */
  @Get('health/ready')
  @HealthCheck()
  ready() {
    return this.health.check([
      // Shutting down: out of the load balancer first, while in-flight and late requests are still served.
      () => (this.lifecycle.draining ? this.indicators.check('shutdown').down({ message: 'draining: the process got SIGTERM' }) : this.indicators.check('shutdown').up()),
      async () => {
        const check = this.indicators.check('postgres');
        const started = performance.now();
        try {
          await this.pool.query('SELECT 1');
          return check.up({ ms: Math.round(performance.now() - started), pools: this.database.poolStats().map((p) => ({ ...p, oldestWaitMs: Math.round(p.oldestWaitMs) })) });
        } catch (error) {
          return check.down({ message: error instanceof Error ? error.message : String(error) });
        }
      },
      async () => {
        // EventStoreDB mode: commands append there, so it is judged like PostgreSQL.
        const check = this.indicators.check('eventStore');
        if (!(this.store instanceof MirroredEventStore)) return check.up({ kind: 'postgres' });
        const started = performance.now();
        try {
          await Promise.race([
            this.store.esdb.headPosition(),
            new Promise((_, reject) => setTimeout(() => reject(new Error('EventStoreDB did not answer within 2 s')), 2000).unref()),
          ]);
          return check.up({ kind: 'esdb', ms: Math.round(performance.now() - started) });
        } catch (error) {
          return check.down({ kind: 'esdb', message: error instanceof Error ? error.message : String(error) });
        }
      },
      async () => {
        // Reported, not judged: reads fall back to PostgreSQL and commands never touch the hot store.
        const check = this.indicators.check('hotState');
        const bypassed = await this.projections.hotBypassed();
        try {
          await this.hot.ping();
          // Redis answers, but the projector has not caught it up yet: reads still skip it.
          if (bypassed) return check.up({ kind: this.hot.kind, degraded: true, message: 'read models committed without the hot store; reads from PostgreSQL' });
          return check.up({ kind: this.hot.kind });
        } catch (error) {
          return check.up({ kind: this.hot.kind, degraded: true, message: error instanceof Error ? error.message : String(error) });
        }
      },
      () => {
        // Reported, not judged: a replica down or lagging only sends its reads to the primary.
        const check = this.indicators.check('replicas');
        const replicas = this.database.router.statuses();
        const out = replicas.filter((r) => !r.inRotation).map((r) => r.name);
        return check.up({ count: replicas.length, inRotation: replicas.length - out.length, ...(out.length ? { degraded: true, out } : {}), replicas });
      },
      async () => {
        const check = this.indicators.check('projections');
        try {
          const statuses = await this.projections.statuses();
          return check.up(Object.fromEntries(statuses.map((s) => [s.name, { status: s.status, lagEvents: s.lag.events, lagMs: s.lag.ms }])));
        } catch (error) {
          return check.up({ message: `lag unknown: ${error instanceof Error ? error.message : String(error)}` });
        }
      },
    ]);
  }

  @Get('metrics')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async prometheus(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
