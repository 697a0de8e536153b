import { monitorEventLoopDelay } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { LatencyRecorder, type LatencySummary } from '../support/latency';
import { KINDS, type Kind, type PlannedRequest } from './mix';

export type DriveOptions = {
  url: string;
  apiKey: string;
  /** Requests per second offered, in total. */
  rate: number;
  connections: number;
  /** Load before the measured window, on the same connections. */
  warmupSeconds: number;
  /** The measured window. */
  seconds: number;
  /** autocannon instances started evenly over one second (see driveMix). */
  stagger: number;
  next: () => PlannedRequest;
  /** Called when the measured window opens (e.g. to read the servers' counters). */
  onWindowStart?: () => void;
};

export type KindResult = { responses: number; non2xx: number; statusCodes: Record<string, number>; latency: LatencySummary };

export type DriveResult = {
  offeredRate: number;
  /** Responses per second in the window (what was answered, whatever the status). */
  achievedRate: number;
  responses: number;
  ok2xx: number;
  non2xx: number;
  /** Connection errors and timeouts (10 s) in the window. */
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Exact, per response (request written to last byte read), every status. */
  latency: LatencySummary;
  byKind: Record<Kind, KindResult>;
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  instances: number;
  /**
   * Per second of the run by completion time (second 0 opens the window; the
   * warm-up is negative): responses, their p99 and max, to tell a stall from steady overload.
   */
  timeline: { second: number; responses: number; p99Ms: number; maxMs: number }[];
  /** This process' event-loop delay in the window: the load generator's own stalls, which every latency above includes. */
  generatorEventLoopDelayMs: { p99: number; max: number };
  /**
   * Responses from the window's opening to the end of the run (autocannon stops
   * each instance up to a second after the window): the requests a server did
   * between a counter read at the window's opening and one after the run.
   */
  responsesFromWindowStart: number;
  /** The same counts before the window (instances starting, warm-up). */
  beforeWindow: { responses: number; non2xx: number; errors: number; timeouts: number; maxMs: number };
  /** The first few non-2xx answers and errors, to tell a bug from overload. */
  samples: string[];
};

const share = (total: number, parts: number, i: number): number => Math.floor(total / parts) + (i < total % parts ? 1 : 0);

type Context = { kind?: Kind };

/**
 * The mix at a fixed rate through autocannon's `overallRate`. autocannon paces
 * each connection by a quota per second: at the start of each second every
 * connection sends its rate/connections requests back to back, then waits. One
 * instance therefore fires all its connections at once, once a second. To keep
 * the offered load close to steady, `stagger` instances (each a share of the
 * connections and of the rate) start evenly spread over the first second, so
 * bursts of connections/stagger come every 1/stagger s.
 *
 * One run on the same connections: the first second (instances starting), then
 * the warm-up, then the measured window; only responses that complete inside
 * the window count. Latency is recorded per response (autocannon's own
 * correction for coordinated omission assumes a 1 ms interval at any rate and
 * is turned off).
 */
export const driveMix = async (options: DriveOptions): Promise<DriveResult> => {
  const rate = Math.max(1, Math.round(options.rate));
  const instances = Math.max(1, Math.min(options.stagger, options.connections, rate));
  const overall = new LatencyRecorder();
  const perKind = new Map<Kind, { recorder: LatencyRecorder; non2xx: number; statusCodes: Record<string, number> }>(
    KINDS.map((k) => [k, { recorder: new LatencyRecorder(), non2xx: 0, statusCodes: {} }]),
  );
  const statusCodes: Record<string, number> = {};
  const perSecond: LatencyRecorder[] = [];
  const samples: string[] = [];
  let ok2xx = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let responsesFromWindowStart = 0;
  const beforeWindow = { responses: 0, non2xx: 0, errors: 0, timeouts: 0, maxMs: 0 };
  const startedAt = performance.now();
  const windowFrom = startedAt + (1 + options.warmupSeconds) * 1000;
  const windowTo = windowFrom + options.seconds * 1000;
  // Every instance runs until the window has closed, whenever in the first second it started.
  const duration = 1 + options.warmupSeconds + options.seconds;
  const inWindow = (t: number) => t >= windowFrom && t < windowTo;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const windowTimer = setTimeout(() => {
    loopDelay.enable();
    options.onWindowStart?.();
  }, windowFrom - startedAt);
  // onResponse (which knows the request's kind) runs just before the instance's 'response' event (which knows its time).
  let answered: { kind: Kind; status: number } | null = null;

  const headersFor = (planned: PlannedRequest) =>
    planned.method === 'POST'
      ? { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' }
      : { authorization: `Bearer ${options.apiKey}` };

  const runOne = (connections: number, instanceRate: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const instance = autocannon(
        {
          url: options.url,
          connections,
          overallRate: instanceRate,
          duration,
          pipelining: 1,
          timeout: 10,
          ignoreCoordinatedOmission: true,
          requests: [
            {
              setupRequest: (request, context) => {
                const planned = options.next();
                (context as Context).kind = planned.kind;
                return { ...request, method: planned.method, path: planned.path, headers: headersFor(planned), body: planned.body ?? '' };
              },
              onResponse: (status, body, context) => {
                const kind = (context as Context).kind ?? 'get_entity';
                answered = { kind, status };
                if ((status < 200 || status > 299) && samples.length < 8 && inWindow(performance.now())) {
                  samples.push(`${kind}: ${status} ${body.slice(0, 300)}`);
                }
              },
            },
          ],
        },
        (error) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()),
      );
      instance.on('response', (_client, status, _bytes, responseTime) => {
        const kind = answered?.kind ?? 'get_entity';
        answered = null;
        const now = performance.now();
        (perSecond[Math.floor((now - startedAt) / 1000)] ??= new LatencyRecorder()).record(responseTime);
        if (now < windowFrom) {
          beforeWindow.responses++;
          if (status < 200 || status > 299) beforeWindow.non2xx++;
          beforeWindow.maxMs = Math.max(beforeWindow.maxMs, Math.round(responseTime * 1000) / 1000);
        } else responsesFromWindowStart++;
        if (!inWindow(now)) return;
        const code = String(status);
        const entry = perKind.get(kind)!;
        overall.record(responseTime);
        entry.recorder.record(responseTime);
        statusCodes[code] = (statusCodes[code] ?? 0) + 1;
        entry.statusCodes[code] = (entry.statusCodes[code] ?? 0) + 1;
        if (status >= 200 && status <= 299) ok2xx++;
        else {
          non2xx++;
          entry.non2xx++;
        }
      });
      instance.on('reqError', (error: unknown) => {
        const now = performance.now();
        const message = error instanceof Error ? error.message : String(error);
        if (now < windowFrom) {
          if (message === 'request timed out') beforeWindow.timeouts++;
          else beforeWindow.errors++;
          if (samples.length < 8) samples.push(`before the window: error: ${message}`);
        }
        if (!inWindow(now)) return;
        if (message === 'request timed out') timeouts++;
        else errors++;
        if (samples.length < 8) samples.push(`error: ${message}`);
      });
    });

  try {
    await Promise.all(
      Array.from({ length: instances }, (_, i) =>
        new Promise<void>((resolve) => setTimeout(resolve, Math.round((i * 1000) / instances))).then(() =>
          runOne(share(options.connections, instances, i), share(rate, instances, i)),
        ),
      ),
    );
  } finally {
    clearTimeout(windowTimer);
    loopDelay.disable();
  }
  const responses = ok2xx + non2xx;
  const byKind = Object.fromEntries(
    [...perKind].map(([kind, e]) => [kind, { responses: e.recorder.count, non2xx: e.non2xx, statusCodes: e.statusCodes, latency: e.recorder.summary() }]),
  ) as Record<Kind, KindResult>;
  return {
    offeredRate: rate,
    achievedRate: Math.round(responses / options.seconds),
    responses,
    ok2xx,
    non2xx,
    errors,
    timeouts,
    statusCodes,
    latency: overall.summary(),
    byKind,
    durationSeconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
    connections: options.connections,
    instances,
    responsesFromWindowStart,
    generatorEventLoopDelayMs: { p99: Math.round(loopDelay.percentile(99) / 1e4) / 100, max: Math.round(loopDelay.max / 1e4) / 100 },
    beforeWindow,
    timeline: Array.from(perSecond, (recorder, i) => {
      const summary = recorder?.summary();
      return { second: i - 1 - options.warmupSeconds, responses: summary?.count ?? 0, p99Ms: summary?.p99Ms ?? 0, maxMs: summary?.maxMs ?? 0 };
    }),
    samples,
  };
};
