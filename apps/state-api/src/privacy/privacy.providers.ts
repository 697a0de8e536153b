import { Logger, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { Pool } from 'pg';
import {
  LocalKeyWrapper,
  PersonalDataCodec,
  PlayerKeyStore,
  loadOrCreateMasterKeyFile,
  migratePrivacy,
  parseMasterKey,
} from '@lorestore/privacy';
import { APP_CONFIG, type AppConfig } from '../config';
import { Metrics } from '../metrics/metrics';
import { PG_POOL } from '../persistence/tokens';

export const KEY_WRAPPER = Symbol('KEY_WRAPPER');
export const KEY_STORE = Symbol('KEY_STORE');
export const PERSONAL_DATA = Symbol('PERSONAL_DATA');

const logger = new Logger('Privacy');

/** LORESTORE_MASTER_KEY, or (outside production; loadConfig refuses it there) the key kept under DATA_DIR. */
export const resolveMasterKey = async (config: AppConfig): Promise<LocalKeyWrapper> => {
  if (config.LORESTORE_MASTER_KEY) return new LocalKeyWrapper(parseMasterKey(config.LORESTORE_MASTER_KEY));
  const { key, file, created } = await loadOrCreateMasterKeyFile(config.dataDir);
  if (created) logger.warn(`no LORESTORE_MASTER_KEY set: generated one in ${file} (back it up, apart from the database: without it no personal data can be read)`);
  return new LocalKeyWrapper(key);
};

/** The key store, closed with the application (it holds a listening connection of its own). */
class ClosingKeyStore extends PlayerKeyStore implements OnApplicationShutdown {
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }
}

export const privacyProviders: Provider[] = [
  { provide: KEY_WRAPPER, inject: [APP_CONFIG], useFactory: (config: AppConfig) => resolveMasterKey(config) },
  {
    provide: KEY_STORE,
    inject: [PG_POOL, APP_CONFIG, KEY_WRAPPER],
    useFactory: async (pool: Pool, config: AppConfig, wrapper: LocalKeyWrapper) => {
      await migratePrivacy(pool, config.DATABASE_SCHEMA);
      const store = new ClosingKeyStore({
        pool,
        wrapper,
        cacheSize: config.PRIVACY_KEY_CACHE_SIZE,
        ttlMs: config.PRIVACY_KEY_CACHE_TTL_MS,
        logger: { warn: (m) => logger.warn(m) },
      });
      await store.listen();
      return store;
    },
  },
  {
    provide: PERSONAL_DATA,
    inject: [KEY_STORE, Metrics],
    useFactory: (keys: PlayerKeyStore, metrics: Metrics) =>
      new PersonalDataCodec(keys, {
        onUnreadable: (envelope, error) => {
          metrics.unreadableValues.inc();
          logger.error(`an envelope of ${envelope.s.join(', ')} does not open with its key (${error.message}): shown as erased`);
        },
      }),
  },
];
