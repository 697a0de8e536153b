import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '@lorestore/infra';

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

export type ServiceProcess = { url: string; child: ChildProcess; kill: (signal?: NodeJS.Signals) => Promise<void> };

/** Starts `state-api` as a child process and waits until /health/ready answers 200. */
export const startServiceProcess = async (env: Record<string, string>, port?: number): Promise<ServiceProcess> => {
  const dir = buildService();
  const listenPort = port ?? (await freePort());
  const child = spawn(process.execPath, [path.join(dir, 'apps/state-api/src/main.js')], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', PORT: String(listenPort), HOST: '127.0.0.1', ...env },
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
