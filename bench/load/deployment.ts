import path from 'node:path';
import type { Pool } from 'pg';
import { freePort } from '@lorestore/infra';
import { startNodeChild, waitForHttpOk, type RunningChild } from '../support/child-process';
import { quoteIdent } from '../support/database';
import { log } from '../support/env';
import type { World } from './mix';
import { baseEnv, serviceEnv } from '../support/service-env';

export const API_KEY = 'benchkey';
export const ADMIN_KEY = 'benchadmin';

export const SERVICE_MAIN = path.resolve(__dirname, '..', '..', 'apps', 'state-api', 'src', 'main.js');
export const PROJECTOR_MAIN = path.resolve(__dirname, '..', '..', 'apps', 'projector', 'src', 'main.js');
export const BASELINE_MAIN = path.join(__dirname, 'baseline-server.js');

export type Deployment = { base: string; stop: () => Promise<void> };


const stopAll = async (children: RunningChild[]): Promise<void> => {
  // Reverse order of start; each gets SIGTERM, then SIGKILL after 10 s.
  for (const child of [...children].reverse()) await child.stop(10_000).catch(() => undefined);
};

/** The tables the baseline reads and writes: `items` (rows by primary key) and `actions` (one row per request). */
export const createBaselineTables = async (admin: Pool, schema: string, rows: number): Promise<void> => {
  const s = quoteIdent(schema);
  await admin.query(`CREATE SCHEMA ${s}`);
  await admin.query(`CREATE TABLE ${s}.items (id int PRIMARY KEY, kind text NOT NULL, attributes jsonb NOT NULL)`);
  await admin.query(
    `CREATE TABLE ${s}.actions (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item_id int NOT NULL, body jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
  );
  await admin.query(
    `INSERT INTO ${s}.items SELECT i, CASE WHEN i % 2 = 0 THEN 'npc' ELSE 'item' END, jsonb_build_object('hp', 100, 'name', 'thing ' || i)
       FROM generate_series(1, $1::int) AS i`,
    [rows],
  );
  await admin.query(`ANALYZE ${s}.items`);
};

export const startBaseline = async (options: { databaseUrl: string; schema: string; redisUrl: string; prefix: string; rows: number }): Promise<Deployment> => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = startNodeChild(BASELINE_MAIN, {
    ...baseEnv(),
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: options.databaseUrl,
    DATABASE_SCHEMA: options.schema,
    REDIS_URL: options.redisUrl,
    REDIS_KEY_PREFIX: options.prefix,
    BASELINE_ROWS: String(options.rows),
  });
  try {
    await waitForHttpOk(`${base}/health/ready`, server, 60_000);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { base, stop: () => stopAll([server]) };
};

/** Polls a child's output for a line; fails when it exits first or time runs out. */
const waitForLine = async (child: RunningChild, pattern: RegExp, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pattern.test(child.tail())) return;
    if (child.child.exitCode !== null || child.child.signalCode !== null) throw new Error(`process exited before ${pattern}:\n${child.tail()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no ${pattern} after ${timeoutMs} ms:\n${child.tail()}`);
};

/**
 * The production shape on one box: the built state-api (PROJECTOR=external)
 * and the standalone projector, same environment, hot state in Redis under
 * `prefix`. The API migrates the schema at boot; the projector starts after it.
 */
export const startLorestore = async (options: { databaseUrl: string; schema: string; redisUrl: string; prefix: string }): Promise<Deployment> => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    ...serviceEnv({ port, databaseUrl: options.databaseUrl, schema: options.schema, apiKeys: `${API_KEY}:game,${ADMIN_KEY}:admin` }),
    PROJECTOR: 'external',
    REDIS_URL: options.redisUrl,
    REDIS_KEY_PREFIX: options.prefix,
  };
  const children: RunningChild[] = [];
  try {
    const api = startNodeChild(SERVICE_MAIN, env);
    children.push(api);
    await waitForHttpOk(`${base}/health/ready`, api, 120_000);
    const projector = startNodeChild(PROJECTOR_MAIN, env);
    children.push(projector);
    await waitForLine(projector, /\[lorestore-projector\] running/, 120_000);
  } catch (error) {
    await stopAll(children);
    throw error;
  }
  return { base, stop: () => stopAll(children) };
};

export type ProjectionStatus = { name: string; status: string; lag: { events: number | string; ms: number | string | null } };

export const projectionStatuses = async (base: string): Promise<ProjectionStatus[]> => {
  const response = await fetch(`${base}/v1/admin/projections`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`GET /v1/admin/projections: ${response.status} ${(await response.text()).slice(0, 300)}`);
  return (await response.json()) as ProjectionStatus[];
};

/** The largest lag (events) over the projections. */
export const maxLag = (statuses: ProjectionStatus[]): number => Math.max(0, ...statuses.map((s) => Number(s.lag?.events ?? 0)));

/** Waits until every projection has lag.events == 0; returns how long it took and the lag seen first. */
export const waitCaughtUp = async (base: string, timeoutMs: number): Promise<{ ms: number; initialLagEvents: number }> => {
  const started = performance.now();
  let initial: number | null = null;
  let last = '';
  while (performance.now() - started < timeoutMs) {
    const statuses = await projectionStatuses(base);
    const lag = maxLag(statuses);
    initial ??= lag;
    if (lag === 0) return { ms: Math.round(performance.now() - started), initialLagEvents: initial };
    last = statuses.map((s) => `${s.name} ${s.status} lag ${s.lag?.events}`).join(', ');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`projections not caught up after ${timeoutMs} ms: ${last}`);
};

const post = async (base: string, worldId: string, body: object): Promise<void> => {
  const response = await fetch(`${base}/v1/worlds/${worldId}/commands`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  if (response.status !== 200) throw new Error(`${response.status} ${(await response.text()).slice(0, 300)}`);
  await response.arrayBuffer();
};

/**
 * The world before measuring, through the API: an entity.spawn per entity and
 * a player.record_action per player (so GET player has a document), `concurrency` in flight.
 */
export const seedWorld = async (base: string, world: World, concurrency: number): Promise<{ commands: number; seconds: number }> => {
  const jobs: object[] = [
    ...world.entityIds.map((entityId, i) => ({
      commandId: crypto.randomUUID(),
      type: 'entity.spawn',
      payload: { entityId, kind: i % 2 === 0 ? 'npc' : 'item', attributes: { hp: 100, name: `thing ${i}` } },
    })),
    ...world.playerIds.map((playerId) => ({
      commandId: crypto.randomUUID(),
      type: 'player.record_action',
      payload: { playerId, action: 'login', context: { zone: 0 } },
    })),
  ];
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      await post(base, world.worldId, job);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Math.round((performance.now() - started) / 10) / 100;
  log(`  seeded ${jobs.length} commands in ${seconds}s`);
  return { commands: jobs.length, seconds };
};

/** GET each of `paths` once: every one must answer 200 (the read models have the seeded world). */
export const checkReads = async (base: string, paths: string[]): Promise<void> => {
  for (const p of paths) {
    const response = await fetch(`${base}${p}`, { headers: { authorization: `Bearer ${API_KEY}` }, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`GET ${p}: ${response.status} ${text.slice(0, 300)}`);
  }
};
