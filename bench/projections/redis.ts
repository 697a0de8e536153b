import Redis from 'ioredis';

/** A bench's (or a test file's) keys all start with one prefix; nothing else in the server is touched. */
const scanAll = async (redis: Redis, prefix: string, each: (keys: string[]) => Promise<void>): Promise<void> => {
  // MATCH is a glob: escape its special characters in the prefix.
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await each(keys);
  } while (cursor !== '0');
};

export const countKeys = async (url: string, prefix: string): Promise<number> => {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await redis.connect();
    let count = 0;
    await scanAll(redis, prefix, async (keys) => {
      count += keys.length;
    });
    return count;
  } finally {
    redis.disconnect();
  }
};

/** UNLINKs every key under `prefix`; returns how many. */
export const deleteKeys = async (url: string, prefix: string): Promise<number> => {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await redis.connect();
    let deleted = 0;
    await scanAll(redis, prefix, async (keys) => {
      deleted += await redis.unlink(...keys);
    });
    return deleted;
  } finally {
    redis.disconnect();
  }
};

/** Whether a Redis answers PING at `url` within a second or two. */
export const redisReachable = async (url: string): Promise<string | null> => {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    const info = await redis.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch {
    return null;
  } finally {
    redis.disconnect();
  }
};

/** CPU the Redis server process has used so far (user + system, ms), from INFO cpu. */
export const redisCpuMs = async (url: string): Promise<number | null> => {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  try {
    await redis.connect();
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1]);
    const ms = (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
    return Number.isFinite(ms) ? ms : null;
  } catch {
    return null;
  } finally {
    redis.disconnect();
  }
};
