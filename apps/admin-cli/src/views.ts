import { count, duration, keyValues, num, pretty, secondsBetween, table } from './format';
import type { Collateral, Job, Operation, PlannedStream, ProjectionStatus, RollbackScope, StreamState } from './types';

/** Renderings of the API's objects as plain text. */

/** Stream rows a plan or an operation shows before "… and N more" (--json has them all). */
export const PLAN_ROWS = 50;

export const scopeSummary = (scope: RollbackScope): string => {
  switch (scope.type) {
    case 'stream':
      return `stream ${scope.streamId} to revision ${scope.toRevision}`;
    case 'world':
      return 'toPosition' in scope ? `world to position ${scope.toPosition}` : `world to ${scope.toTime}`;
    case 'actor':
      return `actor ${scope.actorId} since ${scope.since}`;
    case 'restore':
      return `restore of ${scope.operationId}${scope.force ? ' (forced)' : ''}`;
    default:
      return JSON.stringify(scope);
  }
};

const revisionLabel = (r: number) => (r === -1 ? '-1 (before the first event)' : String(r));

export const planTable = (streams: PlannedStream[], rows = PLAN_ROWS): string => {
  const shown = table(
    ['streamId', 'fromRevision → toRevision', { header: 'events undone', align: 'right' }],
    streams.slice(0, rows).map((s) => [s.streamId, `${s.fromRevision} → ${revisionLabel(s.toRevision)}`, s.events]),
  );
  return streams.length > rows ? `${shown}
… and ${streams.length - rows} more stream(s) (--dry-run --json lists them all)` : shown;
};

export const planTotals = (streams: PlannedStream[]) => ({ events: streams.reduce((n, s) => n + s.events, 0), streams: streams.length });

export const collateralTable = (collateral: Collateral[]): string => {
  const shown = table(
    ['streamId', 'actor', { header: 'events', align: 'right' }, 'revisions'],
    collateral
      .slice(0, PLAN_ROWS)
      .map((c) => [c.streamId, c.actor, c.events, c.firstRevision === c.lastRevision ? c.firstRevision : `${c.firstRevision}–${c.lastRevision}`]),
  );
  return collateral.length > PLAN_ROWS ? `${shown}\n… and ${collateral.length - PLAN_ROWS} more (--dry-run --json lists them all)` : shown;
};

export const operationView = (op: Operation): string => {
  const head = keyValues([
    ['operationId', op.operationId],
    ['kind', op.kind],
    ['position', op.position],
    ['scope', scopeSummary(op.scope)],
    ['reason', op.reason],
    ['actor', op.actor],
    ['createdAt', op.createdAt],
    ...(op.restores ? ([['restores', op.restores]] as [string, string][]) : []),
    ...(op.restoredBy ? ([['restoredBy', op.restoredBy]] as [string, string][]) : []),
  ]);
  const streams = table(
    ['streamId', 'fromRevision → toRevision', { header: 'events undone', align: 'right' }, { header: 'new revision', align: 'right' }],
    op.streams.slice(0, PLAN_ROWS).map((s) => [s.streamId, `${s.fromRevision} → ${revisionLabel(s.toRevision)}`, s.events, s.revision]),
  );
  const more = op.streams.length > PLAN_ROWS ? `\n… and ${op.streams.length - PLAN_ROWS} more stream(s) (--json lists them all)` : '';
  return `${head}\n\nstreams (${op.streams.length}):\n${streams}${more}`;
};

export const auditTable = (items: Operation[]): string =>
  table(
    [
      'createdAt',
      'operationId',
      'kind',
      'actor',
      { header: 'scope', max: 60 },
      { header: 'streams', align: 'right' },
      { header: 'reason', max: 40 },
      'restoredBy',
    ],
    items.map((op) => [op.createdAt, op.operationId, op.kind, op.actor, scopeSummary(op.scope), op.streams.length, op.reason, op.restoredBy]),
  );

export const streamStateView = (s: StreamState): string =>
  `${keyValues([
    ['streamId', s.streamId],
    ['aggregate', s.aggregate],
    ['revision', revisionLabel(s.revision)],
    ['position', s.position],
    ['time', s.time],
    ['snapshotRevision', s.snapshotRevision === null ? 'none (folded from the start)' : s.snapshotRevision],
    ['eventsFolded', s.eventsFolded],
  ])}\nstate:\n${pretty(s.state)}`;

export const worldStreamsTable = (streams: StreamState[]): string =>
  table(
    ['streamId', 'aggregate', { header: 'revision', align: 'right' }, { header: 'position', align: 'right' }, 'time'],
    streams.map((s) => [s.streamId, s.aggregate, s.revision, s.position, s.time]),
  );

export const projectionsTable = (items: ProjectionStatus[]): string =>
  table(
    [
      'name',
      { header: 'checkpoint', align: 'right' },
      { header: 'lag events', align: 'right' },
      { header: 'lag ms', align: 'right' },
      'status',
      { header: 'eventsProcessed', align: 'right' },
    ],
    items.map((p) => [p.name, p.checkpoint, num(p.lag.events), num(p.lag.ms), p.status, num(p.eventsProcessed)]),
  );

/** The projections whose projector keeps failing: one line each, the last error last. */
export const failingLines = (items: ProjectionStatus[]): string =>
  items
    .filter((p) => p.error)
    .map((p) => `FAILING ${p.name}: ${num(p.error!.failures)} time(s) in a row since ${p.error!.since}, at checkpoint ${p.error!.checkpoint ?? 'none'}: ${p.error!.message}`)
    .join('\n');

/** Seconds the job ran: start to finish, or to its last update while it runs. */
export const jobSeconds = (job: Job): number | null => secondsBetween(job.startedAt ?? job.createdAt, job.finishedAt ?? job.updatedAt ?? null);

export const jobView = (job: Job): string => {
  const pct = job.total ? ` (${Math.floor((100 * job.processed) / job.total)}%)` : '';
  return keyValues([
    ['jobId', job.jobId],
    ['projection', job.projection],
    ['state', job.state],
    ['processed', `${num(job.processed)}${job.total !== null ? ` / ${num(job.total)}` : ''} events${pct}`],
    ['events/s', num(job.eventsPerSecond)],
    ['eta', job.etaSeconds === null ? '-' : duration(job.etaSeconds)],
    ['requestedBy', job.requestedBy],
    ['reason', job.reason],
    ['createdAt', job.createdAt],
    ['startedAt', job.startedAt],
    ['finishedAt', job.finishedAt],
    ...(job.error ? ([['error', job.error]] as [string, string][]) : []),
  ]);
};

/** One line after a finished job: events, duration, mean rate. */
export const jobSummary = (job: Job): string => {
  const seconds = jobSeconds(job);
  const rate = seconds && seconds > 0 ? job.processed / seconds : null;
  const what = `rebuild of ${job.projection} ${job.state}`;
  return `${what}: ${count(job.processed, 'event')} in ${duration(seconds)}${rate !== null ? `, mean ${num(rate)} events/s` : ''} (job ${job.jobId})`;
};
