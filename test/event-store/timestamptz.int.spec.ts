import { Client, types } from 'pg';
import { parseTimestamptz, parseTimestamptzFast } from '../../libs/event-store/src/postgres/timestamptz';
import { testDatabaseUrl } from '../support/services';

const pgParse = types.getTypeParser(1184, 'text') as (text: string) => Date;

/**
 * The event reads' timestamptz parser against what PostgreSQL itself writes,
 * in time zones with half-hour, 45-minute and (historic) second offsets: the
 * fast path takes each of them and gives pg's own Date.
 */
describe('timestamptz as PostgreSQL writes it', () => {
  let client: Client;
  beforeAll(async () => {
    client = new Client({ connectionString: testDatabaseUrl() });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
  });

  it.each(['UTC', 'America/St_Johns', 'Asia/Kathmandu', 'Pacific/Chatham', 'Europe/Amsterdam', 'America/Los_Angeles'])('in %s', async (zone) => {
    await client.query(`SET TimeZone = '${zone}'`);
    const { rows } = await client.query<{ t: string }>(
      `SELECT (ts + (n * interval '1 microsecond' * 7919))::text AS t
         FROM unnest(ARRAY['1900-01-01 00:00:00+00', '1937-06-30 22:00:00+00', '1970-01-01 00:00:00+00', '2026-03-29 00:59:59.9995+00', '2026-11-26 12:34:46.217123+00', '9999-12-30 00:00:00+00']::timestamptz[]) AS ts,
              generate_series(0, 200) AS n`,
    );
    const slow: string[] = [];
    for (const { t } of rows) {
      if (parseTimestamptzFast(t) === null) slow.push(t);
      expect({ t, ms: parseTimestamptz(t).getTime() }).toEqual({ t, ms: pgParse(t).getTime() });
    }
    expect(slow).toEqual([]);
    expect(rows.length).toBe(6 * 201);
  });
});
