import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '@lorestore/infra';
import { ApiKeyRing, loadOrCreateAdminKey } from './auth/api-keys';
import type { AppConfig } from './config';

type Say = (line: string) => void;

/** DATABASE_URL, or the embedded PostgreSQL kept under DATA_DIR/pg. */
export const resolveDatabase = async (config: AppConfig, say: Say): Promise<{ url: string; embedded: RunningEmbeddedPostgres | null }> => {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, embedded: null };
  const embedded = await startEmbeddedPostgres({
    dataDir: path.join(config.dataDir, 'pg'),
    port: config.EMBEDDED_PG_PORT,
    persistent: true,
    database: 'lorestore',
  });
  say(`embedded PostgreSQL on 127.0.0.1:${embedded.port}, data in ${path.join(config.dataDir, 'pg')} (set DATABASE_URL to use your own server)`);
  return { url: embedded.url, embedded };
};

/** API_KEYS, API_KEYS_FILE, or else a generated admin key kept under DATA_DIR — never open access. */
export const resolveKeys = async (config: AppConfig, say: Say): Promise<ApiKeyRing> => {
  if (config.API_KEYS) return ApiKeyRing.parse(config.API_KEYS);
  if (config.API_KEYS_FILE) return ApiKeyRing.parse(await readFile(config.API_KEYS_FILE, 'utf8'));
  const admin = await loadOrCreateAdminKey(config.dataDir);
  if (admin.created) {
    say(`no API_KEYS set: created an admin key (shown once, kept in ${admin.file}):\n\n    ${admin.key}\n`);
  } else {
    say(`no API_KEYS set: using the admin key in ${admin.file}`);
  }
  return ApiKeyRing.parse(`${admin.key}:admin`);
};
