import type { Command } from 'commander';
import { clientFor } from '../config';
import { out, outJson } from '../io';
import type { ProjectionStatus } from '../types';
import { failingLines, projectionsTable } from '../views';

export const registerProjections = (program: Command): void => {
  program
    .command('projections')
    .description('Status of each projection: checkpoint, lag in events and milliseconds, status, events processed')
    .option('--json', 'print the raw JSON answer')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore projections
  $ LORESTORE_URL=https://lorestore.internal lorestore projections --json

"checkpoint" is the position of the last event applied: compare it with a command's "position".
Status is not_started, caught_up, catching_up or stalled (behind and no progress for 30 s).
A projection whose projector keeps failing is listed below the table with the last error,
how many times in a row and since when, until a batch commits again.`,
    )
    .action(async (options: { json?: boolean }, command: Command) => {
      const items = await clientFor(command).get<ProjectionStatus[]>('/v1/admin/projections');
      if (options.json) return outJson(items);
      out(projectionsTable(items));
      const projector = items[0]?.projector;
      if (projector) out(`\nprojector: ${projector.mode === 'inline' ? `inline in the API process${projector.leader ? ' (leading)' : ' (waiting: another instance leads)'}` : 'external process'}`);
      const failing = items.filter((p) => p.error);
      if (failing.length > 0) out(`\n${failingLines(failing)}`);
    });
};
