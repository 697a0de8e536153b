import fc from 'fast-check';
import { deciders, fold, parseStreamId, REDUCER_VERSIONS, type DomainEvent } from '@lorestore/domain';
import { PostgresEventStore, type RecordedEvent } from '@lorestore/event-store';
import { toDomainEvent } from '@lorestore/projections';
import { gameCommands, gameStep } from '../../libs/projections/src/testing/game-log';
import { migrateReplay, Rollbacks, SnapshotStore, StateAt } from '@lorestore/replay';
import { createTestSchema, type TestSchema } from '../support/database';

/**
 * state-at (nearest snapshot, then the stream's events up to the point) must
 * equal a fresh fold of the stream's events up to that point, whatever the
 * history: random game histories with rollbacks and restores in them, random
 * targets by revision, position and time, snapshots every few events.
 */
describe('state-at equals a fresh fold to the same point', () => {
  let db: TestSchema;
  let store: PostgresEventStore;
  let snapshots: SnapshotStore;
  let stateAt: StateAt;
  let rollbacks: Rollbacks;
  let world = 0;

  beforeAll(async () => {
    db = await createTestSchema('state_at');
    await PostgresEventStore.migrate(db.pool, db.schema);
    await migrateReplay(db.pool, db.schema);
    store = new PostgresEventStore({ pool: db.pool, schema: db.schema });
    snapshots = new SnapshotStore(db.pool);
    stateAt = new StateAt({ store, pool: db.pool, snapshots, snapshotEvery: 3 });
    rollbacks = new Rollbacks({ store, pool: db.pool, stateAt });
  });

  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  /** Appends a game history, with a rollback of a random stream to a random revision after some commands, and restores. */
  const writeHistory = async (plan: { steps: Parameters<typeof gameCommands>[0]; rollbackAt: number[]; restore: boolean }) => {
    const worldId = `sa${world++}`;
    const commands = gameCommands(plan.steps, worldId);
    const rollbackIds: string[] = [];
    for (const [i, { command, streamId, events }] of commands.entries()) {
      await store.appendToStream(
        streamId,
        events.map((e, k) => ({ id: crypto.randomUUID(), type: e.type, data: e.data, metadata: { worldId, actor: command.metadata.actor, index: k } })),
        { commandId: command.metadata.commandId.replace(/^33333333/, crypto.randomUUID().slice(0, 8)) },
      );
      if (plan.rollbackAt.includes(i)) {
        const head = await store.streamRevision(streamId);
        const to = Number(head) > 0 ? Math.floor(Number(head) / 2) : -1;
        if (to < Number(head)) {
          const { operation } = await rollbacks.rollback({ worldId, scope: { type: 'stream', streamId, toRevision: to }, reason: 'test', actor: 'admin:t' });
          rollbackIds.push(operation.operationId);
        }
      }
    }
    if (plan.restore && rollbackIds.length > 0) await rollbacks.restore({ operationId: rollbackIds[0]!, actor: 'admin:t', force: true });
    return worldId;
  };

  const streamsOf = async (worldId: string): Promise<RecordedEvent[][]> => {
    const { rows } = await db.pool.query<{ stream_id: string }>('SELECT stream_id FROM streams WHERE world_id = $1 AND revision >= 0 ORDER BY stream_id', [worldId]);
    return Promise.all(rows.map((r) => store.readStream(r.stream_id)));
  };

  /** JSON with keys sorted: a snapshot comes back from jsonb with its keys in jsonb's order, which is the same state. */
  const canonical = (value: unknown): string =>
    JSON.stringify(value, (_k, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
    );

  const freshFold = (events: RecordedEvent[]) => {
    const aggregate = parseStreamId(events[0]!.streamId)!.aggregate;
    return fold(deciders[aggregate], events.map((e) => toDomainEvent(e) as DomainEvent));
  };

  it('by revision, position and time, on random histories with rollbacks and restores', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(gameStep, { minLength: 5, maxLength: 40 }),
        fc.array(fc.nat(39), { maxLength: 3 }),
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.constantFrom('revision' as const, 'position' as const, 'time' as const)), { minLength: 1, maxLength: 12 }),
        async (steps, rollbackAt, restore, targets) => {
          const worldId = await writeHistory({ steps, rollbackAt, restore });
          const streams = await streamsOf(worldId);
          if (streams.length === 0) return;
          for (const [s, e, kind] of targets) {
            const events = streams[s % streams.length]!;
            const at = events[e % events.length]!;
            const target =
              kind === 'revision' ? { revision: at.revision } : kind === 'position' ? { position: at.position.prepare } : { time: at.created };
            // A fresh fold of the same prefix: up to that revision, at or below that position, or the events appended by that time.
            const prefix =
              kind === 'revision'
                ? events.filter((x) => x.revision <= at.revision)
                : kind === 'position'
                  ? events.filter((x) => x.position.prepare <= at.position.prepare)
                  : events.slice(0, events.findIndex((x) => x.created > at.created) === -1 ? events.length : events.findIndex((x) => x.created > at.created));
            const got = await stateAt.stream(at.streamId, target);
            expect(got.revision).toBe(prefix.at(-1)!.revision);
            expect(canonical(got.state)).toBe(canonical(freshFold(prefix)));
          }
        },
      ),
      { numRuns: Number(process.env.STATE_AT_RUNS ?? 15), endOnFailure: true },
    );
  });

  it('folds from the nearest snapshot of the current reducer version, never from one of another version', async () => {
    const worldId = await writeHistory({ steps: Array.from({ length: 30 }, (_, i) => ({ op: 'time' as const, value: i % 5 })), rollbackAt: [], restore: false });
    const streamId = `world-${worldId}`;
    const events = await store.readStream(streamId);
    expect(events.length).toBe(30);
    // The first fold to the head leaves snapshots every 3 events behind (written in the background).
    const first = await stateAt.stream(streamId);
    expect(first.snapshotRevision).toBeNull();
    expect(first.eventsFolded).toBe(30);
    for (let i = 0; i < 50 && (await snapshots.latest(streamId, REDUCER_VERSIONS.world)) === null; i++) await new Promise((r) => setTimeout(r, 20));
    const second = await stateAt.stream(streamId, { revision: 20n });
    expect(second.snapshotRevision).toBe(20n);
    expect(second.eventsFolded).toBe(0);
    const third = await stateAt.stream(streamId, { revision: 22n });
    expect(third.snapshotRevision).toBe(20n);
    expect(third.eventsFolded).toBe(2);
    expect(third.state).toEqual(freshFold(events.slice(0, 23)));

    // A snapshot written by another reducer version, with a state the current evolve would never make: ignored.
    await db.pool.query(
      `INSERT INTO snapshots (stream_id, revision, reducer_version, position, event_time, state)
       SELECT stream_id, revision, $2, position, created_at, '{"time": -999}' FROM events WHERE stream_id = $1 AND revision = 27`,
      [streamId, REDUCER_VERSIONS.world + 1],
    );
    // Snapshots of version 1 sit at revisions 2, 5, …, 26, 29 (each ends a group of 3).
    const fourth = await stateAt.stream(streamId, { revision: 28n });
    expect(fourth.snapshotRevision).toBe(26n);
    expect(fourth.state).toEqual(freshFold(events.slice(0, 29)));

    // At start the service deletes the snapshots of other reducer versions, and only those.
    const count = async (version: number) =>
      Number((await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM snapshots WHERE stream_id = $1 AND reducer_version = $2', [streamId, version])).rows[0]!.n);
    const current = await count(REDUCER_VERSIONS.world);
    expect(await snapshots.pruneStale(REDUCER_VERSIONS)).toBeGreaterThanOrEqual(1);
    expect(await count(REDUCER_VERSIONS.world + 1)).toBe(0);
    expect(await count(REDUCER_VERSIONS.world)).toBe(current);
  });
});
