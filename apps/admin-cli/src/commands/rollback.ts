import { randomUUID } from 'node:crypto';
import { Command, Option } from 'commander';
import { clientFor } from '../config';
import { confirm } from '../confirm';
import { ApiError, isApiError, NetworkError, UsageError } from '../errors';
import { count } from '../format';
import { seg, type ApiClient } from '../http';
import { err, out, outJson } from '../io';
import { isoTime, nonEmpty, nonNegative, rollbackRevision, uuid } from '../parse';
import { withRetries } from '../retry';
import type { Operation, RollbackPlan, RollbackScope } from '../types';
import { collateralTable, operationView, planTable, planTotals, scopeSummary } from '../views';

type CommonOptions = { reason: string; yes?: boolean; dryRun?: boolean; operationId?: string; json?: boolean };

type Target = {
  /** Route of both the dry run and the rollback. */
  path: string;
  /** The request's own fields (without reason, dryRun, operationId). */
  body: Record<string, unknown>;
  /** Does an operation found under --operation-id ask for the same thing? */
  matches: (scope: RollbackScope) => boolean;
  /** A stream rollback carries the head the plan showed as expectedRevision. */
  pinHead: boolean;
};

const sameTime = (a: string, b: string) => Date.parse(a) === Date.parse(b);

const commonOptions = (command: Command): Command =>
  command
    .requiredOption('--reason <text>', 'why (recorded in the audit trail and on every rollback event)', nonEmpty)
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)')
    .option('--dry-run', 'show what would be rolled back and stop')
    .option('--operation-id <uuid>', 'idempotency key: the same id never rolls back twice (default: a new one per run)', uuid)
    .option('--json', 'print the raw JSON answer on stdout (the plan goes to stderr)');

/** The audit record of an operation id, or null if the server has none. */
const existingOperation = async (client: ApiClient, operationId: string): Promise<Operation | null> => {
  try {
    return await client.get<Operation>(`/v1/admin/rollbacks/${seg(operationId)}`);
  } catch (error) {
    if (isApiError(error, 'operation-not-found')) return null;
    throw error;
  }
};

const printPlan = (plan: RollbackPlan, write: (text: string) => void) => {
  const totals = planTotals(plan.streams);
  write(`plan: ${scopeSummary(plan.scope)}: ${count(totals.events, 'event')} on ${count(totals.streams, 'stream')} undone`);
  if (plan.streams.length > 0) write(planTable(plan.streams));
  if (plan.collateral !== undefined) {
    if (plan.collateral.length > 0) {
      write('');
      write("also undone: other actors' later events on these streams");
      write(collateralTable(plan.collateral));
    } else if (plan.streams.length > 0) {
      write("no other actor's events are undone");
    }
  }
};

const printOperation = (op: Operation, options: CommonOptions) => {
  if (options.json) return outJson(op);
  const totals = planTotals(op.streams);
  out(
    op.duplicate
      ? `operation ${op.operationId} had been carried out already; its result:`
      : `rolled back ${count(totals.events, 'event')} on ${count(totals.streams, 'stream')}`,
  );
  out(operationView(op));
  out('');
  out(`position ${op.position} is a consistency token: reads with ?minPosition=${op.position} see the rollback`);
  out(`undo it with: lorestore restore ${op.operationId}`);
};

/**
 * Dry run, show the plan, confirm, then the rollback itself with an
 * operationId fixed before the first attempt, so sending it again (after a
 * network error, or a re-run with --operation-id) never rolls back twice.
 */
const runRollback = async (command: Command, options: CommonOptions, target: Target) => {
  const client = clientFor(command);
  if (options.operationId) {
    const done = await existingOperation(client, options.operationId);
    if (done) {
      if (done.kind !== 'rollback' || !target.matches(done.scope) || done.reason !== options.reason) {
        throw new UsageError(`operation id ${options.operationId} was used already for another request (${done.kind}: ${scopeSummary(done.scope)}, reason "${done.reason}")`, [
          'leave out --operation-id to start a new rollback',
        ]);
      }
      return printOperation({ ...done, duplicate: true }, options);
    }
  }

  const plan = await client.post<RollbackPlan>(target.path, { ...target.body, reason: options.reason, dryRun: true });
  if (options.dryRun) return options.json ? outJson(plan) : printPlan(plan, out);
  printPlan(plan, options.json ? err : out);
  const totals = planTotals(plan.streams);
  if (totals.streams === 0) throw new UsageError('nothing to roll back: no stream changed after that point');
  if (!options.yes) await confirm(`Roll back ${totals.events} event(s) on ${totals.streams} stream(s)?`, 'roll back');

  const operationId = options.operationId ?? randomUUID();
  const body = {
    ...target.body,
    reason: options.reason,
    operationId,
    ...(target.pinHead ? { expectedRevision: plan.streams[0]!.fromRevision } : {}),
  };
  let op: Operation;
  try {
    op = await withRetries(() => client.post<Operation>(target.path, body), `rollback ${operationId}`);
  } catch (error) {
    if (isApiError(error, 'wrong-expected-revision')) {
      error.details.push(
        `the stream was written to after the plan (now at revision ${String(error.problem.currentRevision)}): nothing was rolled back`,
        'run the command again to see the new plan',
      );
    } else if (error instanceof NetworkError || (error instanceof ApiError && error.status >= 500)) {
      error.hints.push(`the rollback may or may not have been applied: run the same command again with --operation-id ${operationId} (it never applies twice)`);
    }
    throw error;
  }
  printOperation(op, options);
  const done = planTotals(op.streams);
  if (!op.duplicate && (done.events !== totals.events || done.streams !== totals.streams)) {
    err(`note: the world changed between the plan and the rollback: ${count(done.events, 'event')} on ${count(done.streams, 'stream')} were undone (the plan said ${totals.events} on ${totals.streams})`);
  }
};

const streamExamples = `
Examples:
  # undo everything after revision 3 of an entity, after a look at the plan
  $ lorestore rollback stream demo entity-demo-3f1c2a9e-6b0d-4c59-9d4e-1a2b3c4d5e6f --to-revision 3 --reason "bad patch 1.4.2"

  # back to before the stream's first event, in a script
  $ lorestore rollback stream demo entity-demo-3f1c2a9e-6b0d-4c59-9d4e-1a2b3c4d5e6f --to-revision -1 --reason "spawned by mistake" --yes

The rollback appends one event restoring that revision's state; nothing is deleted and
\`lorestore restore <operationId>\` undoes it. If the stream is written to between the plan
and the rollback, the rollback is refused (409) and nothing changes.`;

const worldExamples = `
Examples:
  $ lorestore rollback world demo --to-position 18234 --reason "exploit at 14:02" --dry-run
  $ lorestore rollback world demo --to-time 2026-03-01T14:00:00Z --reason "exploit at 14:02"

Every stream of the world changed after the point goes back to its state at that point, all in
one transaction or not at all.`;

const actorExamples = `
Examples:
  $ lorestore rollback actor demo 7d1e0f2a-3b4c-4d5e-8f90-a1b2c3d4e5f6 --since 2026-03-01T14:00:00Z --reason "duplication exploit"
  $ lorestore rollback actor demo game:key-0123456789ab --since 2026-03-01T14:00:00Z --reason "leaked key"

An actor is the actorId a command named (a player's commands name the player), or the key that
sent it, as role:keyId (e.g. game:key-0123456789ab, as recorded on its events). Undoing its events
also undoes other actors' later events on the same streams: the plan lists them separately
("also undone") before you confirm.`;

export const registerRollback = (program: Command): void => {
  const rollback = program
    .command('rollback')
    .description('Roll back a stream, a whole world, or what one actor did (dry run, confirm, then one transaction)')
    .addHelpText(
      'after',
      `
Every rollback first shows its plan (a dry run) and asks "Roll back N event(s) on M stream(s)? [y/N]";
--yes skips the question (required without a terminal). Undo a rollback with \`lorestore restore\`.

Examples:
  $ lorestore rollback stream demo entity-demo-<uuid> --to-revision 3 --reason "bad patch"
  $ lorestore rollback world demo --to-time 2026-03-01T14:00:00Z --reason "exploit"
  $ lorestore rollback actor demo player:42 --since 2026-03-01T14:00:00Z --reason "cheater"`,
    );

  commonOptions(
    rollback
      .command('stream')
      .description('Roll one stream back to a revision')
      .argument('<worldId>', 'the world (a slug)')
      .argument('<streamId>', 'the stream, e.g. entity-<worldId>-<entityId> or world-<worldId>')
      .requiredOption('--to-revision <n>', "the revision whose state comes back; -1 is the state before the stream's first event", rollbackRevision),
  )
    .addHelpText('after', streamExamples)
    .action(async (worldId: string, streamId: string, options: CommonOptions & { toRevision: number }, command: Command) =>
      runRollback(command, options, {
        path: `/v1/admin/worlds/${seg(worldId)}/streams/${seg(streamId)}/rollback`,
        body: { toRevision: options.toRevision },
        matches: (s) => s.type === 'stream' && s.streamId === streamId && s.toRevision === options.toRevision,
        pinHead: true,
      }),
    );

  commonOptions(
    rollback
      .command('world')
      .description('Roll every stream of a world changed after a position or time back to that point')
      .argument('<worldId>', 'the world (a slug)')
      .addOption(new Option('--to-position <p>', 'a global position (a command\'s "position")').argParser(nonNegative).conflicts('toTime'))
      .addOption(new Option('--to-time <iso>', 'an ISO-8601 time with a time zone').argParser(isoTime)),
  )
    .addHelpText('after', worldExamples)
    .action(async (worldId: string, options: CommonOptions & { toPosition?: number; toTime?: string }, command: Command) => {
      if (options.toPosition === undefined && options.toTime === undefined) throw new UsageError('give --to-position <p> or --to-time <iso>');
      await runRollback(command, options, {
        path: `/v1/admin/worlds/${seg(worldId)}/rollback`,
        body: options.toPosition !== undefined ? { toPosition: options.toPosition } : { toTime: options.toTime },
        matches: (s) =>
          s.type === 'world' &&
          ('toPosition' in s ? s.toPosition === options.toPosition : options.toTime !== undefined && sameTime(s.toTime, options.toTime)),
        pinHead: false,
      });
    });

  commonOptions(
    rollback
      .command('actor')
      .description('Undo what one actor (a key or a named actorId) caused in a world since a time')
      .argument('<worldId>', 'the world (a slug)')
      .argument('<actorId>', 'an actorId named by commands (e.g. a playerId), or a key as game:<keyId>')
      .requiredOption('--since <iso>', 'undo the actor\'s events from this ISO-8601 time on', isoTime),
  )
    .addHelpText('after', actorExamples)
    .action(async (worldId: string, actorId: string, options: CommonOptions & { since: string }, command: Command) =>
      runRollback(command, options, {
        path: `/v1/admin/worlds/${seg(worldId)}/rollback`,
        body: { actorId, since: options.since },
        matches: (s) => s.type === 'actor' && s.actorId === actorId && sameTime(s.since, options.since),
        pinHead: false,
      }),
    );
};
