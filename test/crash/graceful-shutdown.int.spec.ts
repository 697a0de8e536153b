import { randomUUID } from 'node:crypto';
import { createTestSchema, type TestSchema } from '../support/database';
import { cleanUpServiceProcesses, startServiceProcess, type ServiceProcess } from '../support/service-process';

/**
 * SIGTERM drains: readiness turns 503 and requests are still served for
 * SHUTDOWN_DRAIN_DELAY_MS; then the server closes, answering what is in
 * flight (their group-commit batches commit) before the stores close and the
 * process exits 0; every 2xx is in the log.
 */
describe('graceful shutdown: SIGTERM under load', () => {
  let db: TestSchema;
  let service: ServiceProcess | null = null;
  const KEY = 'drain-key';
  beforeAll(async () => {
    db = await createTestSchema('drain');
  });
  afterAll(async () => {
    await service?.kill('SIGKILL');
    await db.drop();
    await cleanUpServiceProcesses();
  });

  it('answers every request in flight, commits their events, then exits 0', async () => {
    service = await startServiceProcess({
      DATABASE_URL: db.url,
      DATABASE_SCHEMA: db.schema,
      API_KEYS: `${KEY}:game`,
      RATE_LIMIT_MAX: '0',
      SHUTDOWN_GRACE_MS: '15000',
      // As behind a load balancer: readiness goes 503 at SIGTERM, requests are served 800 ms more.
      SHUTDOWN_DRAIN_DELAY_MS: '800',
    });
    const url = service.url;
    const outcomes: { commandId: string; startedAt: number; endedAt: number; status: number | 'failed'; events?: number }[] = [];
    let sigtermAt = Infinity;
    let stop = false;
    const clients = Array.from({ length: 32 }, async (_, c) => {
      while (!stop) {
        const commandId = randomUUID();
        const startedAt = performance.now();
        let status: number | 'failed';
        let events: number | undefined;
        try {
          const response = await fetch(`${url}/v1/worlds/drain/commands`, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', connection: 'close' },
            body: JSON.stringify({ commandId, type: 'player.record_action', payload: { playerId: randomUUID(), action: `a${c}`, context: { c } } }),
          });
          status = response.status;
          const body = (await response.json()) as { events?: unknown[] };
          events = body.events?.length;
        } catch {
          status = 'failed';
        }
        outcomes.push({ commandId, startedAt, endedAt: performance.now(), status, events });
        if (status === 'failed' && performance.now() > sigtermAt) break;
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    const exited = new Promise<number | null>((resolve) => service!.child.once('exit', (code) => resolve(code)));
    sigtermAt = performance.now();
    service.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const readyDuringDrain = (await fetch(`${url}/health/ready`)).status;
    const code = await exited;
    stop = true;
    await Promise.all(clients);

    // In flight at SIGTERM: started before it, answered after it. (After the drain delay the listener
    // closes: a connection still in its accept queue then is reset unread, which a client retries.)
    const inFlight = outcomes.filter((o) => o.startedAt < sigtermAt && o.endedAt > sigtermAt);
    const duringDrain = outcomes.filter((o) => o.startedAt > sigtermAt && o.startedAt < sigtermAt + 400);
    const cut = inFlight.filter((o) => o.status !== 200);
    const acknowledged = outcomes.filter((o) => o.status === 200);
    const { rows } = await db.pool.query<{ command_id: string }>("SELECT metadata->>'commandId' AS command_id FROM events");
    const stored = new Set(rows.map((r) => r.command_id));
    console.log(`graceful shutdown: ${acknowledged.length} acknowledged, ${inFlight.length} in flight at SIGTERM (${cut.length} not answered 200), ${duringDrain.length} sent during the drain delay, exit code ${code}`);
    expect(code).toBe(0);
    expect(readyDuringDrain).toBe(503);
    expect(duringDrain.length).toBeGreaterThan(5);
    expect(duringDrain.filter((o) => o.status !== 200)).toEqual([]);
    expect(inFlight.length).toBeGreaterThan(5);
    expect(cut).toEqual([]);
    expect(acknowledged.filter((o) => !stored.has(o.commandId))).toEqual([]);
    expect(acknowledged.every((o) => o.events === 1)).toBe(true);
  }, 60_000);
});
