import { existsSync } from 'node:fs';
import path from 'node:path';
import Redis, { Cluster } from 'ioredis';
import { processAlive } from '@lorestore/infra';
import { redisServerAvailable, startRedisCluster, type RedisClusterHarness } from '../support/redis-cluster';

jest.setTimeout(60_000);

const describeIfRedis = redisServerAvailable() || process.env.LORESTORE_REQUIRE_SERVICES === '1' ? describe : describe.skip;
const skipped = describeIfRedis === describe.skip ? ' (skipped: redis-server not on PATH — install redis to run it)' : '';

const KEYS = Array.from({ length: 100 }, (_, i) => `{world-${i}}:state`);

/** Retries through the window where the Cluster client still routes to a dead node or sees CLUSTERDOWN. */
const eventually = async <T>(attempt: () => Promise<T>, timeoutMs = 20_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
};

describeIfRedis(`Redis Cluster test harness${skipped}`, () => {
  let harness: RedisClusterHarness;
  let client: Cluster;
  // Asked from the servers themselves, so the harness needs no extra API for the stop assertions.
  const pids: number[] = [];
  let tempDir = '';

  beforeAll(async () => {
    const started = Date.now();
    harness = await startRedisCluster();
    console.log(`redis cluster: 6 nodes on ports ${harness.nodes[0]!.port}-${harness.nodes[5]!.port} ready in ${Date.now() - started} ms`);
    for (const { host, port } of harness.nodes) {
      const node = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await node.connect();
        pids.push(Number((await node.info('server')).match(/^process_id:(\d+)/m)![1]));
        const [, dir] = (await node.config('GET', 'dir')) as [string, string];
        tempDir = path.dirname(dir); // each node runs in <tempDir>/<port>
      } finally {
        node.disconnect();
      }
    }
    client = new Cluster(harness.nodes, { clusterRetryStrategy: () => 200, redisOptions: { connectTimeout: 1000 } });
    client.on('error', () => undefined); // connection errors to the killed node are expected
  }, 60_000);

  afterAll(async () => {
    client?.disconnect();
    await harness?.stop();
  });

  it('spreads hash-tagged keys over the 3 primaries and reads them back', async () => {
    await Promise.all(KEYS.map((key, i) => client.set(key, `value-${i}`)));
    expect(await Promise.all(KEYS.map((key) => client.get(key)))).toEqual(KEYS.map((_, i) => `value-${i}`));

    const perPrimary = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
    expect(perPrimary).toHaveLength(3);
    expect(perPrimary.every((n) => n > 0)).toBe(true);
    expect(perPrimary.reduce((a, b) => a + b, 0)).toBe(KEYS.length);
    // Replication is asynchronous: make sure every replica has the keys before a primary dies.
    expect(await Promise.all(client.nodes('master').map((node) => node.wait(1, 5000)))).toEqual([1, 1, 1]);
  });

  it('has 3 primaries, each with its own replica', async () => {
    const primaries = await harness.primaries();
    expect(primaries).toHaveLength(3);
    const replicas = await Promise.all(primaries.map((p) => harness.replicaOf(p.port)));
    expect(replicas.every((r) => r !== undefined)).toBe(true);
    const ports = new Set([...primaries, ...replicas].map((n) => n!.port));
    expect(ports).toEqual(new Set(harness.nodes.map((n) => n.port)));
  });

  it('promotes the replica of a killed primary and keeps every key readable', async () => {
    const [victim] = await harness.primaries();
    const replica = await harness.replicaOf(victim!.port);
    await harness.kill(victim!.port);
    await harness.waitHealthy();

    const primaries = (await harness.primaries()).map((p) => p.port);
    expect(primaries).toHaveLength(3);
    expect(primaries).toContain(replica!.port);
    expect(primaries).not.toContain(victim!.port);
    const values = await eventually(() => Promise.all(KEYS.map((key) => client.get(key))));
    expect(values).toEqual(KEYS.map((_, i) => `value-${i}`));
  });

  it('fails over on request: the replica becomes primary, the old primary its replica', async () => {
    const primaries = await harness.primaries();
    const withReplica = await Promise.all(primaries.map(async (p) => ({ primary: p, replica: await harness.replicaOf(p.port) })));
    const pair = withReplica.find((p) => p.replica)!;
    await harness.failover(pair.replica!.port);

    expect((await harness.primaries()).map((p) => p.port)).toContain(pair.replica!.port);
    expect((await harness.replicaOf(pair.replica!.port))?.port).toBe(pair.primary.port);
    await eventually(() => client.set(KEYS[0]!, 'after-failover'));
    expect(await eventually(() => client.get(KEYS[0]!))).toBe('after-failover');
  });

  it('stop() ends every redis-server it started and removes its temp dir', async () => {
    expect(pids).toHaveLength(6);
    expect(path.basename(tempDir)).toMatch(/^lorestore-redis-cluster-/);
    expect(existsSync(tempDir)).toBe(true);
    client.disconnect();
    await harness.stop();
    await harness.stop(); // idempotent
    expect(pids.filter(processAlive)).toEqual([]);
    expect(existsSync(tempDir)).toBe(false);
  });
});
