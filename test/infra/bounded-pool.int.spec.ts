import { BoundedPool, PoolExhaustedError, createPostgresPool } from '@lorestore/infra';
import { testDatabaseUrl } from '../support/services';

/**
 * The bounded pool against a real server: a saturated pool refuses the
 * caller beyond its queue at once, refuses a queued caller after the
 * acquire timeout, and leaks nothing either way.
 */
describe('BoundedPool: bounded wait queue (PostgreSQL)', () => {
  let pool: BoundedPool;
  const exhausted: string[] = [];
  beforeEach(() => {
    exhausted.length = 0;
    pool = createPostgresPool({
      url: testDatabaseUrl(),
      schema: 'public',
      name: 'test',
      max: 3,
      queueMax: 100,
      acquireTimeoutMs: 600,
      onExhausted: (reason) => exhausted.push(reason),
    });
  });
  afterEach(async () => {
    await pool.end();
  });

  const settle = <T>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value, at: performance.now() }), (error: unknown) => ({ ok: false as const, error, at: performance.now() }));

  it('with every connection busy, the 101st waiter is refused at once; a waiter past the timeout too; then all is idle again', async () => {
    // Saturate: 3 slow queries hold the 3 connections.
    const slow = Array.from({ length: 3 }, () => pool.query('SELECT pg_sleep(1.2)'));
    await new Promise((r) => setTimeout(r, 100));
    expect(pool.stats()).toMatchObject({ inUse: 3, waiting: 0 });

    const started = performance.now();
    const waiters = Array.from({ length: 100 }, () => settle(pool.query('SELECT 1 AS one')));
    expect(pool.stats().waiting).toBe(100);

    const refused = await settle(pool.query('SELECT 1'));
    expect(refused.ok).toBe(false);
    expect(refused.at - started).toBeLessThan(50); // at once, not after a wait
    expect(refused.ok ? null : refused.error).toBeInstanceOf(PoolExhaustedError);
    expect((refused as { error: PoolExhaustedError }).error.reason).toBe('queue-full');
    // The callback form (what pool.query uses inside) is bounded the same way.
    const viaCallback = await new Promise<Error | undefined>((resolve) => pool.connect((err) => resolve(err)));
    expect(viaCallback).toBeInstanceOf(PoolExhaustedError);

    // The queued ones time out after 600 ms: none waits longer, none hangs.
    const outcomes = await Promise.all(waiters);
    for (const o of outcomes) {
      expect(o.ok).toBe(false);
      const error = (o as { error: PoolExhaustedError }).error;
      expect(error).toBeInstanceOf(PoolExhaustedError);
      expect(error.reason).toBe('timeout');
      expect(o.at - started).toBeGreaterThanOrEqual(590);
      expect(o.at - started).toBeLessThan(1100);
    }
    expect(exhausted.filter((r) => r === 'queue-full')).toHaveLength(2);
    expect(exhausted.filter((r) => r === 'timeout')).toHaveLength(100);

    await Promise.all(slow);
    // Nothing leaked: every connection is back, idle, and the pool serves again.
    expect(pool.stats()).toMatchObject({ inUse: 0, waiting: 0, idle: 3, oldestWaitMs: 0 });
    expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    expect(pool.stats()).toMatchObject({ inUse: 0, waiting: 0 });
  });

  it('a queued caller that gets a connection in time is served, and its wait is reported', async () => {
    const waits: number[] = [];
    const observed = createPostgresPool({ url: testDatabaseUrl(), schema: 'public', name: 'observed', max: 1, queueMax: 5, acquireTimeoutMs: 2000, onAcquire: (ms) => waits.push(ms) });
    try {
      const holder = await observed.connect();
      const queued = observed.query('SELECT 2 AS two');
      await new Promise((r) => setTimeout(r, 150));
      expect(observed.stats().oldestWaitMs).toBeGreaterThanOrEqual(140);
      holder.release();
      expect((await queued).rows[0].two).toBe(2);
      expect(Math.max(...waits)).toBeGreaterThanOrEqual(140);
      expect(observed.stats()).toMatchObject({ inUse: 0, waiting: 0, idle: 1 });
    } finally {
      await observed.end();
    }
  });

  it('a queue of 0 refuses as soon as every connection is busy', async () => {
    const strict = createPostgresPool({ url: testDatabaseUrl(), schema: 'public', name: 'strict', max: 1, queueMax: 0, acquireTimeoutMs: 1000 });
    try {
      const holder = await strict.connect();
      await expect(strict.query('SELECT 1')).rejects.toMatchObject({ name: 'PoolExhaustedError', reason: 'queue-full' });
      holder.release();
      await expect(strict.query('SELECT 1')).resolves.toBeDefined();
    } finally {
      await strict.end();
    }
  });
});
