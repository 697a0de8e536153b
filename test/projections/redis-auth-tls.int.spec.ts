import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import type { Doc } from '@lorestore/projections';
import { ConfigError, loadConfig } from '../../apps/state-api/src/config';
import { createHotState } from '../../apps/state-api/src/projections/projections.providers';
import { redisServerAvailable, startRedisCluster, type RedisClusterHarness } from '../support/redis-cluster';
import { makeTestCerts, opensslAvailable, type TestCerts } from '../support/tls-certs';

/**
 * Managed Redis asks for AUTH and often for TLS: the service's own settings
 * (REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS, REDIS_TLS_CA_FILE) against real
 * redis-server processes on loopback that require them — one node with a
 * password and an ACL user, one node speaking only TLS with a certificate of a
 * throw-away CA, and a 6-node Cluster with both. Every server is a child of
 * this process and stopped by its handle.
 */

jest.setTimeout(60_000);

const available = redisServerAvailable() && opensslAvailable();
const describeIfRedis = available || process.env.LORESTORE_REQUIRE_SERVICES === '1' ? describe : describe.skip;
const skipped = describeIfRedis === describe.skip ? ' (skipped: redis-server or openssl not on PATH — install redis and openssl to run it)' : '';

const PASSWORD = 'correct horse battery staple';
const ACL_USER = 'lorestore';
const ACL_PASSWORD = 'an-acl-user-of-its-own';

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

type Server = { port: number; process: ChildProcess; exited: Promise<void> };

/** One redis-server with these arguments, answering PING (through `probe`) before this resolves. */
const startServer = async (dir: string, args: (port: number) => string[], probe: (port: number) => Redis): Promise<Server> => {
  const port = await freePort();
  const proc = spawn('redis-server', [...args(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = probe(port);
    client.on('error', () => undefined);
    try {
      if ((await client.ping()) === 'PONG') return { port, process: proc, exited };
    } catch (error) {
      if (Date.now() > deadline || proc.exitCode !== null) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server on ${port} did not answer: ${(error as Error).message}`, { cause: error });
      }
    } finally {
      client.disconnect();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
};

const probeOptions = { host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 };

const doc = (n: number): Doc => ({
  table: 'entities',
  streamId: `entity-auth-e${n}`,
  worldId: 'auth',
  id: `e${n}`,
  revision: 3n,
  position: 40n + BigInt(n),
  state: { kind: 'npc', n },
  updatedAt: '2026-11-26T10:00:00.000Z',
});

/** The hot state the service builds from these settings (config, then the same provider `npm start` uses). */
const hotStateFrom = (env: Record<string, string>) =>
  createHotState(loadConfig({ NODE_ENV: 'test', REDIS_KEY_PREFIX: `t${randomUUID().slice(0, 8)}:`, REDIS_CONNECT_TIMEOUT_MS: '1000', REDIS_COMMAND_TIMEOUT_MS: '1000', ...env }));

/** Writes documents and reads them back; throws if the store cannot be used. */
const roundTrip = async (env: Record<string, string>, count = 1): Promise<void> => {
  const hot = hotStateFrom(env);
  try {
    await hot.ping();
    const docs = Array.from({ length: count }, (_, n) => doc(n));
    await hot.put(docs);
    for (const d of docs) expect((await hot.get('entities', 'auth', d.id))?.state).toEqual(d.state);
  } finally {
    await hot.close();
  }
};

/** The error the store gives when it cannot be used with these settings (within a few seconds). */
const refusal = async (env: Record<string, string>): Promise<string> => {
  const hot = hotStateFrom(env);
  try {
    await hot.ping();
    return 'no error';
  } catch (error) {
    return (error as Error).message;
  } finally {
    await hot.close().catch(() => undefined);
  }
};

describeIfRedis(`Redis AUTH and TLS for managed Redis (REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS, REDIS_TLS_CA_FILE)${skipped}`, () => {
  let dir: string;
  let certs: TestCerts;
  let auth: Server;
  let tls: Server;
  const servers: Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lorestore-redis-auth-'));
    certs = makeTestCerts(dir);
    auth = await startServer(
      dir,
      (port) => ['--port', String(port), '--requirepass', PASSWORD, '--user', ACL_USER, 'on', `>${ACL_PASSWORD}`, '~*', '&*', '+@all'],
      (port) => new Redis({ ...probeOptions, port, password: PASSWORD }),
    );
    servers.push(auth);
    tls = await startServer(
      dir,
      (port) => ['--port', '0', '--tls-port', String(port), '--tls-cert-file', certs.certFile, '--tls-key-file', certs.keyFile, '--tls-ca-cert-file', certs.caFile, '--tls-auth-clients', 'no', '--requirepass', PASSWORD],
      (port) => new Redis({ ...probeOptions, port, password: PASSWORD, tls: { ca: readFileSync(certs.caFile) } }),
    );
    servers.push(tls);
  });

  afterAll(async () => {
    for (const server of servers) server.process.kill('SIGTERM');
    await Promise.all(servers.map((s) => s.exited));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('REDIS_PASSWORD reaches a server that requires one; without it, or with a wrong one, the hot state refuses', async () => {
    await roundTrip({ REDIS_URL: `redis://127.0.0.1:${auth.port}`, REDIS_PASSWORD: PASSWORD });
    expect(await refusal({ REDIS_URL: `redis://127.0.0.1:${auth.port}` })).toMatch(/NOAUTH/);
    expect(await refusal({ REDIS_URL: `redis://127.0.0.1:${auth.port}`, REDIS_PASSWORD: 'not it' })).toMatch(/WRONGPASS|invalid|max retries|timed? ?out/i);
  });

  it('an ACL user with REDIS_USERNAME; credentials written in REDIS_URL win over the variables', async () => {
    await roundTrip({ REDIS_URL: `redis://127.0.0.1:${auth.port}`, REDIS_USERNAME: ACL_USER, REDIS_PASSWORD: ACL_PASSWORD });
    // The URL's user and password are used, not the (wrong) variables.
    await roundTrip({ REDIS_URL: `redis://${ACL_USER}:${encodeURIComponent(ACL_PASSWORD)}@127.0.0.1:${auth.port}`, REDIS_USERNAME: 'nobody', REDIS_PASSWORD: 'not it' });
    expect(await refusal({ REDIS_URL: `redis://127.0.0.1:${auth.port}`, REDIS_USERNAME: ACL_USER, REDIS_PASSWORD: PASSWORD })).not.toBe('no error');
    // The user in the URL (a config map), the password in REDIS_PASSWORD (a secret): ioredis alone would send an empty password.
    await roundTrip({ REDIS_URL: `redis://${ACL_USER}@127.0.0.1:${auth.port}`, REDIS_PASSWORD: ACL_PASSWORD });
  });

  it('TLS: rediss:// (or REDIS_TLS) with REDIS_TLS_CA_FILE; the certificate is checked, so without the CA or under another name the connection is refused', async () => {
    await roundTrip({ REDIS_URL: `rediss://127.0.0.1:${tls.port}`, REDIS_PASSWORD: PASSWORD, REDIS_TLS_CA_FILE: certs.caFile });
    await roundTrip({ REDIS_URL: `redis://localhost:${tls.port}`, REDIS_TLS: 'true', REDIS_PASSWORD: PASSWORD, REDIS_TLS_CA_FILE: certs.caFile });
    // A CA file alone turns TLS on too (it only makes sense with TLS).
    await roundTrip({ REDIS_URL: `redis://127.0.0.1:${tls.port}`, REDIS_PASSWORD: PASSWORD, REDIS_TLS_CA_FILE: certs.caFile });
    expect(await refusal({ REDIS_URL: `rediss://127.0.0.1:${tls.port}`, REDIS_PASSWORD: PASSWORD })).not.toBe('no error');
    // The certificate names 127.0.0.1 and localhost only: checked against REDIS_TLS_SERVERNAME when set.
    await roundTrip({ REDIS_URL: `rediss://127.0.0.1:${tls.port}`, REDIS_PASSWORD: PASSWORD, REDIS_TLS_CA_FILE: certs.caFile, REDIS_TLS_SERVERNAME: 'localhost' });
    expect(await refusal({ REDIS_URL: `rediss://127.0.0.1:${tls.port}`, REDIS_PASSWORD: PASSWORD, REDIS_TLS_CA_FILE: certs.caFile, REDIS_TLS_SERVERNAME: 'redis.example.com' })).not.toBe('no error');
    // Plain text to a TLS-only port gets nowhere.
    expect(await refusal({ REDIS_URL: `redis://127.0.0.1:${tls.port}`, REDIS_PASSWORD: PASSWORD })).not.toBe('no error');
  });

  it('REDIS_TLS_CA_FILE that is missing or holds no certificate is a configuration error naming the variable', () => {
    const notPem = path.join(dir, 'not-a-cert.txt');
    writeFileSync(notPem, 'hello');
    for (const file of [path.join(dir, 'missing.pem'), notPem]) {
      const attempt = () => loadConfig({ NODE_ENV: 'test', REDIS_URL: 'rediss://127.0.0.1:6380', REDIS_TLS_CA_FILE: file });
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(/REDIS_TLS_CA_FILE: a readable PEM file with at least one CERTIFICATE/);
    }
    expect(() => loadConfig({ NODE_ENV: 'test', REDIS_URL: 'redis://127.0.0.1:6379', REDIS_TLS: 'yes please' })).toThrow(/REDIS_TLS/);
    // Settings that would do nothing, or not what they seem, stop the start.
    expect(() => loadConfig({ NODE_ENV: 'test', REDIS_PASSWORD: PASSWORD })).toThrow(/REDIS_PASSWORD set, but no Redis to use them for: set REDIS_URL or REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ NODE_ENV: 'test', REDIS_URL: 'redis://127.0.0.1:6379', REDIS_USERNAME: ACL_USER })).toThrow(/REDIS_USERNAME needs REDIS_PASSWORD/);
    expect(() => loadConfig({ NODE_ENV: 'test', REDIS_URL: 'rediss://127.0.0.1:6380', REDIS_TLS_SERVERNAME: 'not a name' })).toThrow(/REDIS_TLS_SERVERNAME: a host name/);
  });

  describe('a 6-node Redis Cluster that requires a password and speaks only TLS', () => {
    let cluster: RedisClusterHarness;

    beforeAll(async () => {
      cluster = await startRedisCluster({ password: PASSWORD, tls: certs });
    });

    afterAll(async () => {
      await cluster?.stop();
    });

    it('REDIS_CLUSTER_NODES with REDIS_PASSWORD, REDIS_TLS and REDIS_TLS_CA_FILE: documents over every primary are written and read; without the password it refuses within the command timeout', async () => {
      const seeds = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
      // 200 documents land on all three primaries' slots.
      await roundTrip({ REDIS_CLUSTER_NODES: seeds, REDIS_PASSWORD: PASSWORD, REDIS_TLS: 'true', REDIS_TLS_CA_FILE: certs.caFile }, 200);
      // No node lets it in: ioredis would queue the command until one does, without end; the hot state gives up
      // after REDIS_COMMAND_TIMEOUT_MS (1000 here), so readers fall back and the projector can open its bypass,
      // and it says why.
      const started = Date.now();
      expect(await refusal({ REDIS_CLUSTER_NODES: seeds, REDIS_TLS: 'true', REDIS_TLS_CA_FILE: certs.caFile })).toMatch(/Redis Cluster did not answer within 1000 ms \(\w+; last error: .*(NOAUTH|auth)/i);
      expect(Date.now() - started).toBeLessThan(5000);
      // A certificate from another CA is refused on every node.
      const stranger = makeTestCerts(await mkdtemp(path.join(dir, 'other-ca-')));
      expect(await refusal({ REDIS_CLUSTER_NODES: seeds, REDIS_PASSWORD: PASSWORD, REDIS_TLS_CA_FILE: stranger.caFile })).toMatch(/did not answer within 1000 ms/);
    });
  });
});
