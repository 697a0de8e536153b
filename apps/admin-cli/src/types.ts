/**
 * The HTTP API's shapes as the CLI reads them (see /work/shared/API.md and the
 * admin controllers). Declared here rather than imported from the server so the
 * CLI stays a plain HTTP client of the public contract.
 */

/** RFC 9457 problem details, the API's one error shape. */
export type ProblemBody = {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: { path: string; message: string }[];
  [extension: string]: unknown;
};

export type StreamState = {
  streamId: string;
  aggregate: string;
  revision: number;
  position: number | null;
  time: string | null;
  state: unknown;
  snapshotRevision: number | null;
  eventsFolded: number;
};

export type WorldStatePage = {
  worldId: string;
  atPosition?: number;
  asOf?: string;
  streams: StreamState[];
  nextCursor: string | null;
};

export type RollbackScope =
  | { type: 'stream'; streamId: string; toRevision: number; expectedRevision?: number }
  | { type: 'world'; toPosition: number }
  | { type: 'world'; toTime: string }
  | { type: 'actor'; actorId: string; since: string }
  | { type: 'restore'; operationId: string; force: boolean };

export type PlannedStream = { streamId: string; fromRevision: number; toRevision: number; events: number };

export type Collateral = { streamId: string; actor: string; events: number; firstRevision: number; lastRevision: number };

/** A rollback's dry-run answer. */
export type RollbackPlan = {
  dryRun: true;
  scope: RollbackScope;
  streams: PlannedStream[];
  totalEvents: number;
  collateral?: Collateral[];
};

/** A rollback or restore as carried out (and as the audit trail records it). */
export type Operation = {
  operationId: string;
  kind: 'rollback' | 'restore';
  position: number;
  streams: (PlannedStream & { revision: number })[];
  scope: RollbackScope;
  reason: string;
  actor: string;
  createdAt: string;
  restores: string | null;
  restoredBy: string | null;
  duplicate: boolean;
};

export type OperationPage = { items: Operation[]; nextCursor: string | null };

export type JobState = 'pending' | 'running' | 'switching' | 'succeeded' | 'failed';

export type Job = {
  jobId: string;
  projection: string;
  state: JobState;
  processed: number;
  total: number | null;
  eventsPerSecond: number | null;
  etaSeconds: number | null;
  requestedBy?: string;
  reason?: string | null;
  error?: string | null;
  createdAt?: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt?: string;
};

export const isFinished = (job: Job): boolean => job.state === 'succeeded' || job.state === 'failed';

export type ProjectionStatus = {
  name: string;
  version: number;
  checkpoint: number | null;
  checkpointCommit: string | null;
  lag: { events: number; ms: number };
  eventsProcessed: number;
  updatedAt: string | null;
  status: string;
  projector?: { mode: 'inline'; leader: boolean } | { mode: 'external' };
  /** The live projector's failures since the last committed batch (absent from servers before it). */
  error?: { message: string; failures: number; since: string; lastAt: string; checkpoint: number | null } | null;
};

/** The answer of `POST /v1/admin/players/{playerId}/erase` (the same for every erasure of a player after the first). */
export type PlayerErasure = {
  playerId: string;
  erasedAt: string;
  reason: string;
  erasedBy: string | null;
  /** A consistency token; null while the audit event is not yet in the log's mirror (EventStoreDB mode). */
  position: number | null;
};
