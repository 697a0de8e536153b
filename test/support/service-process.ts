import { TEST_MASTER_KEY } from './services';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '@lorestore/infra';
import { deleteKeys } from '../../bench/projections/redis';

const ROOT = path.resolve(__dirname, '../..');
let builtDir: string | null = null;

/** Compiles the service once per test file (swc, about a second) so it can run as a real process. */
export const buildService = (): string => {
  if (builtDir) return builtDir;
  // Inside the project so the build resolves node_modules; .lorestore/ is gitignored.
  const out = path.join(ROOT, '.lorestore', 'test-build', String(process.pid));
  mkdirSync(out, { recursive: true });
  execFileSync(path.join(ROOT, 'node_modules/.bin/swc'), ['apps', 'libs', '-d', out, '--copy-files', '--quiet'], { cwd: ROOT, stdio: 'inherit' });
  builtDir = out;
  return out;
};

export const removeServiceBuild = (): void => {
  if (builtDir) rmSync(builtDir, { recursive: true, force: true });
  builtDir = null;
};

/**
 * The Redis key prefix of the processes this file starts when the caller
 * names none: one per test file, shared by its service and projector
 * processes as the whole keyspace was before. A process inherits the run's
 * REDIS_URL, and without a prefix it wrote unprefixed keys (`player:{…}`) into
 * the user's Redis, left there until their TTL.
 */
const DEFAULT_KEY_PREFIX = `t:proc-${randomBytes(4).toString('hex')}:`;
/** The Redis the default prefix was used on, for cleanUpServiceProcesses(). */
let defaultPrefixRedis: string | null = null;

const withKeyPrefix = (env: Record<string, string>): Record<string, string> => {
  if (env.REDIS_KEY_PREFIX !== undefined) return env;
  const url = env.REDIS_URL ?? process.env.REDIS_URL;
  if (url) defaultPrefixRedis = url;
  return { ...env, REDIS_KEY_PREFIX: DEFAULT_KEY_PREFIX };
};

/**
 * After a file's processes have stopped: removes the service build and the
 * keys written under the default prefix (one Redis node; on a Cluster they
 * are left to their TTL). A failed clean-up is reported, not failed on.
 */
export const cleanUpServiceProcesses = async (): Promise<void> => {
  removeServiceBuild();
  const url = defaultPrefixRedis;
  defaultPrefixRedis = null;
  if (!url) return;
  try {
    await deleteKeys(url, DEFAULT_KEY_PREFIX);
  } catch (error) {
    console.warn(`could not remove the Redis keys under ${DEFAULT_KEY_PREFIX}: ${String(error)}`);
  }
};

export type ServiceProcess = { url: string; child: ChildProcess; kill: (signal?: NodeJS.Signals) => Promise<void>; output?: () => string };

/** Starts `state-api` as a child process and waits until /health/ready answers 200. */
export const startServiceProcess = async (env: Record<string, string>, port?: number): Promise<ServiceProcess> => {
  const dir = buildService();
  const listenPort = port ?? (await freePort());
  const child = spawn(process.execPath, [path.join(dir, 'apps/state-api/src/main.js')], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', PORT: String(listenPort), HOST: '127.0.0.1', LORESTORE_MASTER_KEY: TEST_MASTER_KEY, ...withKeyPrefix(env) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = `http://127.0.0.1:${listenPort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}: ${stderr}`);
    try {
      if ((await fetch(`${url}/health/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`service did not become ready: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url,
    child,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
};

/**
 * Starts `apps/projector` as a child process; resolves once it leads (its
 * runner took the lock), or with `standby: true` once it runs (another leads).
 */
export const startProjectorProcess = async (env: Record<string, string>, options: { standby?: boolean } = {}): Promise<ServiceProcess> => {
  const dir = buildService();
  const child = spawn(process.execPath, [path.join(dir, 'apps/projector/src/main.js')], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', LORESTORE_MASTER_KEY: TEST_MASTER_KEY, ...withKeyPrefix(env) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`projector did not start leading within 20 s: ${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(options.standby ? '[lorestore-projector] running' : 'projector: leading')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`projector exited with ${code}: ${output}`));
    });
  });
  return {
    url: '',
    child,
    output: () => output,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
};
