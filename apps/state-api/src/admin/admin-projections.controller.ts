import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { MEMORY_PROJECTION } from '@lorestore/semantic-memory';
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
  @ApiOperation({
    summary: 'Each projection: checkpoint, lag (events and ms), events processed, status',
    description:
      'An array, one item per projection: `{ name, version, checkpoint, checkpointCommit, lag: { events, ms }, eventsProcessed, updatedAt, status, error, projector }`. ' +
      '`error` is null, or `{ message, failures, since, lastAt, checkpoint }` while the live projector keeps failing on it (the last error, failures in a row, first and last time, the checkpoint it cannot pass), until a batch commits. ' +
      '`checkpoint` is the position of the last event applied (compare it with a command’s `position`); `status` is `not_started`, `caught_up`, `catching_up` or `stalled` ' +
      '(behind and no progress for 30 s); `npc_memories` is the NPC memory index; in EventStoreDB mode `esdb_mirror` comes first: ' +
      'the PostgreSQL mirror of EventStoreDB\'s log (its checkpoint is an EventStoreDB position, its lag counts EventStoreDB events not yet mirrored); `projector` says whether this instance runs the projections (`inline`, and whether it leads) or another process does (`external`).',
  })
  async list() {
    const runner = this.projections.runner;
    const memory = this.projections.memoryProjector;
    const projector = (name: string) => {
      // The EventStoreDB mirror runs in every process; one of them leads and writes.
      if (name === 'esdb_mirror') return { mode: 'inline', leader: this.projections.mirrorLeads === true };
      const own = name === MEMORY_PROJECTION ? memory : runner;
      return own ? { mode: 'inline', leader: own.isLeader } : { mode: 'external' };
    };
    return (await this.projections.statuses()).map((status) => ({ ...status, projector: projector(status.name) }));
  }
}
