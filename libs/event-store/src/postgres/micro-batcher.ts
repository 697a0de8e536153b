/**
 * Micro-batching: requests that arrive while a batch is in flight wait and go
 * out together in the next one, so N concurrent requests cost about one round
 * trip instead of N. For appends this is group commit: N appends share one
 * transaction and one fsync, and nothing is resolved before its batch has
 * committed, so durability is exactly that of one append per transaction.
 * Reads of whole streams are batched the same way.
 */
export type MicroBatchOptions = {
  /** Batches in flight at the same time (each on its own connection). */
  maxConcurrentBatches: number;
  /** Requests per batch. */
  maxBatchSize: number;
};

export type BatchWriter<Req, Res> = (batch: Req[]) => Promise<Res[]>;

type Pending<Req, Res> = { request: Req; resolve: (r: Res) => void; reject: (e: unknown) => void };

export type GroupCommitOptions = MicroBatchOptions;

export class MicroBatcher<Req, Res> {
  private readonly queue: Pending<Req, Res>[] = [];
  private inFlight = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly write: BatchWriter<Req, Res>,
    private readonly options: MicroBatchOptions,
    /** Called after each batch completes: its size and how long it took. */
    private readonly onBatch?: (size: number, ms: number) => void,
  ) {}

  submit(request: Req): Promise<Res> {
    if (this.closed) return Promise.reject(new Error('batcher is closed'));
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Stops taking requests and waits until every accepted one is written. */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.queue.length > 0 || this.inFlight > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  private pump(): void {
    while (this.inFlight < this.options.maxConcurrentBatches && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatchSize);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.pump();
        else if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
    }
  }

  private async run(batch: Pending<Req, Res>[]): Promise<void> {
    const started = performance.now();
    try {
      const results = await this.write(batch.map((p) => p.request));
      this.onBatch?.(batch.length, performance.now() - started);
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // Something in the batch broke it as a whole (a constraint, a deadlock):
      // write each request alone so the error lands on the one that caused it.
      for (const pending of batch) {
        try {
          const [result] = await this.write([pending.request]);
          pending.resolve(result!);
        } catch (single) {
          pending.reject(single);
        }
      }
    }
  }
}
