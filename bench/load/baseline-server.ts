import Fastify from 'fastify';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { requiredEnv, serveUntilSignalled } from '../support/child-process';

/**
 * The baseline for `npm run bench -- load`: a bare Fastify process that does,
 * per request, literally the profile's cost: two PostgreSQL queries (a SELECT
 * of one row by primary key, an INSERT of one row, each its own autocommit
 * transaction, pool of 50) and three Redis operations (GET, SET with EX, DEL)
 * through ioredis, then answers JSON. Same routes as the service (any GET or
 * POST under /v1/), no auth, no validation, no domain. Started as a child
 * process by load.ts, which creates the tables.
 */

const schema = requiredEnv('DATABASE_SCHEMA');
if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
const rows = Number(requiredEnv('BASELINE_ROWS'));
const prefix = process.env.REDIS_KEY_PREFIX ?? '';

const pool = new Pool({ connectionString: requiredEnv('DATABASE_URL'), max: 50, application_name: 'bench-load-baseline', options: `-c search_path=${schema}` });
pool.on('error', () => undefined);
// As the service's client: one connection, commands of the same tick pipelined.
const redis = new Redis(requiredEnv('REDIS_URL'), { keyPrefix: prefix, enableAutoPipelining: true, maxRetriesPerRequest: 2 });
redis.on('error', () => undefined);

let counter = 0;

const handle = async (body: unknown): Promise<object> => {
  const n = counter++;
  const id = (n % rows) + 1;
  const { rows: found } = await pool.query<{ id: number; kind: string; attributes: unknown }>('SELECT id, kind, attributes FROM items WHERE id = $1', [id]);
  await pool.query('INSERT INTO actions (item_id, body) VALUES ($1, $2)', [id, JSON.stringify(body ?? {})]);
  const key = `item:${id}`;
  const cached = await redis.get(key);
  await redis.set(key, JSON.stringify(found[0] ?? null), 'EX', 3600);
  await redis.del(`seen:${n % 1000}`);
  return { item: found[0] ?? null, cached: cached !== null };
};

const app = Fastify({ logger: false, routerOptions: { maxParamLength: 256 } });
app.get('/health/ready', async () => ({ status: 'ok' }));
app.get('/v1/*', async () => handle(null));
app.post('/v1/*', async (request) => handle(request.body));

serveUntilSignalled(app, async () => {
  await pool.end();
  redis.disconnect();
});
