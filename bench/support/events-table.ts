import type { Pool } from 'pg';
import { PostgresEventStore } from '@lorestore/event-store';
import { quoteIdent } from './database';

/**
 * An `events` table identical to lorestore's — built from lorestore's own
 * migrations, then copied with `LIKE … INCLUDING ALL` (columns, defaults,
 * identity, constraints, indexes) — so a baseline writing here pays for the
 * same rows and index entries, and stays identical when the migrations change.
 */
export const createEventsTable = async (pool: Pool, schema: string): Promise<void> => {
  const s = quoteIdent(schema);
  const template = `${schema}_template`;
  await PostgresEventStore.migrate(pool, template);
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
  await pool.query(`CREATE TABLE IF NOT EXISTS ${s}.events (LIKE ${quoteIdent(template)}.events INCLUDING ALL)`);
  await pool.query(`DROP SCHEMA ${quoteIdent(template)} CASCADE`);
};
