import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort } from '@lorestore/infra';

/**
 * A private PostgreSQL primary with streaming replicas on loopback ports,
 * for tests that route reads, restart the server or pause replay. Built with
 * `initdb` and `pg_basebackup -R` from the server binaries on this machine
 * (PG_BIN, default /usr/lib/postgresql/15/bin); as root, every server
 * process runs as the `postgres` user (initdb refuses root). Each server is
 * a child of this process, stopped by its handle: the machine's own
 * PostgreSQL and other runs are never touched.
 */
export type PgNode = {
  name: string;
  port: number;
  url: string;
  dataDir: string;
  running: boolean;
  /** Fast shutdown (SIGINT), then start again on the same port and data. */
  restart(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
};

export type PgCluster = {
  primary: PgNode;
  replicas: PgNode[];
  /** Runs SQL on a node as the superuser. */
  sql<R = Record<string, unknown>>(node: PgNode, text: string, params?: unknown[]): Promise<R[]>;
  /** Until every running replica has replayed the primary's current WAL position. */
  waitForReplay(timeoutMs?: number): Promise<void>;
  /** Stops every server it started and removes the folder. Idempotent. */
  stop(): Promise<void>;
};

export const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether this machine can build one (the server binaries exist). */
export const canStartPgCluster = (): boolean => existsSync(path.join(PG_BIN, 'initdb')) && existsSync(path.join(PG_BIN, 'pg_basebackup'));

const lookupUser = (name: string): { uid: number; gid: number } => {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`running as root needs a '${name}' user to run PostgreSQL (initdb refuses root)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
};

/** As root, the servers run as `postgres`; otherwise as whoever runs the tests. */
const runAs = (): { uid?: number; gid?: number } => (os.userInfo().uid === 0 ? lookupUser('postgres') : {});

type Server = PgNode & { child: ChildProcess | null; output: string };

export const startPgCluster = async (options: { replicas?: number; label?: string } = {}): Promise<PgCluster> => {
  const user = runAs();
  const root = await mkdtemp(path.join(os.tmpdir(), `lorestore-pg-${options.label ?? 'cluster'}-`));
  if (user.uid !== undefined) chownSync(root, user.uid, user.gid!);
  const servers: Server[] = [];

  const run = async (bin: string, args: string[]) => {
    try {
      await execFileAsync(path.join(PG_BIN, bin), args, { ...user, cwd: root, env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`${bin} failed: ${e.stderr || e.message}`, { cause: error });
    }
  };

  const makeServer = (name: string, port: number, dataDir: string): Server => {
    const server: Server = {
      name,
      port,
      dataDir,
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      running: false,
      child: null,
      output: '',
      start: async () => {
        if (server.running) return;
        const child = spawn(path.join(PG_BIN, 'postgres'), ['-D', dataDir, '-p', String(port), '-c', `unix_socket_directories=${root}`, '-c', 'listen_addresses=127.0.0.1'], {
          ...user,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        server.child = child;
        server.output = '';
        child.stderr?.on('data', (c: Buffer) => {
          server.output = (server.output + c.toString()).slice(-20_000);
        });
        server.running = true;
        child.once('exit', () => {
          server.running = false;
        });
        const deadline = Date.now() + 30_000;
        for (;;) {
          if (!server.running) throw new Error(`${name} exited while starting: ${server.output}`);
          const client = new Client({ connectionString: server.url, connectionTimeoutMillis: 1000 });
          try {
            await client.connect();
            await client.query('SELECT 1');
            await client.end();
            return;
          } catch {
            await client.end().catch(() => undefined);
          }
          if (Date.now() > deadline) throw new Error(`${name} did not accept connections: ${server.output}`);
          await sleep(100);
        }
      },
      stop: async (mode = 'fast') => {
        const child = server.child;
        if (!child || !server.running) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      },
      restart: async () => {
        await server.stop('fast');
        await server.start();
      },
    };
    servers.push(server);
    return server;
  };

  try {
    const primaryDir = path.join(root, 'primary');
    await run('initdb', ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    appendFileSync(
      path.join(primaryDir, 'postgresql.conf'),
      ['wal_level = replica', 'max_wal_senders = 10', 'hot_standby = on', 'fsync = off', 'max_connections = 200', 'shared_buffers = 64MB', ''].join('\n'),
    );
    writeFileSync(
      path.join(primaryDir, 'pg_hba.conf'),
      ['local all all trust', 'host all all 127.0.0.1/32 trust', 'local replication all trust', 'host replication all 127.0.0.1/32 trust', ''].join('\n'),
    );
    const primary = makeServer('primary', await freePort(), primaryDir);
    await primary.start();
    const replicas: Server[] = [];
    for (let i = 1; i <= (options.replicas ?? 1); i++) {
      const dir = path.join(root, `replica-${i}`);
      await run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', dir, '-R', '-X', 'stream', '--no-sync']);
      const replica = makeServer(`replica-${i}`, await freePort(), dir);
      await replica.start();
      replicas.push(replica);
    }

    const sql = async <R>(node: PgNode, text: string, params: unknown[] = []): Promise<R[]> => {
      const client = new Client({ connectionString: node.url, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        return (await client.query(text, params)).rows as R[];
      } finally {
        await client.end();
      }
    };

    let stopped = false;
    return {
      primary,
      replicas,
      sql,
      waitForReplay: async (timeoutMs = 10_000) => {
        // The insert position: commits made with synchronous_commit off may sit in WAL buffers beyond the write position.
        const [{ lsn }] = await sql<{ lsn: string }>(primary, 'SELECT pg_current_wal_insert_lsn()::text AS lsn');
        const deadline = Date.now() + timeoutMs;
        for (const replica of replicas.filter((r) => r.running)) {
          for (;;) {
            const [row] = await sql<{ caught: boolean }>(replica, 'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught', [lsn]);
            if (row?.caught) break;
            if (Date.now() > deadline) throw new Error(`${replica.name} did not replay ${lsn} within ${timeoutMs} ms`);
            await sleep(20);
          }
        }
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await Promise.all(servers.map((s) => s.stop('immediate')));
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop('immediate')));
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
};
