/**
 * Which real services the test run uses. Decided once in global-setup and
 * handed to the workers through environment variables.
 *
 * LORESTORE_REQUIRE_SERVICES=1 (set by .ci/run): a service that cannot be
 * reached fails the run. Without it, PostgreSQL suites fall back to an
 * embedded server and Redis suites are skipped with a message.
 */
export const REQUIRE_SERVICES = process.env.LORESTORE_REQUIRE_SERVICES === '1';

export const testDatabaseUrl = (): string => {
  const url = process.env.LORESTORE_TEST_DATABASE_URL;
  if (!url) throw new Error('LORESTORE_TEST_DATABASE_URL is not set: run the tests through jest (global-setup decides it)');
  return url;
};

export const START_POSTGRES_HINT =
  "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start, or unset DATABASE_URL to use the embedded server";
