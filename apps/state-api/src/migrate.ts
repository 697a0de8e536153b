import { PostgresEventStore } from '@lorestore/event-store';
import { ReadModelStore } from '@lorestore/projections';
import { migrateReplay } from '@lorestore/replay';
import { migrateSemanticMemory } from '@lorestore/semantic-memory';
import { migratePrivacy } from '@lorestore/privacy';
import { createPostgresPool } from '@lorestore/infra';
import { ConfigError, loadConfig } from './config';
import { resolveDatabase } from './runtime';

const say = (line: string) => process.stderr.write(`[lorestore migrate] ${line}\n`);

/** `npm run migrate`: applies pending migrations to DATABASE_URL (or the embedded server) and exits. */
const main = async () => {
  const config = loadConfig();
  const database = await resolveDatabase(config, say);
  const pool = createPostgresPool({ url: database.url, schema: config.DATABASE_SCHEMA, max: 2 });
  try {
    // The log, the read models, then replay (snapshots, rollback audit): the order the service applies them at start.
    const applied = [
      ...(await PostgresEventStore.migrate(pool, config.DATABASE_SCHEMA)),
      ...(await ReadModelStore.migrate(pool, config.DATABASE_SCHEMA)),
      ...(await migrateReplay(pool, config.DATABASE_SCHEMA)),
      ...(await migrateSemanticMemory(pool, config.DATABASE_SCHEMA)),
      ...(await migratePrivacy(pool, config.DATABASE_SCHEMA)),
    ];
    say(applied.length ? `applied ${applied.join(', ')}` : 'nothing to apply');
  } finally {
    await pool.end();
    await database.embedded?.stop();
  }
};

main().catch((error: unknown) => {
  say(error instanceof ConfigError ? error.message : String(error instanceof Error ? (error.stack ?? error.message) : error));
  process.exit(1);
});
