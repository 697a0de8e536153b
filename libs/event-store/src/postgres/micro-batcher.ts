/**
 * Micro-batching: requests that arrive while a batch is in flight wait and go
 * out together in the next one, so N concurrent requests cost about one round
 * trip instead of N. For appends this is group commit: N appends share one
 * transaction and one fsync, and nothing is resolved before its batch has
 * committed, so durability is exactly that of one append per transaction.
 * Reads of whole streams are batched the same way.
 *
 * A batch goes out one turn of the event loop after the request that made it
 * due (`setImmediate`), not at once: requests arriving in the same turn — the
 * callers a finished batch just answered, the HTTP requests read in one poll —
 * then share a batch instead of the first of them leaving alone and the rest
 * waiting a whole batch for the next free connection. Measured (bench append,
 * 2 batches in flight): 16 writers 5,800–6,100 → 8,100–8,600 appends/s, 64
 * writers 10,500–10,800 → 12,900–13,000; one writer unchanged.
 */
export type MicroBatchOptions = {
  /** Batches in flight at the same time (each on its own connection). */
  maxConcurrentBatches: number;
  /** Requests per batch. */
  maxBatchSize: number;
  /**
   * With several connections free, a queue of at least twice this many goes
   * out split evenly over them (parts of at least this size), so they commit
   * side by side. Smaller queues go out whole: a batch has a fixed cost (about
   * that of 8 appends, bench/RESULTS.md) that halves would pay twice.
   * Default 32 (64 writers: 13,400–13,700 appends/s in halves of 32 against
   * 12,900–13,000 whole; 16 writers: 7,600–7,700 in halves of 8 against
   * 8,100–8,600 whole).
   */
  minSplitSize?: number;
  /**
   * When a batch fails as a whole, send each of its requests again alone so
   * the error lands on the one that caused it (default). False: every
   * request of the batch gets the batch's error (reads, where a failure is
   * the connection's, not one request's).
   */
  isolateFailures?: boolean;
  /**
   * Requests waiting (not counting those in flight) beyond which submit()
   * refuses at once with a BatcherBacklogError instead of queueing: a bound
   * for when batches stall (a server that stopped answering). Default: none.
   */
  maxQueued?: number;
};

/** submit() found `maxQueued` requests waiting already. */
export class BatcherBacklogError extends Error {
  override readonly name = 'BatcherBacklogError';
}

const DEFAULT_MIN_SPLIT_SIZE = 32;

export type BatchWriter<Req, Res> = (batch: Req[]) => Promise<Res[]>;

type Pending<Req, Res> = { request: Req; resolve: (r: Res) => void; reject: (e: unknown) => void };

export type GroupCommitOptions = MicroBatchOptions;

export class MicroBatcher<Req, Res> {
  private readonly queue: Pending<Req, Res>[] = [];
  private inFlight = 0;
  private pumpScheduled = false;
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
    const limit = this.options.maxQueued;
    if (limit !== undefined && this.queue.length >= limit) {
      return Promise.reject(new BatcherBacklogError(`${this.queue.length} requests already wait for a batch`));
    }
    return new Promise<Res>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.schedulePump();
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

  /**
   * Stops taking requests and fails every waiting one with `error` (those in
   * flight end as their batch does): for reads, which need no drain.
   */
  abandon(error: Error): void {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(error);
    if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Sends what is due after the current turn of the event loop (see the class comment). */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const minSplit = this.options.minSplitSize ?? DEFAULT_MIN_SPLIT_SIZE;
    while (this.inFlight < this.options.maxConcurrentBatches && this.queue.length > 0) {
      const free = this.options.maxConcurrentBatches - this.inFlight;
      const parts = Math.max(1, Math.min(free, Math.floor(this.queue.length / minSplit)));
      const batch = this.queue.splice(0, Math.min(this.options.maxBatchSize, Math.ceil(this.queue.length / parts)));
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        if (this.queue.length > 0) this.schedulePump();
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
      if (batch.length === 1 || this.options.isolateFailures === false) {
        for (const pending of batch) pending.reject(error);
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
