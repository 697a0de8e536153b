import { randomUUID } from 'node:crypto';
import { createTestSchema, type TestSchema } from '../support/database';
import { cleanUpServiceProcesses, startServiceProcess, type ServiceProcess } from '../support/service-process';

/**
 * Invariant 1: nothing acknowledged is lost, nothing appears twice. The service
 * runs as a real process; clients stream commands while it is SIGKILLed again
 * and again. Afterwards every command that got a 2xx has exactly one event,
 * and retrying the unanswered ones with their commandIds appends each at most once.
 */
describe('crash: SIGKILL of state-api while commands stream in', () => {
  let db: TestSchema;
  let service: ServiceProcess | null = null;
  const KEY = 'crash-test-key';

  beforeAll(async () => {
    db = await createTestSchema('crash');
  });
  afterAll(async () => {
    await service?.kill();
    await db.drop();
    await cleanUpServiceProcesses();
  });

  const start = async () => {
    service = await startServiceProcess({ DATABASE_URL: db.url, DATABASE_SCHEMA: db.schema, API_KEYS: `${KEY}:game` });
    return service;
  };

  const send = async (url: string, commandId: string, playerId: string) => {
    const response = await fetch(`${url}/v1/worlds/crash/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ commandId, type: 'player.record_action', payload: { playerId, action: 'step', context: { commandId } } }),
    });
    return { status: response.status, body: (await response.json()) as { duplicate?: boolean } };
  };

  it('keeps every acknowledged command exactly once across 3 kills', async () => {
    const players = Array.from({ length: 8 }, () => randomUUID());
    const acknowledged = new Set<string>();
    const unanswered = new Map<string, string>();
    let sent = 0;

    for (let round = 0; round < 3; round++) {
      const { url, kill } = await start();
      let stop = false;
      const clients = Array.from({ length: 16 }, async (_, c) => {
        while (!stop) {
          const commandId = randomUUID();
          const playerId = players[(c + sent) % players.length]!;
          sent++;
          try {
            const { status } = await send(url, commandId, playerId);
            if (status === 200) acknowledged.add(commandId);
            else unanswered.set(commandId, playerId);
          } catch {
            unanswered.set(commandId, playerId); // connection cut by the kill: outcome unknown to the client
          }
        }
      });
      await new Promise((r) => setTimeout(r, 400 + round * 150));
      await kill('SIGKILL');
      stop = true;
      await Promise.all(clients);
    }

    // Every acknowledged command is in the log exactly once; no command appears twice.
    const { rows } = await db.pool.query<{ command_id: string; n: string }>(
      "SELECT metadata->>'commandId' AS command_id, count(*) AS n FROM events GROUP BY 1",
    );
    const counts = new Map(rows.map((r) => [r.command_id, Number(r.n)]));
    const lost = [...acknowledged].filter((id) => counts.get(id) !== 1);
    const doubled = rows.filter((r) => Number(r.n) > 1);
    console.log(`crash test: sent ${sent}, acknowledged ${acknowledged.size}, unanswered ${unanswered.size}, lost ${lost.length}, duplicated ${doubled.length}`);
    expect(acknowledged.size).toBeGreaterThan(50);
    expect(lost).toEqual([]);
    expect(doubled).toEqual([]);

    // Retrying the unanswered ones (as a client would) appends each at most once.
    const { url } = await start();
    for (const [commandId, playerId] of unanswered) {
      const retry = await send(url, commandId, playerId);
      expect(retry.status).toBe(200);
      expect(retry.body.duplicate).toBe(counts.get(commandId) === 1);
    }
    const { rows: after } = await db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM events GROUP BY metadata->>'commandId' HAVING count(*) > 1",
    );
    expect(after).toEqual([]);

    // Streams stay gapless: revisions 0..n-1.
    const { rows: gaps } = await db.pool.query(
      'SELECT stream_id FROM events GROUP BY stream_id HAVING max(revision) + 1 <> count(*)',
    );
    expect(gaps).toEqual([]);
  }, 120_000);
});
