import { randomUUID } from 'node:crypto';
import { ADMIN_KEY, GAME_KEY, startTestApp, type TestApp } from '../support/app';

/** Per-key rate limits: the key over its window gets 429 problem+json with Retry-After and changes nothing; other keys and probes go on. */
describe('rate limits per API key (e2e)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp('e2e_rate', { RATE_LIMIT_MAX: '20', RATE_LIMIT_WINDOW_MS: '60000' });
  });
  afterAll(async () => {
    await app.close();
  });

  it('answers 429 beyond the limit, appends nothing then, and leaves other keys and health probes alone', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await app.request({ method: 'GET', url: '/v1/worlds/rl/state' })).status);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const entityId = randomUUID();
    const refused = await app.request({
      method: 'POST',
      url: '/v1/worlds/rl/commands',
      body: { commandId: randomUUID(), type: 'entity.spawn', payload: { entityId, kind: 'npc', attributes: {} } },
    });
    expect(refused.status).toBe(429);
    expect(String(refused.headers['content-type'])).toContain('application/problem+json');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.body).toMatchObject({ status: 429, type: expect.stringContaining('rate-limited'), limit: 20 });

    // The refused command was not appended (checked with another key, which has its own window).
    const events = await app.request({ method: 'GET', url: `/v1/worlds/rl/streams/entity-rl-${entityId}/events`, key: ADMIN_KEY });
    expect(events.status).toBe(404);
    expect(events.body.type).toContain('not-found');
    expect((await app.request({ method: 'GET', url: '/health/ready', key: null })).status).toBe(200);
    expect((await app.request({ method: 'GET', url: '/metrics', key: null })).status).toBe(200);
    expect((await app.request({ method: 'GET', url: '/v1/worlds/rl/state', key: GAME_KEY })).status).toBe(429);
    // The short path of GET entity is limited too, and the window is the key's however the header
    // spells it (it was one window per spelling of the header: "bearer", extra spaces).
    expect((await app.request({ method: 'GET', url: `/v1/worlds/rl/entities/${entityId}` })).status).toBe(429);
    for (const authorization of [`bearer ${GAME_KEY}`, `Bearer   ${GAME_KEY}  `, `BEARER ${GAME_KEY}`]) {
      expect((await app.request({ method: 'GET', url: '/v1/worlds/rl/state', key: null, headers: { authorization } })).status).toBe(429);
    }
  });
});
