import { ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('gives the embedded defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ PORT: 3000, DATABASE_SCHEMA: 'lorestore', EVENT_STORE: 'postgres', BODY_LIMIT_BYTES: 1048576 });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.dataDir).toMatch(/\.lorestore$/);
  });

  it('takes the append short path unless told not to, and refuses a flag it cannot read', () => {
    expect(loadConfig({}).APPEND_FAST_PATH).toBe(true);
    expect(loadConfig({ APPEND_FAST_PATH: 'false' }).APPEND_FAST_PATH).toBe(false);
    expect(() => loadConfig({ APPEND_FAST_PATH: 'sometimes' })).toThrow('APPEND_FAST_PATH');
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).PORT).toBe(3000);
  });

  it('names every bad variable in one error', () => {
    const attempt = () => loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', DATABASE_SCHEMA: 'Drop Table', LOG_LEVEL: 'loud' });
    expect(attempt).toThrow(ConfigError);
    for (const name of ['PORT', 'DATABASE_URL', 'DATABASE_SCHEMA', 'LOG_LEVEL']) expect(attempt).toThrow(name);
  });

  it('refuses production without a master key, and a master key that is not 32 bytes of base64 or hex', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', API_KEYS: 'abcdefgh:admin' })).toThrow('LORESTORE_MASTER_KEY is required when NODE_ENV=production');
    for (const bad of ['short', Buffer.alloc(16, 1).toString('base64'), Buffer.alloc(33, 1).toString('base64'), 'z'.repeat(64)]) {
      expect(() => loadConfig({ LORESTORE_MASTER_KEY: bad })).toThrow('LORESTORE_MASTER_KEY');
    }
    expect(loadConfig({ LORESTORE_MASTER_KEY: Buffer.alloc(32, 1).toString('hex') }).LORESTORE_MASTER_KEY).toHaveLength(64);
    // Unset outside production: the embedded default makes one under DATA_DIR.
    expect(loadConfig({}).LORESTORE_MASTER_KEY).toBeUndefined();
  });

  it('refuses production without API keys, and esdb without a connection string', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    expect(() => loadConfig({ NODE_ENV: 'production', LORESTORE_MASTER_KEY: key })).toThrow('API_KEYS');
    expect(loadConfig({ NODE_ENV: 'production', API_KEYS: 'abcdefgh:admin', LORESTORE_MASTER_KEY: key }).NODE_ENV).toBe('production');
    expect(() => loadConfig({ EVENT_STORE: 'esdb' })).toThrow('EVENTSTORE_CONNECTION_STRING');
    expect(() => loadConfig({ EVENT_STORE: 'esdb', EVENTSTORE_CONNECTION_STRING: 'http://x:2113' })).toThrow('EVENTSTORE_CONNECTION_STRING');
    expect(loadConfig({ EVENT_STORE: 'esdb', EVENTSTORE_CONNECTION_STRING: 'esdb+discover://a:2113,b:2113?tls=true' }).EVENT_STORE).toBe('esdb');
  });
});
