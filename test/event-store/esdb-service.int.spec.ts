import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { EventStoreDBClient } from '@eventstore/db-client';
import { ADMIN_KEY, startTestApp, type TestApp } from '../support/app';

/**
 * EventStoreDB mode through HTTP, where it differs from PostgreSQL mode: a
 * stream tombstoned in EventStoreDB refuses commands (409), EventStoreDB
 * unreachable is a 503 to retry, and a mirror that cannot keep up within
 * MIRROR_WAIT_MS answers `mirrored: false` without a position. Nothing is
 * appended by a refused or failed command.
 */
describe('EventStoreDB mode: what only it can answer', () => {
  let t: TestApp;
  let slow: TestApp;

  beforeAll(async () => {
    t = await startTestApp('esdb_service', { EVENT_STORE: 'esdb' });
    slow = await startTestApp('esdb_service_slow', { EVENT_STORE: 'esdb', MIRROR_WAIT_MS: '150', MIRROR_TEST_DELAY_MS: '60000', VECTOR_DIMENSION: '2' });
  });
  afterAll(async () => {
    await t?.close();
    await slow?.close();
  });

  const spawn = (app: TestApp, entityId: string) =>
    app.request({ method: 'POST', url: '/v1/worlds/esdb/commands', body: { commandId: randomUUID(), type: 'entity.spawn', payload: { entityId, kind: 'npc', attributes: {} } } });

  it('a stream tombstoned in EventStoreDB answers 409 stream-deleted, and nothing is appended', async () => {
    const entityId = randomUUID();
    expect((await spawn(t, entityId)).status).toBe(200);
    const client = EventStoreDBClient.connectionString(t.esdb!.connectionString);
    await client.tombstoneStream(`entity-esdb-${entityId}`);
    await client.dispose();
    const before = t.esdb!.log().length;
    const r = await t.request({ method: 'POST', url: '/v1/worlds/esdb/commands', body: { commandId: randomUUID(), type: 'entity.update', payload: { entityId, set: { hp: 1 } } } });
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ type: 'urn:lorestore:problem:stream-deleted' });
    expect(t.esdb!.log().length).toBe(before);
  });

  it('a world rollback that fails part-way records and reports the part that was applied (no transaction across streams)', async () => {
    const [a, b] = [randomUUID(), randomUUID()].sort();
    const command = (type: string, payload: Record<string, unknown>) =>
      t.request({ method: 'POST', url: '/v1/worlds/part/commands', body: { commandId: randomUUID(), type, payload } });
    await command('entity.spawn', { entityId: a, kind: 'item', attributes: { n: 1 } });
    const target = await command('entity.spawn', { entityId: b, kind: 'item', attributes: { n: 1 } });
    await command('entity.update', { entityId: a, set: { n: 2 } });
    const last = await command('entity.update', { entityId: b, set: { n: 2 } });
    const client = EventStoreDBClient.connectionString(t.esdb!.connectionString);
    await client.tombstoneStream(`entity-part-${b}`);
    await client.dispose();
    const admin = (method: 'GET' | 'POST', url: string, body?: unknown) => t.request({ method, url, key: ADMIN_KEY, ...(body ? { body } : {}) });
    const r = await admin('POST', '/v1/admin/worlds/part/rollback', { toPosition: target.body.position, reason: 'bad patch' });
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ type: 'urn:lorestore:problem:partially-applied', appliedStreams: [`entity-part-${a}`], failedStream: `entity-part-${b}` });
    const audit = await admin('GET', `/v1/admin/rollbacks/${r.body.operationId}`);
    expect(audit.status).toBe(200);
    expect(audit.body.streams.map((s: { streamId: string }) => s.streamId)).toEqual([`entity-part-${a}`]);
    const entity = await t.request({ method: 'GET', url: `/v1/worlds/part/entities/${a}?minPosition=${audit.body.position}` });
    expect(entity.body.attributes).toEqual({ n: 1 });
    expect(last.status).toBe(200);
  });

  it('readiness judges EventStoreDB in this mode', async () => {
    const ready = await t.request({ method: 'GET', url: '/health/ready', key: null });
    expect(ready.status).toBe(200);
    expect(ready.body.info.eventStore).toMatchObject({ status: 'up', kind: 'esdb' });
    t.esdb!.failNext('Read', 3, grpc.status.UNAVAILABLE);
    const down = await t.request({ method: 'GET', url: '/health/ready', key: null });
    expect(down.status).toBe(503);
    expect(down.body).toMatchObject({ type: 'urn:lorestore:problem:not-ready', error: { eventStore: { status: 'down', kind: 'esdb' } } });
  });

  it('EventStoreDB unreachable: 503 with Retry-After, nothing appended', async () => {
    const before = t.esdb!.log().length;
    t.esdb!.failNext('BatchAppend', 10, grpc.status.UNAVAILABLE);
    t.esdb!.failNext('Read', 10, grpc.status.UNAVAILABLE);
    const r = await spawn(t, randomUUID());
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBeDefined();
    expect(t.esdb!.log().length).toBe(before);
  });

  it('a command resent while the mirror lags is answered as a duplicate, not appended again', async () => {
    const entityId = randomUUID();
    const body = { commandId: randomUUID(), type: 'entity.spawn', payload: { entityId, kind: 'npc', attributes: {} } };
    expect((await slow.request({ method: 'POST', url: '/v1/worlds/esdb/commands', body })).body).toMatchObject({ mirrored: false });
    const memory = { commandId: randomUUID(), type: 'npc.record_memory', payload: { npcId: entityId, text: 'hello', embedding: [1, 0] } };
    const first = await slow.request({ method: 'POST', url: '/v1/worlds/esdb/commands', body: memory });
    const events = slow.esdb!.log().length;
    const again = await slow.request({ method: 'POST', url: '/v1/worlds/esdb/commands', body: memory });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ duplicate: true, revision: first.body.revision, memoryId: first.body.memoryId });
    // A resent spawn would be refused by the domain (the entity exists): it is the first answer instead.
    const spawnAgain = await slow.request({ method: 'POST', url: '/v1/worlds/esdb/commands', body });
    expect(spawnAgain.status).toBe(200);
    expect(spawnAgain.body).toMatchObject({ duplicate: true, revision: 0 });
    expect(slow.esdb!.log().length).toBe(events);
    // The same commandId for another command is still refused.
    const reused = await slow.request({ method: 'POST', url: '/v1/worlds/esdb/commands', body: { ...memory, payload: { ...memory.payload, text: 'other' } } });
    expect(reused.status).toBe(422);
  });

  it('a mirror slower than MIRROR_WAIT_MS: 200 with mirrored false and no position; the event is in EventStoreDB', async () => {
    const entityId = randomUUID();
    const r = await spawn(slow, entityId);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ mirrored: false, position: null, revision: 0, duplicate: false });
    expect(slow.esdb!.log().map((e) => e.streamId)).toContain(`entity-esdb-${entityId}`);
    // The next command on the stream decides on EventStoreDB's stream, not on the empty mirror.
    const again = await slow.request({ method: 'POST', url: '/v1/worlds/esdb/commands', body: { commandId: randomUUID(), type: 'entity.update', payload: { entityId, set: { hp: 2 } } } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ revision: 1, mirrored: false });
  });
});
