import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { freePort } from '@lorestore/infra';
import { RedisHotState, hotKey } from '@lorestore/projections';
import { startTestApp, type TestApp } from '../support/app';
import { REQUIRE_SERVICES } from '../support/services';
import { execFileSync } from 'node:child_process';

const hasRedisServer = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const describeWithRedisServer = hasRedisServer || REQUIRE_SERVICES ? describe : describe.skip;

/**
 * The hot store goes away: commands keep succeeding, reads answer from
 * PostgreSQL with the current state, readiness stays 200 and says degraded;
 * when Redis returns, hot reads resume. A redis-server of the test's own,
 * stopped and started by its handle.
 */
describeWithRedisServer('Redis outage (e2e; needs redis-server on PATH)', () => {
  let redis: ChildProcess | null = null;
  let port: number;
  let app: TestApp;
  const world = 'outage';

  const startRedis = async () => {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      try {
        execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'ignore' });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error('redis-server did not start');
  };
  const stopRedis = async () => {
    const child = redis!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    redis = null;
  };

  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    app = await startTestApp('e2e_outage', { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_CONNECT_TIMEOUT_MS: '300', REDIS_COMMAND_TIMEOUT_MS: '200', HOT_STATE_BYPASS_AFTER_MS: '500' });
  });
  afterAll(async () => {
    await app?.close();
    if (redis) await stopRedis();
  });

  const command = (type: string, payload: unknown) => app.request({ method: 'POST', url: `/v1/worlds/${world}/commands`, body: { commandId: randomUUID(), type, payload } });
  const entity = (id: string, token?: number) =>
    app.request({ method: 'GET', url: `/v1/worlds/${world}/entities/${id}`, headers: token ? { 'x-consistency-token': String(token) } : {} });
  const hotResults = async () => {
    const { body } = await app.request({ method: 'GET', url: '/metrics', key: null });
    const n = (result: string) => Number(new RegExp(`lorestore_hot_state_reads_total\\{result="${result}"\\} (\\d+)`).exec(body as string)?.[1] ?? 0);
    return { hit: n('hit') };
  };

  it('keeps writes and reads going without Redis, says degraded, and uses Redis again once it is back', async () => {
    const entityId = randomUUID();
    const spawned = await command('entity.spawn', { entityId, kind: 'npc', attributes: { hp: 1 } });
    expect(spawned.status).toBe(200);
    expect((await entity(entityId, spawned.body.position)).status).toBe(200);

    const other = randomUUID();
    const otherSpawned = await command('entity.spawn', { entityId: other, kind: 'item', attributes: { hp: 0 } });
    await entity(other, otherSpawned.body.position);
    const hitsBefore = (await hotResults()).hit;
    await stopRedis();
    const otherUpdated = await command('entity.update', { entityId: other, set: { hp: 42 } }); // changed only while Redis is away
    for (let i = 2; i <= 6; i++) {
      const updated = await command('entity.update', { entityId, set: { hp: i } });
      expect(updated.status).toBe(200);
      const read = await entity(entityId, updated.body.position);
      expect(read.status).toBe(200);
      expect(read.body.attributes.hp).toBe(i);
    }
    const ready = await app.request({ method: 'GET', url: '/health/ready', key: null });
    expect(ready.status).toBe(200);
    expect(ready.body.info.hotState).toMatchObject({ status: 'up', degraded: true });
    expect((await hotResults()).hit).toBe(hitsBefore); // every read above came from PostgreSQL

    await startRedis();
    const last = await command('entity.update', { entityId, set: { hp: 7 } });
    expect(last.status).toBe(200);
    // The projector retries its hot-store write until Redis takes it; then reads hit Redis again.
    const deadline = Date.now() + 15_000;
    let hits = (await hotResults()).hit;
    for (;;) {
      const read = await entity(entityId, last.body.position);
      expect(read.status).toBe(200);
      expect(read.body.attributes.hp).toBe(7);
      const now = (await hotResults()).hit;
      if (now > hits) break;
      hits = now;
      if (Date.now() > deadline) throw new Error('reads never hit Redis again');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The projector caught Redis up with what changed while it was away, not only with what came after.
    const direct = new Redis(`redis://127.0.0.1:${port}`);
    try {
      const [revision, doc] = await direct.hmget(hotKey('entities', world, other), 'revision', 'doc');
      expect(Number(revision)).toBe(otherUpdated.body.revision);
      expect(JSON.parse(doc!).attributes.hp).toBe(42);
    } finally {
      direct.disconnect();
    }
    const again = await app.request({ method: 'GET', url: '/health/ready', key: null });
    expect(again.body.info.hotState.degraded).toBeUndefined();
  }, 60_000);

  it('a stalled Redis (SIGSTOP): group reads queue at most four pipelines, the rest fail at once, every read ends, and close() does not wait for them', async () => {
    const hot = new RedisHotState({ url: `redis://127.0.0.1:${port}`, ttlSeconds: 600, keyPrefix: 'stall:', connectTimeoutMs: 500, commandTimeoutMs: 1000 });
    const doc = { table: 'entities' as const, streamId: 'entity-s-e', worldId: 's', id: 'e', revision: 3n, position: 9n, state: { ok: true }, updatedAt: new Date().toISOString() };
    await hot.put([doc]);
    expect(await hot.get('entities', 's', 'e')).toMatchObject({ revision: 3n });
    redis!.kill('SIGSTOP');
    try {
      const started = Date.now();
      const settledAt: number[] = [];
      // Each read in its own turn of the event loop, as HTTP requests come: one pipeline goes out and stalls.
      const reads: Promise<{ error?: unknown }>[] = [];
      for (let i = 0; i < 2000; i++) {
        const settled = (outcome: { error?: unknown }) => {
          settledAt.push(Date.now() - started);
          return outcome;
        };
        reads.push(hot.get('entities', 's', 'e').then(() => settled({}), (error: unknown) => settled({ error })));
        if (i % 100 === 0) await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 50));
      // Beyond four pipelines' worth (1,024) the reads failed without waiting.
      const early = settledAt.length;
      expect(early).toBeGreaterThanOrEqual(2000 - 1 - 1024);
      const closing = Date.now();
      await hot.close();
      // Not the backlog's time: at most the stalled pipeline's command timeout and QUIT's.
      expect(Date.now() - closing).toBeLessThan(2500);
      const outcomes = await Promise.all(reads);
      expect(outcomes.every((o) => o.error !== undefined)).toBe(true);
      expect(outcomes.filter((o) => /already wait for a batch/.test(String(o.error))).length).toBe(early);
    } finally {
      redis!.kill('SIGCONT');
    }
  }, 30_000);
});
