import { runClosedLoop } from '../support/closed-loop';
import type { CellMessage, CellTask } from './cell';
import type { Contender, ContenderConfig } from './contender';
import { openEmmett } from './emmett';
import { openLorestore } from './lorestore';
import { openRawPg } from './raw-pg';
import { Workload } from './workload';

/** Entry point of one cell's process (forked by cell.ts): open, warm up, measure, close, answer. */
const open = (config: ContenderConfig, writers: number): Promise<Contender> => {
  switch (config.kind) {
    case 'raw-pg':
      return openRawPg(config, writers);
    case 'emmett':
      return openEmmett(config, writers);
    case 'lorestore':
    case 'lorestore-personal':
    case 'lorestore-full':
      return openLorestore(config, writers);
  }
};

const runCell = async (task: CellTask) => {
  const contender = await open(task.contender, task.writers);
  try {
    const prefillStart = performance.now();
    if (task.prefill > 0) await contender.prefill(task.prefill);
    const prefillMs = Math.round(performance.now() - prefillStart);
    const workload = new Workload(task.writers, task.streams);
    const resetAtMeasureStart = setTimeout(() => contender.resetStats(), task.warmupMs);
    const result = await runClosedLoop({
      workers: task.writers,
      warmupMs: task.warmupMs,
      durationMs: task.durationMs,
      maxOpsPerWorker: task.maxOpsPerWorker,
      maxErrors: task.maxErrors,
      op: (writer) => contender.append(workload.next(writer)),
    });
    clearTimeout(resetAtMeasureStart);
    return { ...result, stats: contender.stats(), prefillMs };
  } finally {
    await contender.close();
  }
};

const answer = (message: CellMessage): void => {
  process.send!(message, () => process.exit(0));
};

process.once('message', (task: CellTask) => {
  setTimeout(() => process.exit(3), task.warmupMs + task.durationMs + 90_000 + task.prefill).unref();
  runCell(task).then(
    (result) => answer({ ok: true, result }),
    (error: unknown) => answer({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
