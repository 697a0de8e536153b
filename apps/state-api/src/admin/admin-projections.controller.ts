import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.guard';
import { ApiProblems } from '../http/openapi';
import { ProjectionsService } from '../projections/projections.service';

@ApiTags('admin')
@ApiBearerAuth()
@ApiProblems(401, 403)
@RequireRole('admin')
@Controller('v1/admin/projections')
export class AdminProjectionsController {
  constructor(private readonly projections: ProjectionsService) {}

  @Get()
  @ApiOperation({ summary: 'Each projection: checkpoint, lag (events and ms), events processed, status; and who runs them' })
  async list() {
    const runner = this.projections.runner;
    return {
      projector: runner ? { mode: 'inline', leader: runner.isLeader } : { mode: 'external' },
      projections: await this.projections.statuses(),
    };
  }
}
