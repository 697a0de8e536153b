import type { PoolClient } from 'pg';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app';
import type { Database } from '../../apps/state-api/src/persistence/database';
import { DATABASE } from '../../apps/state-api/src/persistence/tokens';

/**
 * A saturated database pool through HTTP: 503 with Retry-After at once
 * beyond the queue, 503 after the acquire timeout in it, no connection
 * leaked, and the autoscale signal flipping by the brief's rule (thresholds
 * scaled down for the test: queue > 2 or wait > 300 ms up, queue < 1 for 1.5 s down).
 */
describe('pool exhaustion and the autoscale signal (e2e)', () => {
  let app: TestApp;
  let database: Database;
  beforeAll(async () => {
    app = await startTestApp('e2e_pool', {
      PROJECTOR: 'external', // no background projector competing for the two connections …
      EVENT_STORE: 'postgres', // … nor an EventStoreDB mirror holding one (the pool is the same in both modes)
      DATABASE_POOL_MIN: '0',
      DATABASE_POOL_MAX: '2',
      POOL_QUEUE_MAX: '3',
      POOL_ACQUIRE_TIMEOUT_MS: '700',
      AUTOSCALE_UP_QUEUE: '2',
      AUTOSCALE_UP_WAIT_MS: '300',
      AUTOSCALE_DOWN_QUEUE: '1',
      AUTOSCALE_DOWN_WINDOW_MS: '1500',
    });
    database = app.app.get<Database>(DATABASE);
  });
  afterAll(async () => {
    await app.close();
  });

  const list = () => app.request({ method: 'GET', url: '/v1/worlds/pool/entities' });
  const autoscale = async () => (await app.request({ method: 'GET', url: '/v1/admin/autoscale', key: ADMIN_KEY })).body;
  const gauge = async () => {
    const { body } = await app.request({ method: 'GET', url: '/metrics', key: null });
    const match = /lorestore_autoscale_signal\{reason="(\w+)"\} (-?\d)/.exec(body as string);
    return match ? { reason: match[1], value: Number(match[2]) } : null;
  };

  it('answers 503 + Retry-After at once beyond the queue and after the timeout in it; leaks nothing; the signal goes +1 then -1', async () => {
    expect((await list()).status).toBe(200);
    const held: PoolClient[] = [await database.primary.connect(), await database.primary.connect()];
    let released = false;
    try {
      const started = performance.now();
      const queued = [list(), list(), list()].map((p) => p.then((r) => ({ ...r, at: performance.now() })));
      await new Promise((r) => setTimeout(r, 50));
      expect(database.primary.stats().waiting).toBe(3);

      const refused = await list();
      expect(refused.status).toBe(503);
      expect(performance.now() - started).toBeLessThan(400); // well before the 700 ms timeout
      expect(refused.headers['retry-after']).toBe('1');
      expect(String(refused.headers['content-type'])).toContain('application/problem+json');
      expect(refused.body).toMatchObject({ status: 503, type: expect.stringContaining('pool-exhausted'), reason: 'queue-full', pool: 'primary' });

      // Queue depth 3 > 2: scale out.
      const up = await autoscale();
      expect(up).toMatchObject({ signal: 1, code: 'queue_depth', queueDepth: 3 });
      expect(await gauge()).toEqual({ reason: 'queue_depth', value: 1 });

      for (const r of await Promise.all(queued)) {
        expect(r.status).toBe(503);
        expect(r.body.reason).toBe('timeout');
        expect(r.headers['retry-after']).toBe('1');
        expect(r.at - started).toBeGreaterThanOrEqual(650);
      }
      // The waits ended: the queue is empty, but a wait > 300 ms happened within the last second.
      const waited = await autoscale();
      expect(waited.queueDepth).toBe(0);

      held.forEach((c) => c.release());
      released = true;
      expect(database.primary.stats()).toMatchObject({ inUse: 0, waiting: 0 });
      expect((await list()).status).toBe(200);
      expect(database.primary.stats()).toMatchObject({ inUse: 0, waiting: 0 });

      // Quiet (depth < 1) for the 1.5 s window: scale in.
      const deadline = Date.now() + 5000;
      let down = await autoscale();
      while (down.signal !== -1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        down = await autoscale();
      }
      expect(down).toMatchObject({ signal: -1, code: 'quiet' });
      expect(await gauge()).toEqual({ reason: 'quiet', value: -1 });
      const metrics = (await app.request({ method: 'GET', url: '/metrics', key: null })).body as string;
      // At least the refusals above (a background read of the checkpoints may have been refused too).
      const counted = (reason: string) => Number(new RegExp(`lorestore_db_pool_exhausted_total\\{pool="primary",reason="${reason}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
      expect(counted('queue-full')).toBeGreaterThanOrEqual(1);
      expect(counted('timeout')).toBeGreaterThanOrEqual(3);
      expect(metrics).toMatch(/lorestore_db_pool_waiting\{pool="primary"\} 0/);
    } finally {
      if (!released) held.forEach((c) => c.release());
    }
  });

  it('a wait beyond the threshold alone signals +1', async () => {
    const holder = [await database.primary.connect(), await database.primary.connect()];
    const queued = list();
    await new Promise((r) => setTimeout(r, 400));
    const decision = await autoscale();
    expect(decision).toMatchObject({ signal: 1, code: 'wait_time', queueDepth: 1 });
    expect(decision.waitMs).toBeGreaterThanOrEqual(300);
    holder.forEach((c) => c.release());
    expect((await queued).status).toBe(200);
  });

  it('GET /v1/admin/autoscale needs the admin role', async () => {
    expect((await app.request({ method: 'GET', url: '/v1/admin/autoscale' })).status).toBe(403);
    expect((await app.request({ method: 'GET', url: '/v1/admin/autoscale', key: null })).status).toBe(401);
  });
});
