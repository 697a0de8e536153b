import { Controller, Get, Inject } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.guard';
import { APP_CONFIG, type AppConfig } from '../config';
import { ApiProblems } from '../http/openapi';
import type { Database } from '../persistence/database';
import { DATABASE } from '../persistence/tokens';

@ApiTags('admin')
@ApiBearerAuth()
@ApiProblems(401, 403)
@RequireRole('admin')
@Controller('v1/admin/autoscale')
export class AdminAutoscaleController {
  constructor(
    @Inject(DATABASE) private readonly database: Database,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'The autoscale signal of this instance: +1 scale out, 0 hold, -1 scale in, and why',
    description:
      'The brief’s rule over this instance’s database pools: +1 when more than AUTOSCALE_UP_QUEUE (50) callers wait for a connection or one waits ' +
      'longer than AUTOSCALE_UP_WAIT_MS (1 s); -1 when fewer than AUTOSCALE_DOWN_QUEUE (5) have waited for AUTOSCALE_DOWN_WINDOW_MS (5 min) without a break; 0 otherwise. ' +
      'Evaluated every 250 ms and on each read; the same value is the Prometheus gauge `lorestore_autoscale_signal{reason}`. ' +
      '`{ signal, code, reason, queueDepth, waitMs, quietSince, evaluatedAt, rules, pools: [{ name, max, inUse, idle, waiting, oldestWaitMs }], replicas: [{ name, up, inRotation, lagMs, replayLsn, paused }] }`.',
  })
  get() {
    const decision = this.database.autoscale.evaluate();
    return {
      ...decision,
      pools: decision.pools.map((p) => ({ ...p, oldestWaitMs: Math.round(p.oldestWaitMs) })),
      rules: {
        upQueue: this.config.AUTOSCALE_UP_QUEUE,
        upWaitMs: this.config.AUTOSCALE_UP_WAIT_MS,
        downQueue: this.config.AUTOSCALE_DOWN_QUEUE,
        downWindowMs: this.config.AUTOSCALE_DOWN_WINDOW_MS,
      },
      replicas: this.database.router.statuses(),
    };
  }
}
