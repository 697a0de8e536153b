import { PostgresEventStore } from '@lorestore/event-store';
import { createPostgresPool } from '@lorestore/infra';
import { LatencyRecorder } from '../support/latency';
import { wallClock } from './clock';
import { GameTraffic, type TrafficShape } from './traffic';

/**
 * Entry point of the paced writer (forked by lag.ts): single-command appends
 * through PostgresEventStore with the service's group commit, issued open loop
 * at a fixed rate (a timer releases the appends that are due, whether or not
 * the earlier ones have been answered), over many streams, each with its exact
 * expected revision; a stream with an append in flight is skipped for another.
 * Answers with the acknowledgement time and feed position of every append.
 */
export type WriterTask = {
  url: string;
  schema: string;
  rate: number;
  warmupMs: number;
  durationMs: number;
  shape: TrafficShape;
  maxInFlight: number;
  groupCommit: { maxConcurrentBatches: number; maxBatchSize: number };
};

export type WriterResult = {
  startedAt: number;
  measureFrom: number;
  measureTo: number;
  issued: number;
  acked: number;
  errors: number;
  errorSamples: string[];
  skippedBusy: number;
  skippedInFlight: number;
  /** Append latency from the intended send time (open loop: includes waiting behind a slow store). */
  appendLatency: ReturnType<LatencyRecorder['summary']>;
  /** Group-commit batches, and how many were run again to keep per-stream feed order (append_batch's SQLSTATE 40001). */
  groupCommit: { batches: number; meanBatchSize: number; meanBatchMs: number; orderRetries: number };
  /** One entry per acknowledged append: when it was meant to go, when it was acknowledged (epoch ms), its last event's position. */
  records: { intended: number[]; acked: number[]; commit: string[]; prepare: string[] };
};

export type WriterMessage = { ok: true; result: WriterResult } | { ok: false; error: string };

const run = async (task: WriterTask): Promise<WriterResult> => {
  const pool = createPostgresPool({ url: task.url, schema: task.schema, max: task.groupCommit.maxConcurrentBatches + 4, applicationName: 'bench-proj-writer' });
  let batches = 0;
  let batched = 0;
  let batchMs = 0;
  const store = new PostgresEventStore({
    pool,
    schema: task.schema,
    groupCommit: task.groupCommit,
    onBatch: (size, ms) => {
      batches++;
      batched += size;
      batchMs += ms;
    },
  });
  const traffic = new GameTraffic(task.shape);
  const busy = new Set<string>();
  const isBusy = (streamId: string) => busy.has(streamId);
  const records: WriterResult['records'] = { intended: [], acked: [], commit: [], prepare: [] };
  const latency = new LatencyRecorder();
  const errorSamples: string[] = [];
  let errors = 0;
  let issued = 0;
  let skippedBusy = 0;
  let skippedInFlight = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  let orderRetries: number;

  const startedAt = wallClock() + 50;
  const measureFrom = startedAt + task.warmupMs;
  const measureTo = measureFrom + task.durationMs;
  const total = Math.floor((task.rate * (task.warmupMs + task.durationMs)) / 1000);

  const issue = (intended: number) => {
    if (inFlight >= task.maxInFlight) {
      skippedInFlight++;
      return;
    }
    const command = traffic.next(isBusy);
    if (!command) {
      skippedBusy++;
      return;
    }
    busy.add(command.streamId);
    inFlight++;
    const append = store
      .appendToStream(command.streamId, command.events, {
        expectedRevision: command.expected < 0n ? 'no_stream' : command.expected,
        commandId: command.commandId,
        commandHash: command.commandHash,
      })
      .then(
        (result) => {
          const acked = wallClock();
          records.intended.push(intended);
          records.acked.push(acked);
          records.commit.push(result.position.commit.toString());
          records.prepare.push(result.position.prepare.toString());
          if (intended >= measureFrom && intended < measureTo) latency.record(acked - intended);
        },
        (error: unknown) => {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
        },
      )
      .finally(() => {
        busy.delete(command.streamId);
        inFlight--;
        pending.delete(append);
      });
    pending.add(append);
  };

  try {
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = wallClock();
        const due = Math.min(total, Math.floor(((now - startedAt) * task.rate) / 1000));
        while (issued < due) {
          issue(startedAt + (issued * 1000) / task.rate);
          issued++;
        }
        if (issued >= total) resolve();
        else setTimeout(tick, 1);
      };
      setTimeout(tick, Math.max(0, startedAt - wallClock()));
    });
    while (pending.size > 0) await Promise.all([...pending]);
    orderRetries = store.orderRetries;
  } finally {
    await store.close();
    await pool.end();
  }
  return {
    startedAt,
    measureFrom,
    measureTo,
    issued,
    acked: records.acked.length,
    errors,
    errorSamples,
    skippedBusy,
    skippedInFlight,
    appendLatency: latency.summary(),
    groupCommit: {
      batches,
      meanBatchSize: batches ? Math.round((batched / batches) * 10) / 10 : 0,
      meanBatchMs: batches ? Math.round((batchMs / batches) * 100) / 100 : 0,
      orderRetries,
    },
    records,
  };
};

const answer = (message: WriterMessage): void => {
  process.send!(message, () => process.exit(0));
};

if (process.send) {
  process.once('message', (task: WriterTask) => {
    setTimeout(() => process.exit(3), task.warmupMs + task.durationMs + 120_000).unref();
    run(task).then(
      (result) => answer({ ok: true, result }),
      (error: unknown) => answer({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
}
