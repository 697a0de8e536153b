import { fork } from 'node:child_process';
import path from 'node:path';
import type { ClosedLoopResult } from '../support/closed-loop';
import type { ContenderConfig } from './contender';

/** One measurement: one contender at one concurrency level. */
export type CellTask = {
  contender: ContenderConfig;
  writers: number;
  /** 0: a new stream per append; N: N streams owned by the writers. */
  streams: number;
  /** Events of history to write before this cell (only the first cell of each contender gets any). */
  prefill: number;
  warmupMs: number;
  durationMs: number;
  maxOpsPerWorker: number;
  maxErrors: number;
};

export type CellResult = ClosedLoopResult & { stats: Record<string, number>; prefillMs: number };

export type CellMessage = { ok: true; result: CellResult } | { ok: false; error: string };

const WORKER = path.join(__dirname, 'worker.js');

/**
 * Runs a cell in a fresh Node process: contenders do not share a heap, a JIT
 * history or global state (emmett's driver sets process-wide `pg` type parsers).
 */
export const runCellInWorker = (task: CellTask, execArgv: string[] = []): Promise<CellResult> =>
  new Promise((resolve, reject) => {
    // The worker's stdout goes to our stderr: our stdout is the report.
    const child = fork(WORKER, [], { stdio: ['ignore', 2, 2, 'ipc'], execArgv: [...process.execArgv, ...execArgv] });
    let settled = false;
    // Prefill budget: 1 ms per event is far above what any contender needs.
    const limit = task.warmupMs + task.durationMs + 120_000 + task.prefill;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(new Error(`${task.contender.label} at ${task.writers} writers did not finish within ${limit} ms`));
    }, limit);
    const finish = (error: Error | null, result?: CellResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(result!);
    };
    child.once('message', (message: CellMessage) => {
      if (message.ok) finish(null, message.result);
      else finish(new Error(`${task.contender.label} at ${task.writers} writers failed: ${message.error}`));
    });
    child.once('error', (error) => finish(error));
    child.once('exit', (code, signal) => finish(new Error(`worker exited (code ${code}, signal ${signal}) before answering`)));
    child.send(task);
  });
