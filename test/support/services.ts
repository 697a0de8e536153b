/**
 * Which real services the test run uses. Decided once in global-setup and
 * handed to the workers through environment variables.
 *
 * LORESTORE_REQUIRE_SERVICES=1 (set by .ci/run): a service that cannot be
 * reached fails the run. Without it, PostgreSQL suites fall back to an
 * embedded server and Redis suites are skipped with a message.
 */
/** The master key of every test deployment (LORESTORE_MASTER_KEY): fixed, so the processes of one test share it. */
export const TEST_MASTER_KEY = Buffer.alloc(32, 0x5a).toString('base64');

export const REQUIRE_SERVICES = process.env.LORESTORE_REQUIRE_SERVICES === '1';

export const testDatabaseUrl = (): string => {
  const url = process.env.LORESTORE_TEST_DATABASE_URL;
  if (!url) throw new Error('LORESTORE_TEST_DATABASE_URL is not set: run the tests through jest (global-setup decides it)');
  return url;
};

export const START_POSTGRES_HINT =
  "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start, or unset DATABASE_URL to use the embedded server";

/** The Redis the suites use (REDIS_URL, or the default local one), or undefined when global-setup found none. */
export const testRedisUrl = (): string | undefined => process.env.LORESTORE_TEST_REDIS_URL || undefined;

export const START_REDIS_HINT = 'start it with: redis-server --daemonize yes --port 6379 --save "" --appendonly no, or set REDIS_URL';

/** `describe` for suites that need Redis: skipped, with the reason in the title, when there is none (never under LORESTORE_REQUIRE_SERVICES). */
export const describeWithRedis = (title: string, body: (redisUrl: string) => void): void => {
  const url = testRedisUrl();
  if (url) describe(title, () => body(url));
  else describe.skip(`${title} (skipped: ${process.env.LORESTORE_TEST_REDIS_SKIPPED ?? 'no Redis'})`, () => body(''));
};
