import { ReadModelStore } from '@lorestore/projections';
import { createTestSchema, type TestSchema } from '../support/database';

/** projection_failures: what GET /v1/admin/projections shows while the live projector keeps failing. */
describe('recorded projection failures (ReadModelStore)', () => {
  let db: TestSchema;
  let store: ReadModelStore;
  let position = 1n;

  const commitBatch = () =>
    store.commit({ docs: [], history: [], historyResets: [], checkpoint: { position: { commit: 1n, prepare: position++ }, time: new Date() } }, ['entities', 'world_state'], 1);
  const tick = () => new Promise((r) => setTimeout(r, 5));

  beforeAll(async () => {
    db = await createTestSchema('failures');
    await ReadModelStore.migrate(db.pool, db.schema);
    store = new ReadModelStore(db.pool);
  });
  afterAll(() => db.drop());

  it('counts failures in a row with the first time and the last message; a committed batch ends the episode even when the row was not cleared', async () => {
    await commitBatch();
    await tick();
    await store.recordFailure(['entities', 'world_state'], 'error: relation "entities" does not exist', { commit: 1n, prepare: 1n });
    await tick();
    await store.recordFailure(['entities', 'world_state'], 'error: still no entities', { commit: 1n, prepare: 1n });
    const failing = await store.failures();
    expect(failing.get('entities')).toMatchObject({ message: 'error: still no entities', failures: 2, checkpoint: 1n });
    expect(failing.get('entities')!.lastAt.getTime()).toBeGreaterThan(failing.get('entities')!.since.getTime());
    expect([...failing.keys()].sort()).toEqual(['entities', 'world_state']);

    // A batch commits; the row stays (say its clearing was lost), but it is from before the batch: not a failure now.
    await tick();
    await commitBatch();
    expect((await store.failures()).size).toBe(0);
    // The next failure starts a new episode: counted from one, with its own start.
    await tick();
    await store.recordFailure(['entities'], 'error: again', { commit: 1n, prepare: 2n });
    const again = (await store.failures()).get('entities')!;
    expect(again).toMatchObject({ message: 'error: again', failures: 1, checkpoint: 2n });
    expect(again.since.getTime()).toBe(again.lastAt.getTime());

    await store.clearFailures(['entities', 'world_state']);
    expect((await store.failures()).size).toBe(0);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM projection_failures')).rows[0]).toEqual({ n: 0 });
  });

  it('a rebuild’s store (suffixed names) neither sees nor clears the live projections’ failures', async () => {
    await store.recordFailure(['entities'], 'error: live', null);
    const shadow = new ReadModelStore(db.pool, { suffix: '__g2' });
    expect((await shadow.failures()).size).toBe(0);
    await shadow.clearFailures(['entities']);
    expect((await store.failures()).get('entities')).toMatchObject({ message: 'error: live', checkpoint: null });
    await store.clearFailures(['entities']);
  });
});
