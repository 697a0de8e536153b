import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Pool } from 'pg';
import { PostgresEventStore } from '@lorestore/event-store';
import { createPostgresPool, freePort } from '@lorestore/infra';
import { driveCommands } from './http/load';
import { summarize, type Measured, type Outcome } from './http/summary';
import { startNodeChild, waitForHttpOk } from './support/child-process';
import { acquireDatabase, adminPool, checkpoint, dropSchemas, freshSchema, redactUrl } from './support/database';
import { envNumber, log } from './support/env';
import { createEventsTable } from './support/events-table';
import { prefillEventsTable, prefillLorestore } from './support/history';
import { describeMachine, durabilityWarnings, machineLine } from './support/machine';
import { printReport } from './support/report';
import { baseEnv, serviceEnv } from './support/service-env';

const API_KEY = 'benchkey';
const WORLD = 'bench-world';
const SERVICE_MAIN = path.resolve(__dirname, '..', 'apps', 'state-api', 'src', 'main.js');
const CEILING_MAIN = path.join(__dirname, 'http', 'ceiling-server.js');



type Load = { connections: number; seconds: number; warmupSeconds: number; playerIds: string[] };

/**
 * Starts a server, waits for /health/ready, warms it up, measures, stops it.
 * `withStats`: the server has GET /stats and POST /stats/reset (the ceiling does).
 */
const measureServer = async (
  name: string,
  script: string,
  env: NodeJS.ProcessEnv,
  port: number,
  load: Load,
  options: { execArgv?: string[]; withStats?: boolean } = {},
): Promise<Measured> => {
  const base = `http://127.0.0.1:${port}`;
  const server = startNodeChild(script, env, options.execArgv ?? []);
  try {
    await waitForHttpOk(`${base}/health/ready`, server, 120_000);
    const drive = (seconds: number) =>
      driveCommands({ url: base, worldId: WORLD, apiKey: API_KEY, connections: load.connections, seconds, playerIds: load.playerIds });
    if (load.warmupSeconds > 0) {
      log(`${name}: warm-up ${load.warmupSeconds}s`);
      await drive(load.warmupSeconds);
    }
    if (options.withStats) await fetch(`${base}/stats/reset`, { method: 'POST' });
    log(`${name}: ${load.connections} connections for ${load.seconds}s`);
    const result: Measured = await drive(load.seconds);
    if (options.withStats) result.serverStats = (await (await fetch(`${base}/stats`)).json()) as Record<string, number>;
    log(`  ${result.ok2xx} x 2xx (${result.requestsPerSecond} req/s), p50 ${result.latency.p50Ms} ms, p99 ${result.latency.p99Ms} ms, non-2xx ${result.non2xx}`);
    for (const sample of result.non2xxSamples) log(`  non-2xx: ${sample}`);
    return result;
  } finally {
    await server.stop();
  }
};

/** Runs `work` on a small pool whose search_path is `schema`. */
const inSchema = async (url: string, schema: string, work: (pool: Pool) => Promise<void>): Promise<void> => {
  const pool = createPostgresPool({ url, schema, max: 1, applicationName: 'lorestore-bench' });
  try {
    await work(pool);
  } finally {
    await pool.end();
  }
};

/**
 * `npm run bench -- http`: the full command path (built service, child
 * process) against its ceiling (bare Fastify + one micro-batched INSERT per
 * request), same autocannon load, same database, same run.
 */
export const runHttpBench = async (): Promise<void> => {
  const seconds = envNumber('BENCH_HTTP_SECONDS', 10, 1, 600);
  const warmupSeconds = envNumber('BENCH_HTTP_WARMUP_SECONDS', 2, 0, 60);
  const connections = envNumber('BENCH_HTTP_CONNECTIONS', 64, 1, 1024);
  const players = envNumber('BENCH_HTTP_PLAYERS', 1000, 1, 100_000);
  // inline (the default): the service also runs the projections on the same cores, as `npm start` does;
  // external: commands only, as an API instance does when the projector runs elsewhere.
  const projector = process.env.BENCH_HTTP_PROJECTOR || 'inline';
  if (projector !== 'inline' && projector !== 'external') throw new Error(`BENCH_HTTP_PROJECTOR must be inline or external, got "${projector}"`);
  const prefill = envNumber('BENCH_PREFILL', 0, 0, 10_000_000);
  const cpuProfDir = process.env.BENCH_CPU_PROF;
  // The previous approach in the same run: the service again with every append batch through append_batch.
  const measurePrevious = envNumber('BENCH_HTTP_PREVIOUS', 1, 0, 1) === 1;
  const load: Load = { connections, seconds, warmupSeconds, playerIds: Array.from({ length: players }, () => randomUUID()) };

  const db = await acquireDatabase();
  const admin = adminPool(db.url);
  const schemas: string[] = [];
  const startedAt = new Date();
  let machine;
  let ceiling: Outcome;
  let service: Outcome;
  let previous: Outcome | null = null;
  try {
    machine = await describeMachine(admin, db.source, redactUrl(db.url));
    log(machineLine(machine));
    for (const warning of durabilityWarnings(machine)) log(`WARNING: ${warning}`);

    const ceilingSchema = freshSchema('bench_ceiling');
    schemas.push(ceilingSchema);
    await createEventsTable(admin, ceilingSchema);
    if (prefill > 0) {
      log(`ceiling: writing ${prefill} events of history first`);
      await inSchema(db.url, ceilingSchema, (pool) => prefillEventsTable(pool, ceilingSchema, prefill));
    }
    await checkpoint(admin);
    try {
      const port = await freePort();
      const env = { ...baseEnv(), PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: db.url, DATABASE_SCHEMA: ceilingSchema };
      ceiling = { result: await measureServer('ceiling (bare Fastify + micro-batched INSERT)', CEILING_MAIN, env, port, load, { withStats: true }) };
    } catch (error) {
      ceiling = { failed: error instanceof Error ? error.message : String(error) };
      log(`ceiling failed: ${ceiling.failed}`);
    }

    /** The built service on a fresh schema of its own, under the load. */
    const measureService = async (label: string, extraEnv: Record<string, string>): Promise<Outcome> => {
      const serviceSchema = freshSchema('bench_api');
      schemas.push(serviceSchema);
      if (prefill > 0) {
        // Migrated here so the history can go in first; the service finds the migrations applied.
        log(`${label}: writing ${prefill} events of history first`);
        await inSchema(db.url, serviceSchema, async (pool) => {
          await PostgresEventStore.migrate(pool, serviceSchema);
          await prefillLorestore(pool, serviceSchema, prefill);
        });
      }
      await checkpoint(admin);
      try {
        const port = await freePort();
        const env = {
          ...serviceEnv({ port, databaseUrl: db.url, schema: serviceSchema, apiKeys: `${API_KEY}:game` }),
          PROJECTOR: projector,
          ...extraEnv,
        };
        const execArgv = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
        return { result: await measureServer(label, SERVICE_MAIN, env, port, load, { execArgv }) };
      } catch (error) {
        const failed = error instanceof Error ? error.message : String(error);
        log(`${label} failed: ${failed}`);
        return { failed };
      }
    };

    if (!existsSync(SERVICE_MAIN)) {
      service = { skipped: `${path.relative(process.cwd(), SERVICE_MAIN)} does not exist: build the service first (npm run build)` };
      log(service.skipped);
    } else {
      service = await measureService('service (node dist/apps/state-api/src/main.js)', {});
      if (measurePrevious) previous = await measureService('service, APPEND_FAST_PATH=false', { APPEND_FAST_PATH: 'false' });
    }
  } finally {
    await dropSchemas(admin, schemas).catch((error: unknown) => log(`could not drop schemas ${schemas.join(', ')}: ${String(error)}`));
    await admin.end();
    await db.release();
  }

  const title =
    `http: POST /v1/worlds/{w}/commands, ${connections} connections, ${seconds}s, ` +
    `${prefill > 0 ? `tables prefilled with ${prefill} events and analyzed` : 'empty tables'}, projector ${projector}`;
  const summary = summarize(ceiling, service, title, previous);
  const report = {
    bench: 'http',
    startedAt: startedAt.toISOString(),
    machine,
    settings: {
      connections,
      seconds,
      warmupSeconds,
      players,
      projector,
      prefilledEvents: prefill,
      route: `POST /v1/worlds/${WORLD}/commands`,
      command: 'player.record_action',
    },
    ceiling,
    service,
    previous,
    serviceVsPrevious: summary.vsPrevious,
    serviceFractionOfCeiling: summary.fraction,
    targets: summary.targets,
  };
  const notes = [
    ...(machine ? [machineLine(machine), ...durabilityWarnings(machine).map((w) => `WARNING: ${w}`)] : []),
    ...summary.notes,
  ];
  printReport(report, [summary.table], notes);
  if ('failed' in service || 'failed' in ceiling || (previous && 'failed' in previous)) process.exitCode = 1;
};
