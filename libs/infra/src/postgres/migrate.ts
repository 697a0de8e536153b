import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Pool } from 'pg';

export type Migration = { version: number; name: string; sql: string; checksum: string };

/** Reads `NNN_name.sql` files from a folder, in version order. */
export const loadMigrations = async (dir: string): Promise<Migration[]> => {
  const files = (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => {
      const sql = await readFile(path.join(dir, file), 'utf8');
      return {
        version: Number(file.split('_')[0]),
        name: file.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    }),
  );
};

export class MigrationChecksumError extends Error {
  override readonly name = 'MigrationChecksumError';
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Applies the migrations not yet recorded in `<schema>.schema_migrations`, each
 * in its own transaction. An advisory lock keyed on the schema makes it safe
 * for several instances to start at once: one migrates, the others wait and
 * then find nothing to do. An applied migration whose file changed is an error,
 * never silently re-run.
 */
export const migrate = async (pool: Pool, schema: string, migrations: Migration[]): Promise<string[]> => {
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`lorestore.migrate.${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.schema_migrations (
         version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ version: number; checksum: string; name: string }>(
      `SELECT version, checksum, name FROM ${quoteIdent(schema)}.schema_migrations`,
    );
    const done = new Map(rows.map((r) => [r.version, r]));
    for (const migration of migrations) {
      const previous = done.get(migration.version);
      if (previous) {
        if (previous.checksum !== migration.checksum) {
          throw new MigrationChecksumError(`migration ${migration.name} changed after it was applied to schema ${schema}`);
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
        await client.query(migration.sql);
        await client.query(
          `INSERT INTO ${quoteIdent(schema)}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`,
          [migration.version, migration.name, migration.checksum],
        );
        await client.query('COMMIT');
        applied.push(migration.name);
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`lorestore.migrate.${schema}`]).catch(() => undefined);
    client.release();
  }
  return applied;
};
