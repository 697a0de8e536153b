import { randomUUID } from 'node:crypto';
import { streamIds, type EntityState, type PlayerState } from '@lorestore/domain';
import { PostgresEventStore, WrongExpectedVersionError, type EventData } from '@lorestore/event-store';
import { InlineReadModels, MemoryHotState, ProjectionRunner, ReadModelStore } from '@lorestore/projections';
import { migrateReplay, OperationIdReusedError, RestoreConflictError, Rollbacks, RollbackTargetError, SnapshotStore, StateAt } from '@lorestore/replay';
import { createTestSchema, type TestSchema } from '../support/database';
import { expectedOf, readBackPostgres, runnerCaughtUp, wholeLog } from '../support/read-models';

const at = () => new Date().toISOString();
const ev = (type: string, data: Record<string, unknown>, worldId: string, actorId?: string): EventData => ({
  id: randomUUID(),
  type,
  data: { ...data, at: (data.at as string | undefined) ?? at() },
  metadata: { worldId, actor: 'game:k1', ...(actorId ? { actorId } : {}) },
});

/**
 * Rollback and restore against the real log and the real projector: the
 * restored state reaches every read model (PostgreSQL rows, the hot store,
 * player history), nothing is deleted, and replaying the whole log from
 * scratch gives the same read models bit for bit.
 */
describe('rollback and restore', () => {
  let db: TestSchema;
  let store: PostgresEventStore;
  let stateAt: StateAt;
  let rollbacks: Rollbacks;
  let readModels: ReadModelStore;
  let hot: MemoryHotState;
  let runner: ProjectionRunner;

  beforeAll(async () => {
    db = await createTestSchema('rollback');
    await PostgresEventStore.migrate(db.pool, db.schema);
    await ReadModelStore.migrate(db.pool, db.schema);
    await migrateReplay(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema, pollIntervalMs: 20 });
    stateAt = new StateAt({ store, pool: db.pool, snapshots: new SnapshotStore(db.pool), snapshotEvery: 2 });
    rollbacks = new Rollbacks({ store, pool: db.pool, stateAt });
    readModels = new ReadModelStore(db.pool);
    hot = new MemoryHotState({ ttlSeconds: 600, maxEntries: 10_000 });
    runner = new ProjectionRunner({
      store,
      pool: db.pool,
      readModels,
      hot,
      batchSize: 50,
      lockName: `${db.schema}.rollback`,
      partitions: { monthsBack: 1, monthsAhead: 1, retentionMonths: null },
    });
    runner.start();
  });

  afterAll(async () => {
    await runner?.stop();
    await store?.close();
    await db?.drop();
  });

  /** Until the projector has applied everything committed so far. */
  /**
   * Until the projector has applied every event committed in this schema so
   * far (not the gap-safe head, which another suite's open transaction may hold back).
   */
  const caughtUp = () => runnerCaughtUp(runner, db.pool);

  const entityDoc = async (worldId: string, id: string) => (await readModels.getDoc('entities', worldId, id))?.state as EntityState | undefined;
  const visibleHistory = async (worldId: string, playerId: string) =>
    (
      await db.pool.query<{ action: string }>('SELECT action FROM player_history WHERE world_id = $1 AND player_id = $2 AND NOT rolled_back ORDER BY revision', [
        worldId,
        playerId,
      ])
    ).rows.map((r) => r.action);

  it('a stream rollback restores that revision’s state everywhere, and its restore the state before it', async () => {
    const w = 'rb1';
    const entityId = randomUUID();
    const playerId = randomUUID();
    const entity = streamIds.entity(w, entityId);
    const player = streamIds.player(w, playerId);
    await store.appendToStream(entity, [ev('EntitySpawned', { entityId, kind: 'npc', attributes: { hp: 10 }, locationId: null }, w)]);
    await store.appendToStream(entity, [ev('EntityUpdated', { entityId, set: { hp: 3 }, unset: [] }, w)]);
    await store.appendToStream(entity, [ev('EntityDespawned', { entityId, reason: 'slain' }, w)]);
    for (const action of ['a1', 'a2', 'a3']) await store.appendToStream(player, [ev('PlayerActionRecorded', { playerId, action, context: {}, recordedAt: at() }, w)]);
    await caughtUp();
    expect((await entityDoc(w, entityId))?.status).toBe('despawned');

    const entityRollback = await rollbacks.rollback({ worldId: w, scope: { type: 'stream', streamId: entity, toRevision: 0 }, reason: 'bad patch', actor: 'admin:ops' });
    expect(entityRollback.operation.streams).toEqual([{ streamId: entity, fromRevision: 2, toRevision: 0, events: 2, revision: 3 }]);
    const playerRollback = await rollbacks.rollback({ worldId: w, scope: { type: 'stream', streamId: player, toRevision: 0 }, reason: 'exploit', actor: 'admin:ops' });
    await caughtUp();

    const restored = await entityDoc(w, entityId);
    expect(restored).toMatchObject({ status: 'active', attributes: { hp: 10 } });
    expect((await hot.get('entities', w, entityId))?.state).toMatchObject({ status: 'active', attributes: { hp: 10 } });
    expect(((await readModels.getDoc('player_state', w, playerId))?.state as PlayerState).counters.actions).toBe(1);
    expect(await visibleHistory(w, playerId)).toEqual(['a1']);
    // Nothing deleted: every event is still in the log, the rollback is one more.
    expect((await store.readStream(entity)).map((e) => e.type)).toEqual(['EntitySpawned', 'EntityUpdated', 'EntityDespawned', 'StreamRolledBack']);

    // A restore while nothing changed since: back to the state just before the rollback.
    const restore = await rollbacks.restore({ operationId: playerRollback.operation.operationId, actor: 'admin:ops' });
    expect(restore.operation.restores).toBe(playerRollback.operation.operationId);
    await caughtUp();
    expect(await visibleHistory(w, playerId)).toEqual(['a1', 'a2', 'a3']);
    expect(((await readModels.getDoc('player_state', w, playerId))?.state as PlayerState).counters.actions).toBe(3);
    // Restoring again answers the first restore.
    const again = await rollbacks.restore({ operationId: playerRollback.operation.operationId, actor: 'admin:ops' });
    expect(again).toMatchObject({ duplicate: true, operation: { operationId: restore.operation.operationId } });
    expect((await rollbacks.load(playerRollback.operation.operationId))?.restoredBy).toBe(restore.operation.operationId);

    // A stream written after its rollback: the restore would undo that write too, so it is refused unless forced.
    await store.appendToStream(entity, [ev('EntityUpdated', { entityId, set: { hp: 7 }, unset: [] }, w)]);
    await expect(rollbacks.restore({ operationId: entityRollback.operation.operationId, actor: 'admin:ops' })).rejects.toBeInstanceOf(RestoreConflictError);
    await rollbacks.restore({ operationId: entityRollback.operation.operationId, actor: 'admin:ops', force: true });
    await caughtUp();
    expect((await entityDoc(w, entityId))?.status).toBe('despawned');
  });

  it('a world rollback to a position brings back every stream changed after it; streams born after it go back to before their first event', async () => {
    const w = 'rb2';
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const entityId of ids.slice(0, 2)) {
      await store.appendToStream(streamIds.entity(w, entityId), [ev('EntitySpawned', { entityId, kind: 'item', attributes: { n: 1 }, locationId: null }, w)]);
    }
    const point = await store.appendToStream(streamIds.world(w), [ev('WorldTimeAdvanced', { ticks: 5, from: 0, to: 5 }, w)]);
    await store.appendToStream(streamIds.entity(w, ids[0]!), [ev('EntityUpdated', { entityId: ids[0], set: { n: 2 }, unset: [] }, w)]);
    await store.appendToStream(streamIds.entity(w, ids[2]!), [ev('EntitySpawned', { entityId: ids[2], kind: 'item', attributes: { n: 9 }, locationId: null }, w)]);
    await store.appendToStream(streamIds.world(w), [ev('WorldTimeAdvanced', { ticks: 5, from: 5, to: 10 }, w)]);
    // Another world's writes after the point are not touched.
    await store.appendToStream(streamIds.world('other'), [ev('WorldTimeAdvanced', { ticks: 1, from: 0, to: 1 }, 'other')]);

    const scope = { type: 'world' as const, toPosition: Number(point.position.prepare) };
    const plan = await rollbacks.plan(w, scope);
    expect(plan.streams.map((s) => [s.streamId, s.toRevision, s.events]).sort()).toEqual(
      [
        [streamIds.entity(w, ids[0]!), 0, 1],
        [streamIds.entity(w, ids[2]!), -1, 1],
        [streamIds.world(w), 0, 1],
      ].sort(),
    );
    const operationId = randomUUID();
    const done = await rollbacks.rollback({ worldId: w, scope, reason: 'reset', actor: 'admin:ops', operationId });
    expect(done.operation.streams).toHaveLength(3);
    // The same operation again: the first answer, nothing appended.
    const repeat = await rollbacks.rollback({ worldId: w, scope, reason: 'reset', actor: 'admin:ops', operationId });
    expect(repeat.duplicate).toBe(true);
    expect(repeat.operation.position).toBe(done.operation.position);
    await expect(rollbacks.rollback({ worldId: w, scope: { type: 'world', toPosition: 1 }, reason: 'reset', actor: 'admin:ops', operationId })).rejects.toBeInstanceOf(
      OperationIdReusedError,
    );
    await caughtUp();
    expect(await entityDoc(w, ids[0]!)).toMatchObject({ attributes: { n: 1 } });
    expect((await entityDoc(w, ids[2]!))?.status).toBe('unspawned');
    expect(((await readModels.getDoc('world_state', w, w))?.state as { time: number }).time).toBe(5);
    expect((await rollbacks.list(w, 10)).items.map((o) => o.operationId)).toContain(operationId);
  });

  it('an actor rollback undoes from the actor’s first event since a time, and its dry run lists the other actors’ events it would undo too', async () => {
    const w = 'rb3';
    const [a, b] = [randomUUID(), randomUUID()];
    for (const entityId of [a, b]) {
      await store.appendToStream(streamIds.entity(w, entityId), [ev('EntitySpawned', { entityId, kind: 'item', attributes: { gold: 1 }, locationId: null }, w)]);
    }
    const since = new Date(Date.now() + 5).toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await store.appendToStream(streamIds.entity(w, a), [ev('EntityUpdated', { entityId: a, set: { gold: 999 }, unset: [] }, w, 'cheater')]);
    await store.appendToStream(streamIds.entity(w, a), [ev('EntityUpdated', { entityId: a, set: { tag: 'x' }, unset: [] }, w, 'honest')]);
    await store.appendToStream(streamIds.entity(w, b), [ev('EntityUpdated', { entityId: b, set: { gold: 2 }, unset: [] }, w, 'honest')]);

    const scope = { type: 'actor' as const, actorId: 'cheater', since };
    const plan = await rollbacks.plan(w, scope);
    expect(plan.streams).toEqual([{ streamId: streamIds.entity(w, a), fromRevision: 2, toRevision: 0, events: 2 }]);
    expect(plan.collateral).toEqual([{ streamId: streamIds.entity(w, a), actor: 'honest', events: 1, firstRevision: 2, lastRevision: 2 }]);
    await rollbacks.rollback({ worldId: w, scope, reason: 'duplication exploit', actor: 'admin:ops' });
    await caughtUp();
    expect(await entityDoc(w, a)).toMatchObject({ attributes: { gold: 1 } });
    expect(await entityDoc(w, b)).toMatchObject({ attributes: { gold: 2 } });

    // Someone else writes after the rollback; the same actor rollback again finds nothing of the
    // cheater's still in effect, instead of reaching back over the later write.
    await store.appendToStream(streamIds.entity(w, a), [ev('EntityUpdated', { entityId: a, set: { gold: 5 }, unset: [] }, w, 'honest')]);
    expect((await rollbacks.plan(w, scope)).streams).toEqual([]);
    await expect(rollbacks.rollback({ worldId: w, scope, reason: 'again', actor: 'admin:ops' })).rejects.toBeInstanceOf(RollbackTargetError);
  });

  it('restores of one rollback sent at once: one restore, every caller gets it', async () => {
    const w = 'rb5';
    const entityId = randomUUID();
    const stream = streamIds.entity(w, entityId);
    await store.appendToStream(stream, [ev('EntitySpawned', { entityId, kind: 'item', attributes: { v: 1 }, locationId: null }, w)]);
    await store.appendToStream(stream, [ev('EntityUpdated', { entityId, set: { v: 2 }, unset: [] }, w)]);
    const { operation } = await rollbacks.rollback({ worldId: w, scope: { type: 'stream', streamId: stream, toRevision: 0 }, reason: 'x', actor: 'admin:ops' });
    const outcomes = await Promise.all([1, 2, 3].map(() => rollbacks.restore({ operationId: operation.operationId, actor: 'admin:ops' })));
    expect(new Set(outcomes.map((o) => o.operation.operationId)).size).toBe(1);
    expect(outcomes.filter((o) => !o.duplicate)).toHaveLength(1);
    expect((await store.readStream(stream)).map((e) => e.type)).toEqual(['EntitySpawned', 'EntityUpdated', 'StreamRolledBack', 'StreamRolledBack']);
  });

  it('optimistic concurrency: a rollback planned on a stale head is a conflict, and so is a write planned before the rollback', async () => {
    const w = 'rb4';
    const entityId = randomUUID();
    const stream = streamIds.entity(w, entityId);
    await store.appendToStream(stream, [ev('EntitySpawned', { entityId, kind: 'item', attributes: {}, locationId: null }, w)]);
    await store.appendToStream(stream, [ev('EntityUpdated', { entityId, set: { a: 1 }, unset: [] }, w)]);
    await expect(
      rollbacks.rollback({ worldId: w, scope: { type: 'stream', streamId: stream, toRevision: 0, expectedRevision: 0 }, reason: 'stale', actor: 'admin:ops' }),
    ).rejects.toBeInstanceOf(WrongExpectedVersionError);
    await rollbacks.rollback({ worldId: w, scope: { type: 'stream', streamId: stream, toRevision: 0, expectedRevision: 1 }, reason: 'ok', actor: 'admin:ops' });
    // A game server that decided on revision 1 loses the race: 409, not a lost update.
    await expect(store.appendToStream(stream, [ev('EntityUpdated', { entityId, set: { a: 2 }, unset: [] }, w)], { expectedRevision: 1n })).rejects.toBeInstanceOf(
      WrongExpectedVersionError,
    );
    await expect(rollbacks.rollback({ worldId: w, scope: { type: 'stream', streamId: stream, toRevision: 9 }, reason: 'x', actor: 'admin:ops' })).rejects.toBeInstanceOf(
      RollbackTargetError,
    );
  });

  it('replaying the whole log from scratch after rollbacks and restores gives the same read models, bit for bit', async () => {
    await caughtUp();
    const before = await readBackPostgres(db.pool);
    const inline = new InlineReadModels();
    inline.apply(await wholeLog(store, db.pool));
    expect(before).toEqual(expectedOf(inline));

    // The read models from nothing: a second runner on emptied tables.
    await runner.stop();
    await db.pool.query('TRUNCATE entities, world_state, narrative_state, player_state, player_history, projection_checkpoints');
    runner = new ProjectionRunner({
      store,
      pool: db.pool,
      readModels,
      hot,
      batchSize: 7,
      lockName: `${db.schema}.rollback`,
      partitions: { monthsBack: 1, monthsAhead: 1, retentionMonths: null },
    });
    runner.start();
    await caughtUp();
    expect(await readBackPostgres(db.pool)).toEqual(before);
  });
});
