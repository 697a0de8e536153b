import { Presets, SingleBar } from 'cli-progress';
import { duration, num } from './format';
import { out, stdoutIsTTY } from './io';
import type { Job } from './types';

/** Shows a running job's progress; `stop` leaves the terminal clean for the summary. */
export interface ProgressView {
  update(job: Job): void;
  stop(): void;
}

const rateText = (job: Job) => (job.eventsPerSecond === null ? '- events/s' : `${num(job.eventsPerSecond)} events/s`);
const etaText = (job: Job) => (job.etaSeconds === null ? 'ETA -' : `ETA ${duration(job.etaSeconds)}`);

/** A cli-progress bar, redrawn in place: for a terminal. */
class BarView implements ProgressView {
  private readonly bar = new SingleBar(
    {
      // {eta} is cli-progress's own estimate: the server's goes in {serverEta}.
      format: '{projection} [{bar}] {percentage}% | {value}/{total} events | {rate} | {serverEta} | {state}',
      stream: process.stdout,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 30,
    },
    Presets.shades_classic,
  );
  private started = false;

  update(job: Job): void {
    const total = Math.max(job.total ?? 0, job.processed, 1);
    const payload = { projection: job.projection, rate: rateText(job), serverEta: etaText(job), state: job.state };
    if (!this.started) {
      this.bar.start(total, job.processed, payload);
      this.started = true;
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(job.processed, payload);
  }

  stop(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}

/** A plain line now and then (and on every change of state): for logs and pipes. */
class LineView implements ProgressView {
  private lastAt = 0;
  private lastState: string | null = null;

  constructor(private readonly everyMs: number) {}

  update(job: Job): void {
    const now = Date.now();
    if (job.state === this.lastState && now - this.lastAt < this.everyMs) return;
    this.lastAt = now;
    this.lastState = job.state;
    const of = job.total !== null ? `/${num(job.total)}` : '';
    const pct = job.total ? ` (${Math.floor((100 * job.processed) / job.total)}%)` : '';
    out(`${job.projection}: ${job.state}, ${num(job.processed)}${of} events${pct}, ${rateText(job)}, ${etaText(job)}`);
  }

  stop(): void {}
}

const silent: ProgressView = { update: () => {}, stop: () => {} };

/** A bar on a terminal; elsewhere a line every few seconds; nothing when quiet (`--json`). */
export const progressView = (options: { plainEveryMs?: number; quiet?: boolean } = {}): ProgressView =>
  options.quiet ? silent : stdoutIsTTY() ? new BarView() : new LineView(options.plainEveryMs ?? 3000);
