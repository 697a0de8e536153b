import type { Command } from 'commander';
import { clientFor } from '../config';
import { confirm } from '../confirm';
import { ApiError, isApiError, NetworkError, UsageError } from '../errors';
import { count, table } from '../format';
import { seg } from '../http';
import { err, out, outJson } from '../io';
import { nonEmpty, uuid } from '../parse';
import { withRetries } from '../retry';
import type { Operation } from '../types';
import { operationView, scopeSummary } from '../views';

type Options = { reason?: string; force?: boolean; yes?: boolean; json?: boolean };

type ConflictStream = { streamId: string; rollbackRevision: number; currentRevision: number };

const whatComesBack = (op: Operation) =>
  table(
    ['streamId', { header: 'rollback revision', align: 'right' }, { header: 'state of revision', align: 'right' }, { header: 'events it undid', align: 'right' }],
    op.streams.map((s) => [s.streamId, s.revision, s.fromRevision, s.events]),
  );

export const registerRestore = (program: Command): void => {
  program
    .command('restore')
    .description('Undo a rollback: its streams get back the state they had just before it')
    .argument('<operationId>', 'the rollback\'s operation id (printed by `rollback`, listed by `rollbacks`)', uuid)
    .option('--reason <text>', 'why (default: "restore of <operationId>")', nonEmpty)
    .option('--force', 'restore even if a stream changed after the rollback (those later changes are undone too)')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .option('--json', 'print the raw JSON answer')
    .addHelpText(
      'after',
      `
Examples:
  $ lorestore restore 5b0c7e1a-2d3f-4a5b-8c6d-7e8f9a0b1c2d --reason "rolled back the wrong stream"
  $ lorestore restore 5b0c7e1a-2d3f-4a5b-8c6d-7e8f9a0b1c2d --yes --force

Shows the rollback first and asks before restoring. If a stream was written to after the
rollback, the restore is refused with the streams that changed; --force restores anyway.
Restoring twice answers the first restore.`,
    )
    .action(async (operationId: string, options: Options, command: Command) => {
      const client = clientFor(command);
      const original = await client.get<Operation>(`/v1/admin/rollbacks/${seg(operationId)}`);
      if (original.kind !== 'rollback') {
        throw new UsageError(`operation ${operationId} is a restore (of ${original.restores ?? 'unknown'}), not a rollback: roll back again instead`);
      }
      // With --json, stdout is for the answer: what is about to happen goes to stderr.
      const write = options.json ? err : out;
      if (original.restoredBy) {
        write(`rollback ${operationId} was restored already by operation ${original.restoredBy}; its result:`);
      } else {
        write(`rollback ${operationId}: ${scopeSummary(original.scope)}, by ${original.actor} at ${original.createdAt}, reason "${original.reason}"`);
        write(`restoring gives ${count(original.streams.length, 'stream')} back the state they had just before it:`);
        write(whatComesBack(original));
        write('');
        if (!options.yes) await confirm(`Restore ${original.streams.length} stream(s) to their state before rollback ${operationId}?`, 'restore');
      }
      let op: Operation;
      try {
        op = await withRetries(
          () => client.post<Operation>(`/v1/admin/rollbacks/${seg(operationId)}/restore`, { ...(options.reason ? { reason: options.reason } : {}), ...(options.force ? { force: true } : {}) }),
          `restore of ${operationId}`,
        );
      } catch (error) {
        if (isApiError(error, 'restore-conflict')) {
          const streams = (error.problem.streams ?? []) as ConflictStream[];
          error.details.push(
            'streams written to after the rollback (restoring would undo those writes too):',
            table(['streamId', { header: 'rollback revision', align: 'right' }, { header: 'current revision', align: 'right' }], streams.map((s) => [s.streamId, s.rollbackRevision, s.currentRevision])),
          );
          error.hints.push('use --force to restore anyway');
        } else if (error instanceof NetworkError || (error instanceof ApiError && error.status >= 500)) {
          error.hints.push(`the restore may or may not have been applied: run \`lorestore restore ${operationId}\` again (it never restores twice)`);
        }
        throw error;
      }
      if (options.json) return outJson(op);
      out(op.duplicate ? `rollback ${operationId} had been restored already (operation ${op.operationId}):` : `restored ${count(op.streams.length, 'stream')}`);
      out(operationView(op));
      out('');
      out(`position ${op.position} is a consistency token: reads with ?minPosition=${op.position} see the restore`);
    });
};
