import { randomBytes } from 'node:crypto';
import { Client, type Pool } from 'pg';
import { createPostgresPool } from '@lorestore/infra';
import { testDatabaseUrl } from './services';

/**
 * A schema of its own for one test file, so suites run in parallel against one
 * server without seeing each other's rows. Drop it in afterAll.
 */
export type TestSchema = { url: string; schema: string; pool: Pool; drop: () => Promise<void> };

export const createTestSchema = async (label: string, poolMax = 20, url = testDatabaseUrl()): Promise<TestSchema> => {
  const schema = `t_${label.toLowerCase().replace(/[^a-z0-9]+/g, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const pool = createPostgresPool({ url, schema, max: poolMax, applicationName: `lorestore-test-${label}` });
  return {
    url,
    schema,
    pool,
    drop: async () => {
      await pool.end().catch(() => undefined);
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
};
