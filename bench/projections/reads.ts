import { execFile } from 'node:child_process';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { freePort } from '@lorestore/infra';
import { hotKey } from '@lorestore/projections';
import { startNodeChild, waitForHttpOk } from '../support/child-process';
import { log } from '../support/env';
import { processCpuMs } from '../support/proc';
import { LatencyRecorder, type LatencySummary } from '../support/latency';
import { baseEnv, serviceEnv } from '../support/service-env';

export type EntityRef = { worldId: string; entityId: string };

export type ReadLoad = { rate: number; connections: number; seconds: number; warmupSeconds: number };

export type ReadResult = {
  label: string;
  requests: number;
  requestsPerSecond: number;
  ok: number;
  notOk: number;
  errors: number;
  /** Exact, per response (send to last byte), not autocannon's whole-millisecond histogram. */
  latency: LatencySummary;
  durationSeconds: number;
  notOkSamples: string[];
  extra?: Record<string, unknown>;
};

export type RedisBenchmarkResult = { label: string; requestsPerSecond: number; p50Ms: number; p99Ms: number; maxMs: number };

const API_KEY = 'benchkey';


/**
 * How the offered rate is spread over a second. autocannon paces by a
 * per-connection quota per second: each connection sends back to back until
 * it has sent rate/connections in the current second, then waits for the
 * next. `aligned`: one autocannon run, every connection's second starts at
 * the same moment, so the whole second's load comes as one burst at up to the
 * server's closed-loop speed (autocannon's own behaviour, mcollina/autocannon#174).
 * `staggered`: one single-connection run per connection, started
 * 1000/connections ms apart, so the connections' bursts are spread evenly
 * over the second: the same rate, arriving close to steadily. The ioredis
 * baseline below is paced the same way in each mode.
 */
export type Pacing = 'aligned' | 'staggered';

/** Each connection's share of `rate` per second. */
const quotasOf = (load: ReadLoad): number[] =>
  Array.from({ length: load.connections }, (_, i) => Math.floor(load.rate / load.connections) + (i < load.rate % load.connections ? 1 : 0));

type CannonRun = { requests: number; ok: number; notOk: number; errors: number; duration: number; p50: number; p99: number; max: number };

/** One autocannon run of GETs over `paths` (round-robin through `cursor`), every response's time into `latency`. */
const cannon = (base: string, paths: string[], cursor: { next: number }, connections: number, rate: number, seconds: number, latency: LatencyRecorder, samples: string[]): Promise<CannonRun> =>
  new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: base,
        connections,
        overallRate: rate,
        duration: seconds,
        pipelining: 1,
        timeout: 10,
        // Its correction for coordinated omission assumes an interval of ceil(1 / rate) = 1 ms whatever the
        // rate (seconds taken for milliseconds) and adds made-up samples; the exact per-response times are kept instead.
        ignoreCoordinatedOmission: true,
        requests: [
          {
            method: 'GET',
            headers: { authorization: `Bearer ${API_KEY}` },
            setupRequest: (request) => ({ ...request, path: paths[cursor.next++ % paths.length]! }),
            onResponse: (status, body) => {
              if ((status < 200 || status > 299) && samples.length < 5) samples.push(`${status} ${body.slice(0, 300)}`);
            },
          },
        ],
      },
      (error, result) => {
        if (error) return reject(error instanceof Error ? error : new Error(String(error)));
        const requests = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
        resolve({
          requests,
          ok: result['2xx'],
          notOk: result.non2xx,
          errors: result.errors + result.timeouts,
          duration: result.duration,
          p50: result.latency.p50,
          p99: result.latency.p99,
          max: result.latency.max,
        });
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latency.record(responseTime));
  });

/** GET /v1/worlds/{w}/entities/{id} at `load.rate`, ids round-robin, paced as `pacing` says. */
const driveGets = async (base: string, refs: EntityRef[], load: ReadLoad, seconds: number, pacing: Pacing, server = 'state-api'): Promise<ReadResult> => {
  const cursor = { next: 0 };
  const paths = refs.map((r) => `/v1/worlds/${r.worldId}/entities/${r.entityId}`);
  const samples: string[] = [];
  const latency = new LatencyRecorder();
  const runs =
    pacing === 'aligned'
      ? [await cannon(base, paths, cursor, load.connections, load.rate, seconds, latency, samples)]
      : await Promise.all(
          quotasOf(load)
            .map((quota, i) => ({ quota, i }))
            // A connection with no share (fewer requests per second than connections) is left out: autocannon reads rate 0 as unlimited.
            .filter(({ quota }) => quota > 0)
            .map(async ({ quota, i }) => {
              await new Promise((resolve) => setTimeout(resolve, (i * 1000) / load.connections));
              return cannon(base, paths, cursor, 1, quota, seconds, latency, samples);
            }),
        );
  const sum = (f: (r: CannonRun) => number) => runs.reduce((a, r) => a + f(r), 0);
  return {
    label: `${server} GET /v1/worlds/{w}/entities/{id}, ${pacing}`,
    requests: sum((r) => r.requests),
    // Each run's own rate, added up: the staggered runs' windows are shifted by up to a second.
    requestsPerSecond: Math.round(sum((r) => r.requests / r.duration)),
    ok: sum((r) => r.ok),
    notOk: sum((r) => r.notOk),
    errors: sum((r) => r.errors),
    latency: latency.summary(),
    durationSeconds: Math.max(...runs.map((r) => r.duration)),
    notOkSamples: samples,
    extra: { pacing, autocannonLatencyMs: runs.length === 1 ? { p50: runs[0]!.p50, p99: runs[0]!.p99, max: runs[0]!.max } : undefined },
  };
};

/** A server in a child process, warmed up, then one measurement per pacing; its CPU per request is added to each. */
const measureServer = async (options: {
  script: string;
  env: (port: number) => NodeJS.ProcessEnv;
  server: string;
  refs: EntityRef[];
  load: ReadLoad;
  pacings: Pacing[];
  execArgv: string[];
  counters?: (base: string) => Promise<Record<string, number>>;
}): Promise<ReadResult[]> => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = startNodeChild(options.script, options.env(port), options.execArgv);
  try {
    await waitForHttpOk(`${base}/health/ready`, server, 120_000);
    if (options.load.warmupSeconds > 0) {
      log(`  ${options.server}: warm-up ${options.load.warmupSeconds}s`);
      await driveGets(base, options.refs, options.load, options.load.warmupSeconds, options.pacings[0] ?? 'staggered', options.server);
    }
    const results: ReadResult[] = [];
    for (const pacing of options.pacings) {
      const before = await options.counters?.(base);
      const cpuBefore = processCpuMs(server.child.pid);
      log(`  ${options.server}: ${options.load.rate} req/s offered over ${options.load.connections} connections for ${options.load.seconds}s, ${pacing}`);
      const result = await driveGets(base, options.refs, options.load, options.load.seconds, pacing, options.server);
      const cpuAfter = processCpuMs(server.child.pid);
      const cpuUsPerRequest = cpuBefore === null || cpuAfter === null || result.requests === 0 ? null : Math.round(((cpuAfter - cpuBefore) * 1000) / result.requests);
      result.extra = { ...result.extra, cpuUsPerRequest };
      if (before) {
        const after = await options.counters!(base);
        result.extra.hotStateReads = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
      }
      log(`  ${result.requestsPerSecond} req/s, p50 ${result.latency.p50Ms} ms, p99 ${result.latency.p99Ms} ms, non-2xx ${result.notOk}, errors ${result.errors}, CPU ${cpuUsPerRequest ?? '?'} µs/request`);
      results.push(result);
    }
    return results;
  } finally {
    await server.stop();
  }
};

/** The built service in a child process (PROJECTOR=external: it only reads), with the hot keys of `prefix`. */
export const measureService = (options: {
  script: string;
  databaseUrl: string;
  schema: string;
  redisUrl: string;
  prefix: string;
  refs: EntityRef[];
  load: ReadLoad;
  /** One measurement per pacing, in this order, against the same service. */
  pacings: Pacing[];
  execArgv: string[];
}): Promise<ReadResult[]> =>
  measureServer({
    script: options.script,
    env: (port) => ({
      ...serviceEnv({ port, databaseUrl: options.databaseUrl, schema: options.schema, apiKeys: `${API_KEY}:game` }),
      REDIS_URL: options.redisUrl,
      REDIS_KEY_PREFIX: options.prefix,
      PROJECTOR: 'external',
    }),
    server: 'state-api',
    refs: options.refs,
    load: options.load,
    pacings: options.pacings,
    execArgv: options.execArgv,
    counters: hotReads,
  });

/**
 * The floors (floor-server.ts), each in its own child process, the same keys,
 * the same load: what this read costs a Node HTTP server on this machine.
 * `fastify`: bare Fastify + the same HMGET; `node`: the same read behind
 * Node's own `http` server; `static`: Node's `http` server and a fixed body, no
 * Redis.
 */
export type FloorKind = 'fastify' | 'node' | 'static';

const FLOOR_LABELS: Record<FloorKind, string> = {
  fastify: 'floor (Fastify + the same HMGET, no lorestore)',
  node: 'floor (node:http + the same HMGET, no framework)',
  static: 'floor (node:http, a fixed body, no Redis)',
};

export const measureFloor = async (options: { script: string; kind: FloorKind; redisUrl: string; prefix: string; refs: EntityRef[]; load: ReadLoad; pacing: Pacing }): Promise<ReadResult> => {
  const [result] = await measureServer({
    script: options.script,
    env: (port) => ({ ...baseEnv(), NODE_ENV: 'production', PORT: String(port), REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: options.prefix, FLOOR_KIND: options.kind }),
    server: FLOOR_LABELS[options.kind],
    refs: options.refs,
    load: options.load,
    pacings: [options.pacing],
    execArgv: [],
  });
  return result!;
};

/** lorestore_hot_state_reads_total by result (hit, miss, timeout, error), from /metrics. */
const hotReads = async (base: string): Promise<Record<string, number>> => {
  try {
    const text = await (await fetch(`${base}/metrics`)).text();
    const out: Record<string, number> = {};
    for (const match of text.matchAll(/^lorestore_hot_state_reads_total\{[^}]*result="([^"]+)"[^}]*\} (\S+)$/gm)) out[match[1]!] = Number(match[2]);
    return out;
  } catch {
    return {};
  }
};

/**
 * Baseline: HGETALL of the same keys through ioredis (one connection with
 * auto-pipelining, as the service's client), `connections` loops each sending
 * back to back up to its quota of rate/connections per second, as autocannon
 * does; with `staggered` pacing loop i's second starts i/connections of a
 * second after loop 0's.
 */
export const measureRedisReads = async (url: string, prefix: string, refs: EntityRef[], load: ReadLoad, pacing: Pacing): Promise<ReadResult> => {
  const redis = new Redis(url, { keyPrefix: prefix, enableAutoPipelining: true, maxRetriesPerRequest: 2 });
  const keys = refs.map((r) => hotKey('entities', r.worldId, r.entityId));
  const run = async (seconds: number): Promise<ReadResult> => {
    const latency = new LatencyRecorder();
    let next = 0;
    let ok = 0;
    let missing = 0;
    let errors = 0;
    let stop = false;
    const quotas = quotasOf(load);
    const offset = (c: number) => (pacing === 'staggered' ? (c * 1000) / load.connections : 0);
    // A staggered loop has nothing to send until its first second starts.
    const made = quotas.map((q, c) => (offset(c) > 0 ? q : 0));
    const paused: ((() => void) | null)[] = new Array<(() => void) | null>(load.connections).fill(null);
    const newSecond = (c: number) => {
      made[c] = 0;
      const resume = paused[c];
      paused[c] = null;
      resume?.();
    };
    const timers: NodeJS.Timeout[] = [];
    for (let c = 0; c < load.connections; c++) {
      if (offset(c) === 0) timers.push(setInterval(() => newSecond(c), 1000));
      else
        timers.push(
          setTimeout(() => {
            newSecond(c);
            timers.push(setInterval(() => newSecond(c), 1000));
          }, offset(c)),
        );
    }
    const started = performance.now();
    // Each loop runs `seconds` from the start of its own first second, as each staggered autocannon run does.
    const endOf = (c: number) => started + offset(c) + seconds * 1000;
    const loop = async (c: number) => {
      while (!stop && performance.now() < endOf(c)) {
        if (made[c]! >= quotas[c]!) {
          await new Promise<void>((resolve) => (paused[c] = resolve));
          continue;
        }
        made[c]!++;
        const t0 = performance.now();
        try {
          const hash = await redis.hgetall(keys[next++ % keys.length]!);
          latency.record(performance.now() - t0);
          if (hash.doc) ok++;
          else missing++;
        } catch {
          errors++;
        }
      }
    };
    const loops = Array.from({ length: load.connections }, (_, c) => loop(c));
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000 + Math.max(...Array.from({ length: load.connections }, (_, c) => offset(c)))));
    stop = true;
    for (const timer of timers) clearTimeout(timer);
    for (const resume of paused) resume?.();
    await Promise.all(loops);
    const duration = (performance.now() - started) / 1000;
    return {
      label: `ioredis HGETALL of the same keys, ${pacing}`,
      requests: ok + missing + errors,
      // Every loop ran `seconds` (staggered: the window shifted by its offset).
      requestsPerSecond: Math.round((ok + missing + errors) / seconds),
      ok,
      notOk: missing,
      errors,
      latency: latency.summary(),
      durationSeconds: Math.round(duration * 100) / 100,
      notOkSamples: missing > 0 ? [`${missing} keys not found`] : [],
    };
  };
  try {
    await redis.ping();
    if (load.warmupSeconds > 0) await run(load.warmupSeconds);
    log(`  ioredis HGETALL: ${load.rate}/s over ${load.connections} loops for ${load.seconds}s, ${pacing}`);
    return await run(load.seconds);
  } finally {
    redis.disconnect();
  }
};

/** `redis-benchmark … HGETALL <key>` (closed loop, as fast as it goes), when it is on PATH; null otherwise. */
export const redisBenchmark = async (url: string, key: string, connections: number, pipeline: number): Promise<RedisBenchmarkResult | null> => {
  const parsed = new URL(url);
  const args = ['-h', parsed.hostname || '127.0.0.1', '-p', parsed.port || '6379', '-c', String(connections), '-n', '100000', '-P', String(pipeline), '--csv'];
  if (parsed.password) args.push('-a', decodeURIComponent(parsed.password), '--no-auth-warning');
  if (parsed.username) args.push('--user', decodeURIComponent(parsed.username));
  const db = parsed.pathname.replace(/^\//, '');
  if (db) args.push('--dbnum', db);
  args.push('HGETALL', key);
  const output = await new Promise<string | null>((resolve) => {
    execFile('redis-benchmark', args, { timeout: 60_000 }, (error, stdout) => resolve(error ? null : stdout));
  });
  if (!output) return null;
  const lines = output.trim().split('\n').filter((l) => l.startsWith('"'));
  const cells = (line: string) => line.split('","').map((c) => c.replace(/^"|"$/g, ''));
  const header = lines[0] ? cells(lines[0]) : [];
  const row = lines[1] ? cells(lines[1]) : [];
  const field = (name: string) => Number(row[header.indexOf(name)]);
  if (header.indexOf('rps') < 0 || row.length !== header.length) return null;
  return {
    label: `redis-benchmark -c ${connections} -P ${pipeline} HGETALL (closed loop)`,
    requestsPerSecond: Math.round(field('rps')),
    p50Ms: field('p50_latency_ms'),
    p99Ms: field('p99_latency_ms'),
    maxMs: field('max_latency_ms'),
  };
};
