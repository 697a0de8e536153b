import type { Pool } from 'pg';
import { quoteIdent } from './database';

/**
 * The same columns, defaults and indexes as lorestore's `events` table
 * (libs/event-store/src/postgres/migrations/001_event_store.sql), so a
 * baseline writing here pays for the same rows and index entries.
 */
export const createEventsTable = async (pool: Pool, schema: string): Promise<void> => {
  const s = quoteIdent(schema);
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
  await pool.query(`
    CREATE TABLE IF NOT EXISTS ${s}.events (
      position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
      stream_id       text NOT NULL,
      revision        bigint NOT NULL,
      event_id        uuid NOT NULL,
      type            text NOT NULL,
      schema_version  int NOT NULL DEFAULT 1,
      data            jsonb NOT NULL,
      metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at      timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT events_stream_revision UNIQUE (stream_id, revision),
      CONSTRAINT events_event_id UNIQUE (event_id)
    )`);
  await pool.query(`CREATE INDEX IF NOT EXISTS events_feed ON ${s}.events (transaction_id, position)`);
};
