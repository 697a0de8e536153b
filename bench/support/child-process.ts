import { spawn, type ChildProcess } from 'node:child_process';

export type RunningChild = {
  child: ChildProcess;
  /** The last lines it wrote (stdout and stderr), for a failure report. */
  tail: () => string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop: (graceMs?: number) => Promise<void>;
};

/** Starts `node <script>` with the given environment, keeping its output out of our stdout. */
export const startNodeChild = (script: string, env: NodeJS.ProcessEnv, execArgv: string[] = []): RunningChild => {
  const child = spawn(process.execPath, [...execArgv, script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line);
    if (lines.length > 60) lines.splice(0, lines.length - 60);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    child,
    tail: () => lines.join('\n'),
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
};

/** Polls `url` until it answers 200; fails when the child exits first or time runs out. */
export const waitForHttpOk = async (url: string, running: RunningChild, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (running.child.exitCode !== null || running.child.signalCode !== null) {
      throw new Error(`process exited (code ${running.child.exitCode}, signal ${running.child.signalCode}) before ${url} was ready:\n${running.tail()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (last: ${last}):\n${running.tail()}`);
};

/** In a bench's child server: a variable the parent must have set. */
export const requiredEnv = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

/**
 * In a bench's child server: listens on PORT (HOST, default loopback), and on
 * SIGTERM or SIGINT closes the server, then `release` (pools, clients), then exits 0.
 */
export const serveUntilSignalled = (app: { listen(options: { port: number; host: string }): Promise<unknown>; close(): Promise<unknown> }, release: () => Promise<void>): void => {
  const shutdown = async (): Promise<void> => {
    await app.close();
    await release();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
  app.listen({ port: Number(requiredEnv('PORT')), host: process.env.HOST ?? '127.0.0.1' }).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
};
