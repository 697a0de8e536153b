import type { Command } from 'commander';
import { UsageError } from './errors';
import { ApiClient } from './http';

export const DEFAULT_URL = 'http://127.0.0.1:3000';

/** The global options every command sees (commander's optsWithGlobals). */
export type GlobalOptions = { url?: string; apiKey?: string; timeout?: number };

export type Connection = { url: string; apiKey: string; timeoutMs: number };

/** `--url` / `--api-key` win over LORESTORE_URL / LORESTORE_API_KEY; the key is required. */
export const resolveConnection = (options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Connection => {
  const url = (options.url ?? env.LORESTORE_URL ?? '').trim() || DEFAULT_URL;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`"${url}" is not a URL; set LORESTORE_URL or --url to e.g. ${DEFAULT_URL}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`"${url}" is not an http(s) URL`);
  const apiKey = (options.apiKey ?? env.LORESTORE_API_KEY ?? '').trim();
  if (!apiKey) {
    throw new UsageError('no API key: set LORESTORE_API_KEY (or pass --api-key) to an admin key', [
      'for a local `npm start` without API_KEYS the key is in .lorestore/admin.key: export LORESTORE_API_KEY=$(cat .lorestore/admin.key)',
    ]);
  }
  return { url: parsed.toString().replace(/\/+$/, ''), apiKey, timeoutMs: options.timeout ?? 30_000 };
};

/** The API client for a command, from its global options and the environment. */
export const clientFor = (command: Command): ApiClient => {
  const c = resolveConnection(command.optsWithGlobals<GlobalOptions>());
  return new ApiClient({ baseUrl: c.url, apiKey: c.apiKey, timeoutMs: c.timeoutMs });
};
