import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ConfigError, loadConfig } from '../../state-api/src/config';
import { ProjectorModule } from './projector.module';

const say = (line: string) => process.stderr.write(`[lorestore-projector] ${line}\n`);

/**
 * `npm run start:projector`: the projections as their own process, for
 * production (run the state-api with PROJECTOR=external). Several may run;
 * one leads, the others wait to take over.
 */
const main = async () => {
  const config = loadConfig();
  if (!config.DATABASE_URL) {
    throw new ConfigError('the standalone projector needs DATABASE_URL; with the embedded default, `npm start` runs the projector in its own process');
  }
  const app = await NestFactory.createApplicationContext(ProjectorModule.forRoot(config, config.DATABASE_URL), {
    logger: config.LOG_LEVEL === 'silent' ? false : undefined,
    abortOnError: false,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: finishing the current batch`);
    const timer = setTimeout(() => process.exit(1), config.SHUTDOWN_GRACE_MS);
    try {
      await app.close();
    } finally {
      clearTimeout(timer);
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  await app.init();
  say(`running (schema ${config.DATABASE_SCHEMA})`);
};

main().catch((error: unknown) => {
  say(error instanceof ConfigError ? error.message : `failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
