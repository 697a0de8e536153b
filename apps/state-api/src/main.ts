import 'reflect-metadata';
import { createApp } from './bootstrap';
import { Lifecycle } from './health/lifecycle';
import { ConfigError, loadConfig } from './config';
import { resolveDatabase, resolveKeys } from './runtime';

// Start-up messages go to stderr as plain lines, before the structured logger exists.
const say = (line: string) => process.stderr.write(`[lorestore] ${line}\n`);

const main = async () => {
  const config = loadConfig();
  const database = await resolveDatabase(config, say);
  const keys = await resolveKeys(config, say);
  const app = await createApp({ config, databaseUrl: database.url, keys });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: draining requests and pending appends`);
    const timer = setTimeout(() => {
      say('shutdown grace period over, exiting');
      process.exit(1);
    }, config.SHUTDOWN_DRAIN_DELAY_MS + config.SHUTDOWN_GRACE_MS);
    try {
      app.get(Lifecycle).draining = true;
      if (config.SHUTDOWN_DRAIN_DELAY_MS > 0) await new Promise((r) => setTimeout(r, config.SHUTDOWN_DRAIN_DELAY_MS));
      // First the HTTP server: it stops accepting, answers what is in flight (their appends commit in
      // their group-commit batches), then closes. Only then the shutdown hooks close stores and pools:
      // Nest's own order (hooks first, server last) would pull the pools from under those requests.
      await app.getHttpAdapter().close();
      await app.close();
      await database.embedded?.stop();
    } finally {
      clearTimeout(timer);
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  await app.listen({ port: config.PORT, host: config.HOST });
  say(`listening on http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.PORT} (OpenAPI at /docs)`);
};

main().catch((error: unknown) => {
  say(error instanceof ConfigError ? error.message : `failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
