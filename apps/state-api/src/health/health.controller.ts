import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Pool } from 'pg';
import { Public } from '../auth/auth.guard';
import { Metrics } from '../metrics/metrics';
import { PG_POOL } from '../persistence/tokens';

@ApiExcludeController()
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(PG_POOL) private readonly pool: Pool,
    private readonly metrics: Metrics,
  ) {}

  /** The process is up (no dependency checks: a restart would not help a down database). */
  @Get('health/live')
  live() {
    return { status: 'ok' };
  }

  /** Ready to take traffic: PostgreSQL (the event store) answers. */
  @Get('health/ready')
  @HealthCheck()
  ready() {
    return this.health.check([
      async () => {
        const check = this.indicators.check('postgres');
        const started = performance.now();
        try {
          await this.pool.query('SELECT 1');
          return check.up({ ms: Math.round(performance.now() - started), pool: { total: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount } });
        } catch (error) {
          return check.down({ message: error instanceof Error ? error.message : String(error) });
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
