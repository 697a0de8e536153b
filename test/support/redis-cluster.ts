import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import type { TestCerts } from './tls-certs';

/**
 * A real 6-node Redis Cluster (3 primaries, 3 replicas) on loopback, for tests
 * that need slots, redirections and failover. Every redis-server is a child of
 * this process and is stopped by its handle, never by name, so the machine's
 * own Redis and other test runs are left alone.
 */
export type RedisClusterHarness = {
  nodes: { host: string; port: number }[];
  /** As started: every node asks for this password, and speaks only TLS with this CA's certificate. */
  password?: string;
  tls?: TestCerts;
  /** The primaries the cluster reports in CLUSTER NODES, minus failed or killed ones. */
  primaries(): Promise<{ host: string; port: number }[]>;
  replicaOf(primaryPort: number): Promise<{ host: string; port: number } | undefined>;
  /** CLUSTER FAILOVER on that replica; resolves once it is master and the cluster is healthy. */
  failover(replicaPort: number): Promise<void>;
  /** SIGKILLs the node; it stays dead and is ignored by waitHealthy and stop. */
  kill(port: number): Promise<void>;
  /** Until every live node says cluster_state:ok and all slots belong to 3 live primaries. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** SIGTERM, SIGKILL after 2 s, then removes the temp dir. Idempotent. */
  stop(): Promise<void>;
};

type ClusterNode = { id: string; port: number; flags: string[]; masterId: string; slots: number };
type Child = { port: number; process: ChildProcess; exited: Promise<void>; running: boolean; dead: boolean; output: string };

const HOST = '127.0.0.1';
const NODE_COUNT = 6;
const BUS_OFFSET = 10_000;
const ALL_SLOTS = 16_384;
const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const redisServerAvailable = (): boolean => spawnSync('redis-server', ['--version']).status === 0;

const canListen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });

/** 6 consecutive ports whose cluster bus ports (port + 10000) are free as well. */
const pickPorts = async (basePort?: number): Promise<number[]> => {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = basePort ?? 20_000 + Math.floor(Math.random() * 25_000);
    const ports = Array.from({ length: NODE_COUNT }, (_, i) => base + i);
    if (ports.at(-1)! + BUS_OFFSET > 65_535) throw new Error(`basePort ${base} too high: bus ports are port + ${BUS_OFFSET}`);
    let free = true;
    for (const port of ports) free = free && (await canListen(port)) && (await canListen(port + BUS_OFFSET));
    if (free) return ports;
    if (basePort !== undefined) throw new Error(`ports ${base}-${base + NODE_COUNT - 1} (or their bus ports) are in use`);
  }
  throw new Error('found no 6 free ports for a Redis Cluster');
};

/** How the harness itself reaches a node: AUTH and TLS as the cluster was started with. */
type Access = { password?: string; ca?: Buffer };
/** Per port, for the clusters of this process that ask for AUTH or TLS. */
const accessByPort = new Map<number, Access>();

/** One short-lived connection per call, so nothing is left open when a node dies. */
const withNode = async <T>(port: number, use: (client: Redis) => Promise<T>, access: Access = accessByPort.get(port) ?? {}): Promise<T> => {
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 1000,
    commandTimeout: 2000,
    retryStrategy: () => null,
    ...(access.password ? { password: access.password } : {}),
    ...(access.ca ? { tls: { ca: access.ca } } : {}),
  });
  client.on('error', () => undefined); // reported through the rejected command instead
  try {
    await client.connect();
    return await use(client);
  } finally {
    client.disconnect();
  }
};

const parseClusterNodes = (text: string): ClusterNode[] =>
  text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':').at(-1)),
        flags: flags!.split(','),
        masterId: masterId!,
        // Entries in brackets are slots being migrated, not owned.
        slots: slots.filter((s) => !s.startsWith('[')).reduce((n, s) => {
          const [from, to = from] = s.split('-').map(Number);
          return n + to! - from! + 1;
        }, 0),
      };
    });

const clusterNodes = async (port: number): Promise<ClusterNode[]> =>
  parseClusterNodes(String(await withNode(port, (c) => c.cluster('NODES'))));

const infoField = (info: string, field: string): string | undefined => info.match(new RegExp(`^${field}:(.*)$`, 'm'))?.[1]?.trim();

/** Thrown by a check to stop waiting at once (a node exited) instead of polling until the deadline. */
class GiveUp extends Error {}

/** Polls until `check` returns null (healthy) or the deadline passes; the error names the last problem. */
const waitFor = async (what: string, timeoutMs: number, check: () => Promise<string | null>): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let problem: string | null = 'not checked yet';
  while (Date.now() < deadline) {
    problem = await check().catch((error: unknown) => {
      if (error instanceof GiveUp) throw new Error(`${what}: ${error.message}`);
      return error instanceof Error ? error.message : String(error);
    });
    if (problem === null) return;
    await sleep(200);
  }
  throw new Error(`${what} within ${timeoutMs} ms: ${problem}`);
};

export const startRedisCluster = async (options: { basePort?: number; password?: string; tls?: TestCerts } = {}): Promise<RedisClusterHarness> => {
  const ports = await pickPorts(options.basePort);
  const access: Access = { ...(options.password ? { password: options.password } : {}), ...(options.tls ? { ca: readFileSync(options.tls.caFile) } : {}) };
  for (const port of ports) accessByPort.set(port, access);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lorestore-redis-cluster-'));
  const children: Child[] = [];
  const live = () => children.filter((c) => !c.dead);

  // A crashed or interrupted test run still runs exit hooks: no redis-server may outlive it.
  const killOnExit = () => {
    for (const child of children) if (child.running) child.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', killOnExit);

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.all(
        children.map(async (child) => {
          if (child.running) child.process.kill('SIGTERM');
          const timer = setTimeout(() => {
            if (child.running) child.process.kill('SIGKILL');
          }, 2000);
          await child.exited;
          clearTimeout(timer);
        }),
      );
      process.off('exit', killOnExit);
      for (const port of ports) accessByPort.delete(port);
      await rm(dir, { recursive: true, force: true });
    })());

  const logTails = async (): Promise<string> => {
    const tails = await Promise.all(
      children.map(async ({ port, output }) => {
        const log = await readFile(path.join(dir, String(port), `redis-${port}.log`), 'utf8').catch(() => '');
        return [`--- redis ${port} ---`, output.trim(), ...log.trim().split('\n').slice(-15)].filter(Boolean).join('\n');
      }),
    );
    return tails.join('\n');
  };

  /**
   * Null when every live node says cluster_state:ok, knows every other live node,
   * gives all slots to 3 live primaries and agrees with the others on who
   * replicates whom. Gossip spreads changes over about a second, so right after a
   * kill or failover some nodes still credit the old primary with its slots.
   */
  const health = async (): Promise<string | null> => {
    const alive = new Set(live().map((c) => c.port));
    let agreed: string | undefined;
    for (const port of alive) {
      const state = infoField(await withNode(port, (c) => c.cluster('INFO')), 'cluster_state');
      if (state !== 'ok') return `node ${port} says cluster_state:${state}`;
      const view = await clusterNodes(port);
      const known = view.filter((n) => alive.has(n.port) && !n.flags.some((f) => ['handshake', 'noaddr', 'fail', 'fail?'].includes(f)));
      if (known.length !== alive.size) return `node ${port} knows ${known.length} of ${alive.size} live nodes`;
      const owners = view.filter((n) => n.slots > 0);
      const stale = owners.find((n) => !known.includes(n));
      if (stale) return `node ${port} still sees slots on ${stale.port} (${stale.flags.join(',')})`;
      const slots = owners.reduce((n, o) => n + o.slots, 0);
      if (owners.length !== 3 || slots !== ALL_SLOTS) return `node ${port} sees ${owners.length} primaries owning ${slots} slots`;
      // A primary demoted by a failover turns replica only when it hears of its successor.
      const slotless = known.find((n) => n.flags.includes('master') && n.slots === 0);
      if (slotless) return `node ${port} sees ${slotless.port} as a primary without slots`;
      const portOf = new Map(view.map((n) => [n.id, n.port]));
      const layout = known
        .map((n) => (n.flags.includes('master') ? `${n.port} primary of ${n.slots} slots` : `${n.port} replica of ${portOf.get(n.masterId)}`))
        .sort()
        .join(', ');
      if (agreed !== undefined && layout !== agreed) return `nodes disagree: [${agreed}] vs node ${port}: [${layout}]`;
      agreed = layout;
    }
    return null;
  };
  const waitHealthy = (timeoutMs = 20_000) => waitFor('Redis Cluster not healthy', timeoutMs, health);

  /** CLUSTER NODES as seen by the first live node that answers. */
  const currentView = async (): Promise<ClusterNode[]> => {
    for (const { port } of live()) {
      const view = await clusterNodes(port).catch(() => null);
      if (view) return view;
    }
    throw new Error('no live Redis Cluster node answers');
  };
  const usable = (node: ClusterNode) => !node.flags.includes('fail') && live().some((c) => c.port === node.port);

  try {
    for (const port of ports) {
      const nodeDir = path.join(dir, String(port));
      await mkdir(nodeDir);
      // The cluster bus listens on port + 10000 and binds where the node binds.
      // With TLS the node speaks only TLS, clients and cluster bus alike (the bus port is still port + 10000).
      const args = options.tls
        ? ['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-replication', 'yes', '--tls-auth-clients', 'no']
        : ['--port', String(port)];
      if (options.tls) args.push('--tls-cert-file', options.tls.certFile, '--tls-key-file', options.tls.keyFile, '--tls-ca-cert-file', options.tls.caFile);
      if (options.password) args.push('--requirepass', options.password, '--masterauth', options.password);
      args.push('--bind', HOST, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`);
      args.push('--cluster-node-timeout', '2000', '--appendonly', 'no', '--save', '', '--dir', nodeDir);
      args.push('--logfile', path.join(nodeDir, `redis-${port}.log`), '--protected-mode', 'no');
      // The default 5 s wait before a diskless full sync would more than triple the start time.
      args.push('--repl-diskless-sync-delay', '0');
      const proc = spawn('redis-server', args, { cwd: nodeDir, stdio: ['ignore', 'pipe', 'pipe'] });
      let exited!: () => void;
      const child: Child = { port, process: proc, exited: new Promise((r) => (exited = r)), running: true, dead: false, output: '' };
      const collect = (text: string) => (child.output = (child.output + text).slice(-2000));
      const ended = () => {
        child.running = false;
        exited();
      };
      proc.once('exit', ended);
      // A failed spawn emits 'error' and possibly no 'exit'.
      proc.once('error', (error) => {
        collect(`spawn failed: ${error.message}\n`);
        if (proc.pid === undefined) ended();
      });
      // Config errors go to stdout/stderr before the log file exists.
      proc.stdout?.on('data', (chunk: Buffer) => collect(chunk.toString()));
      proc.stderr?.on('data', (chunk: Buffer) => collect(chunk.toString()));
      children.push(child);
    }

    for (const child of children) {
      await waitFor(`redis ${child.port} did not answer PING`, 10_000, async () => {
        if (!child.running) throw new GiveUp(`redis-server exited (${child.process.exitCode ?? child.process.signalCode ?? 'not spawned'})`);
        return (await withNode(child.port, (c) => c.ping())) === 'PONG' ? null : 'no PONG';
      });
    }

    const addresses = ports.map((port) => `${HOST}:${port}`);
    const cliTls = options.tls ? ['--tls', '--cacert', options.tls.caFile] : [];
    // REDISCLI_AUTH rather than -a: the password stays out of the process list.
    await execFileAsync('redis-cli', [...cliTls, '--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: 30_000,
      env: { ...process.env, ...(options.password ? { REDISCLI_AUTH: options.password } : {}) },
    });

    // redis-cli returns once the configuration is consistent; gossip and replica sync take a moment longer.
    await waitFor('Redis Cluster did not form', 30_000, async () => {
      const problem = await health();
      if (problem) return problem;
      for (const port of ports) {
        // A replica that has not synced yet would refuse to fail over.
        const replication = await withNode(port, (c) => c.info('replication'));
        if (infoField(replication, 'role') === 'slave' && infoField(replication, 'master_link_status') !== 'up') return `replica ${port} not synced`;
      }
      const replicas = (await clusterNodes(ports[0]!)).filter((n) => n.flags.includes('slave'));
      return new Set(replicas.map((n) => n.masterId)).size === 3 ? null : `${replicas.length} replicas instead of one per primary`;
    });
  } catch (error) {
    const logs = await logTails();
    await stop();
    throw new Error(`Redis Cluster failed to start: ${error instanceof Error ? error.message : String(error)}\n${logs}`, { cause: error });
  }

  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    ...(options.password ? { password: options.password } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
    primaries: async () =>
      (await currentView())
        .filter((n) => n.flags.includes('master') && usable(n))
        .map((n) => ({ host: HOST, port: n.port }))
        .sort((a, b) => a.port - b.port),
    replicaOf: async (primaryPort) => {
      const view = await currentView();
      const primary = view.find((n) => n.port === primaryPort);
      const replica = view.filter((n) => primary && n.masterId === primary.id && usable(n)).sort((a, b) => a.port - b.port)[0];
      return replica && { host: HOST, port: replica.port };
    },
    failover: async (replicaPort) => {
      await withNode(replicaPort, (c) => c.cluster('FAILOVER'));
      await waitFor(`replica ${replicaPort} did not become master`, 20_000, async () => {
        const role = await withNode(replicaPort, (c) => c.role());
        return role[0] === 'master' ? null : `role is ${String(role[0])}`;
      });
      await waitHealthy();
    },
    kill: async (port) => {
      const child = children.find((c) => c.port === port);
      if (!child) throw new Error(`no Redis Cluster node on port ${port}`);
      child.dead = true;
      if (child.running) child.process.kill('SIGKILL');
      await child.exited;
    },
    waitHealthy,
    stop,
  };
};
