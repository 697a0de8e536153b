import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

/** The project's root: the CLI is compiled and run from here, so node_modules resolve. */
export const CLI_ROOT = path.resolve(__dirname, '..', '..');

export type CliRun = { code: number | null; stdout: string; stderr: string };

/**
 * A build of the admin CLI of its own (under .lorestore/, gitignored; `npm run
 * build` elsewhere empties dist/): the CLI depends on nothing in libs/, so
 * compiling its folder is what `npm run build` does for it. Answers the entry point.
 */
export const buildCli = (out: string): string => {
  mkdirSync(out, { recursive: true });
  execFileSync(path.join(CLI_ROOT, 'node_modules', '.bin', 'swc'), ['apps/admin-cli', '-d', out, '--copy-files', '--quiet'], { cwd: CLI_ROOT, stdio: 'pipe' });
  return path.join(out, 'apps', 'admin-cli', 'src', 'main.js');
};

/** Runs the built CLI with stdin closed at once; LORESTORE_* come only from `env`. */
export const runCli = (main: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliRun> =>
  new Promise((resolve, reject) => {
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LORESTORE_')));
    const child = spawn(process.execPath, [main, ...args], { cwd: CLI_ROOT, env: { ...inherited, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lorestore ${args.join(' ')} ran longer than ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
