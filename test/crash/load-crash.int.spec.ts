import { randomBytes, randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { PostgresEventStore, comparePositions, type Position } from '@lorestore/event-store';
import { InlineReadModels, ReadModelStore } from '@lorestore/projections';
import { createPostgresPool, type BoundedPool } from '@lorestore/infra';
import { runLoad, type GameCommand } from '../support/load-generator';
import { canStartPgCluster, startPgCluster, type PgCluster } from '../support/pg-cluster';
import { expectedOf, lastCommitted, readBackPostgres, readBackRedis, wholeLog } from '../support/read-models';
import { REQUIRE_SERVICES, describeWithRedis } from '../support/services';
import { cleanUpServiceProcesses, startProjectorProcess, startServiceProcess, type ServiceProcess } from '../support/service-process';

const describeWithBinaries = canStartPgCluster() || REQUIRE_SERVICES ? describeWithRedis : (title: string) => describe.skip(`${title} (skipped: no PostgreSQL server binaries in ${process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'})`, () => undefined);

/**
 * Invariant 1 and 5 under the worst a deployment sees, all at once: two
 * state-api processes and two projector processes (hot/cold) on one
 * PostgreSQL server of the test's own, commands arriving at a steady rate,
 * and meanwhile SIGKILLs of APIs and of the leading projector, and a restart
 * of the PostgreSQL server. Afterwards every command answered 2xx is in the
 * log exactly once, no command is in it twice, and every read model (rows
 * and Redis hot state) equals a fresh fold of the log. The standby
 * projector's takeover time is measured at each kill of the leader.
 */
describeWithBinaries('crash: load on 2 APIs + 2 projectors while processes are SIGKILLed and PostgreSQL restarts', (redisUrl: string) => {
  let cluster: PgCluster;
  let pool: BoundedPool;
  let redis: Redis;
  const prefix = `loadcrash:${randomBytes(4).toString('hex')}:`;
  const KEY = 'load-crash-key';
  const world = 'siege';
  const apis: (ServiceProcess | null)[] = [null, null];
  const projectors: (ServiceProcess | null)[] = [null, null];

  const env = () => ({
    DATABASE_URL: cluster.primary.url,
    DATABASE_SCHEMA: 'lorestore',
    API_KEYS: `${KEY}:game`,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    PROJECTOR: 'external',
    DATABASE_POOL_MIN: '2',
    DATABASE_POOL_MAX: '10',
    PROJECTION_BATCH_SIZE: '50',
    RATE_LIMIT_MAX: '0',
    VECTOR_DIMENSION: '2',
    // Fail fast while the server restarts, as a client would want.
    POOL_ACQUIRE_TIMEOUT_MS: '2000',
  });

  beforeAll(async () => {
    cluster = await startPgCluster({ replicas: 0, label: 'loadcrash' });
    redis = new Redis(redisUrl);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([...apis, ...projectors].map((p) => p?.kill('SIGKILL')));
    await pool?.end().catch(() => undefined);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await cluster?.stop();
    await cleanUpServiceProcesses();
  });

  const leadingCount = (p: ServiceProcess | null) => (p?.output?.().match(/projector: leading [a-z_, ]*entities/g) ?? []).length;
  /** Kills the projector that leads the read models and measures how long the other takes to lead. */
  const killLeader = async (): Promise<number> => {
    const leaderIndex = projectors.findIndex((p, i) => leadingCount(p) > 0 && leadingCount(p) >= leadingCount(projectors[1 - i]!));
    expect(leaderIndex).toBeGreaterThanOrEqual(0);
    const standby = projectors[1 - leaderIndex]!;
    const before = leadingCount(standby);
    await projectors[leaderIndex]!.kill('SIGKILL');
    const killedAt = performance.now();
    while (leadingCount(standby) === before) {
      if (performance.now() - killedAt > 15_000) throw new Error(`standby did not take over within 15 s:\n${standby.output?.().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const takeover = performance.now() - killedAt;
    projectors[leaderIndex] = await startProjectorProcess(env(), { standby: true });
    return takeover;
  };
  const restartApi = async (i: number) => {
    await apis[i]!.kill('SIGKILL');
    apis[i] = null;
    await new Promise((r) => setTimeout(r, 300));
    apis[i] = await startServiceProcess(env());
  };

  const players = Array.from({ length: 30 }, () => randomUUID());
  const entities = Array.from({ length: 40 }, () => randomUUID());
  const next = (i: number): GameCommand => {
    if (i < entities.length) return { type: 'entity.spawn', payload: { entityId: entities[i], kind: i % 2 ? 'npc' : 'item', attributes: { n: i } } };
    const player = players[i % players.length];
    const entity = entities[(i * 7) % entities.length];
    switch (i % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
        return { type: 'player.record_action', payload: { playerId: player, action: `act-${i % 7}`, context: { i } } };
      case 4:
      case 5:
        return { type: 'entity.update', payload: { entityId: entity, set: { hp: i % 100, [`k${i % 5}`]: i } } };
      case 6:
        return { type: 'entity.move', payload: { entityId: entity, locationId: entities[(i * 3) % entities.length] } };
      case 7:
        return { type: 'player.change_relationship', payload: { playerId: player, targetId: players[(i * 11) % players.length], delta: (i % 9) - 4 } };
      case 8:
        return { type: 'world.set_weather', payload: { weather: ['rain', 'sun', 'fog'][i % 3] } };
      default:
        return { type: 'narrative.set_flag', payload: { flag: `f${i % 6}`, value: i } };
    }
  };

  it('keeps every acknowledged command exactly once and read models equal to a fresh replay', async () => {
    apis[0] = await startServiceProcess(env());
    apis[1] = await startServiceProcess(env());
    projectors[0] = await startProjectorProcess(env());
    projectors[1] = await startProjectorProcess(env(), { standby: true });

    const load = runLoad({
      targets: () => apis.filter((a): a is ServiceProcess => a !== null).map((a) => a.url),
      ratePerSecond: 120,
      apiKey: KEY,
      world,
      next,
      timeoutMs: 8000,
    });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const takeovers: number[] = [];

    await sleep(2500);
    await restartApi(0);
    await sleep(1500);
    takeovers.push(await killLeader());
    await sleep(1500);
    const restartStarted = performance.now();
    await cluster.primary.restart();
    const primaryRestartMs = performance.now() - restartStarted;
    await sleep(2500);
    await restartApi(1);
    await sleep(1500);
    takeovers.push(await killLeader());
    await sleep(1500);
    await Promise.all([restartApi(0), killLeader().then((t) => takeovers.push(t))]);
    await sleep(2500);
    const report = await load.stop();

    // Every process that was not killed on purpose survived the server restart.
    for (const p of [...apis, ...projectors]) expect(p!.child.exitCode).toBeNull();

    pool = createPostgresPool({ url: cluster.primary.url, schema: 'lorestore', max: 4 });
    const { rows } = await pool.query<{ command_id: string; n: string }>("SELECT metadata->>'commandId' AS command_id, count(*) AS n FROM events GROUP BY 1");
    const counts = new Map(rows.map((r) => [r.command_id, Number(r.n)]));
    const acknowledged = report.outcomes.filter((o) => typeof o.status === 'number' && o.status < 300);
    // A command that changed nothing (the weather it already had, say) is answered 2xx with no events.
    const lost = acknowledged.filter((o) => (counts.get(o.commandId) ?? 0) !== o.events);
    const noOps = acknowledged.filter((o) => o.events === 0).length;
    const duplicated = rows.filter((r) => Number(r.n) > 1);
    const refusedButStored = report.outcomes.filter((o) => typeof o.status === 'number' && o.status >= 400 && o.status < 500 && counts.has(o.commandId));
    const byStatus = new Map<string, number>();
    for (const o of report.outcomes) byStatus.set(String(o.status), (byStatus.get(String(o.status)) ?? 0) + 1);
    console.log(
      `load crash test: sent ${report.sent}, acknowledged ${report.acknowledged} (${noOps} of them no-ops), refused (4xx) ${report.refused}, failed (5xx/cut) ${report.failed}, ` +
        `failed but committed ${report.outcomes.filter((o) => (o.status === 'failed' || (typeof o.status === 'number' && o.status >= 500)) && counts.get(o.commandId) === 1).length}, ` +
        `lost ${lost.length}, duplicated ${duplicated.length}; statuses ${JSON.stringify(Object.fromEntries(byStatus))}; ` +
        `projector takeovers ${takeovers.map((t) => `${Math.round(t)} ms`).join(', ')}; PostgreSQL restart ${Math.round(primaryRestartMs)} ms`,
    );
    expect(report.acknowledged).toBeGreaterThan(report.sent * 0.6);
    expect(lost.slice(0, 5)).toEqual([]);
    expect(acknowledged.length - noOps).toBeGreaterThan(report.sent * 0.5);
    expect(duplicated).toEqual([]);
    expect(refusedButStored).toEqual([]);
    // No 500: a lost server or a killed peer is 503 (or a cut connection), never an internal error.
    expect(byStatus.get('500') ?? 0).toBe(0);
    for (const t of takeovers) expect(t).toBeLessThan(5000);

    // The projector catches up, then every read model equals a fresh fold of the whole log.
    const store = new PostgresEventStore({ pool, schema: 'lorestore' });
    const last = await lastCommitted(pool);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const checkpoints = await new ReadModelStore(pool).checkpoints();
      const low: Position | null = checkpoints.length >= 5 ? checkpoints.map((c) => c.position).reduce((a, b) => (comparePositions(a, b) <= 0 ? a : b)) : null;
      if (low && last && comparePositions(low, last) >= 0) break;
      if (Date.now() > deadline) throw new Error('the projectors did not catch up');
      await new Promise((r) => setTimeout(r, 100));
    }
    const log = await wholeLog(store, pool);
    const fold = new InlineReadModels();
    fold.apply(log);
    const want = expectedOf(fold);
    const rowsNow = await readBackPostgres(pool);
    expect(rowsNow.docs.size).toBe(want.docs.size);
    for (const [key, doc] of want.docs) expect([key, rowsNow.docs.get(key)]).toEqual([key, doc]);
    expect(rowsNow.history).toEqual(want.history);
    const hot = await readBackRedis(redis, prefix, fold.docs.values());
    for (const [key, doc] of want.docs) expect([key, hot.get(key)]).toEqual([key, doc]);
    await store.close();
  }, 180_000);
});
