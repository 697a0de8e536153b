import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { createTestSchema, type TestSchema } from '../support/database';
import { startEsdbTestServer, type EsdbTestServer } from '../support/esdb-test-server';
import { cleanUpServiceProcesses, startServiceProcess, type ServiceProcess } from '../support/service-process';

/**
 * EventStoreDB mode: the process dies between EventStoreDB's acknowledgement
 * and the mirror's write. The service runs as a real process against the
 * protocol-level EventStoreDB test double (which lives in the test and
 * survives the kill). MIRROR_TEST_DELAY_MS forces the window: the mirror
 * holds its batches, commands answer `mirrored: false`; then SIGKILL. After a
 * restart the mirror catches up: the PostgreSQL events table equals
 * EventStoreDB's log, event for event, nothing lost and nothing doubled. A
 * second round kills the process while the mirror is writing.
 */
describe('crash: SIGKILL between EventStoreDB acknowledgement and the mirror write', () => {
  let db: TestSchema;
  let esdb: EsdbTestServer;
  let service: ServiceProcess | null = null;
  const KEY = 'esdb-crash-key';

  beforeAll(async () => {
    db = await createTestSchema('esdb_crash');
    esdb = await startEsdbTestServer();
  });
  afterAll(async () => {
    await service?.kill();
    await esdb?.close();
    await db?.drop();
    await cleanUpServiceProcesses();
  });

  const start = async (env: Record<string, string> = {}) => {
    service = await startServiceProcess({
      DATABASE_URL: db.url,
      DATABASE_SCHEMA: db.schema,
      API_KEYS: `${KEY}:game`,
      EVENT_STORE: 'esdb',
      EVENTSTORE_CONNECTION_STRING: esdb.connectionString,
      MIRROR_WAIT_MS: '300',
      PROJECTION_BATCH_SIZE: '25',
      ...env,
    });
    return service;
  };

  const send = async (url: string, playerId: string) => {
    const response = await fetch(`${url}/v1/worlds/crash/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ commandId: randomUUID(), type: 'player.record_action', payload: { playerId, action: 'step', context: {} } }),
    });
    return { status: response.status, body: (await response.json()) as { mirrored?: boolean; position: number | null } };
  };

  /** The mirror as PostgreSQL holds it, in its own order. */
  const mirrored = async () => {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ stream_id: string; revision: string; event_id: string; type: string; esdb_prepare: string }>(
        `SELECT stream_id, revision, event_id, type, esdb_prepare FROM "${db.schema}".events ORDER BY position`,
      );
      return rows.map((r) => `${r.stream_id}|${r.revision}|${r.event_id}|${r.type}|${r.esdb_prepare}`);
    } finally {
      await client.end();
    }
  };
  const log = () => esdb.log().map((e) => `${e.streamId}|${e.revision}|${e.id}|${e.type}|${e.position}`);

  const caughtUp = async () => {
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
      if ((await mirrored()).length >= log().length) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('after a restart the mirror equals the EventStoreDB log, event for event', async () => {
    const players = Array.from({ length: 4 }, () => randomUUID());

    // Round 1: the mirror never gets to write; every command is acknowledged by EventStoreDB alone.
    const first = await start({ MIRROR_TEST_DELAY_MS: '600000' });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send(first.url, players[i % players.length]!)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(answers.every((a) => a.body.mirrored === false && a.body.position === null)).toBe(true);
    expect(log()).toHaveLength(20);
    expect(await mirrored()).toHaveLength(0);
    await first.kill('SIGKILL');

    // Round 2: no delay; commands stream in while the process is killed in the middle of the mirror's work.
    const second = await start({ MIRROR_TEST_DELAY_MS: '5' });
    let stop = false;
    let acknowledged = 0;
    const clients = Array.from({ length: 8 }, async (_, c) => {
      while (!stop) {
        const answer = await send(second.url, players[c % players.length]!).catch(() => null);
        if (answer?.status === 200) acknowledged++;
      }
    });
    await new Promise((r) => setTimeout(r, 700));
    await second.kill('SIGKILL');
    stop = true;
    await Promise.all(clients);
    expect(acknowledged).toBeGreaterThan(0);

    // Restart: the mirror catches up from its checkpoint.
    const third = await start();
    await caughtUp();
    const expected = log();
    const actual = await mirrored();
    expect(actual.length).toBe(expected.length);
    expect(actual).toEqual(expected);
    expect(new Set(actual).size).toBe(actual.length);
    // And the service answers from the mirror again: a new command is mirrored at once.
    const after = await send(third.url, players[0]!);
    expect(after.body.mirrored).toBeUndefined();
    expect(after.body.position).toBeGreaterThan(0);
    console.log(`esdb mirror crash: ${expected.length} events in EventStoreDB (${acknowledged} acknowledged during the kill round), all mirrored once, in order`);
  }, 90_000);
});
