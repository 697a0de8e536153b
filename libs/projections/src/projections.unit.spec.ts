import fc from 'fast-check';
import { deciders, fold, type EntityState } from '@lorestore/domain';
import { InlineReadModels } from './inline';
import { docKey, planBatch, ALL_PROJECTIONS, ProjectionGapError, toDomainEvent, type Doc } from './projections';
import { entityIdOf, gameLog, gameStep, redelivery } from './testing/game-log';

const logs = fc.array(gameStep, { minLength: 1, maxLength: 80 }).map((steps) => gameLog(steps));
/** A log and one way of delivering it: any batching, with redeliveries. */
const deliveries = logs.chain((log) => fc.tuple(fc.constant(log), redelivery(log)));

const applyOnce = (log: ReturnType<typeof gameLog>) => {
  const models = new InlineReadModels();
  models.apply(log);
  return models;
};

describe('projections (pure)', () => {
  it('a document is the fold of its stream by the domain’s own evolve', () => {
    fc.assert(
      fc.property(logs, (log) => {
        const models = applyOnce(log);
        const streams = new Set(log.map((e) => e.streamId));
        for (const streamId of streams) {
          const events = log.filter((e) => e.streamId === streamId);
          const aggregate = streamId.split('-', 1)[0] as 'entity' | 'world' | 'player' | 'narrative';
          const table = { entity: 'entities', world: 'world_state', player: 'player_state', narrative: 'narrative_state' }[aggregate] as 'entities';
          const doc = models.docs.get(docKey(table, streamId));
          expect(doc?.state).toEqual(fold(deciders[aggregate], events.map(toDomainEvent)));
          expect(doc?.revision).toBe(events.at(-1)!.revision);
          expect(doc?.position).toBe(events.at(-1)!.position.prepare);
        }
        expect(models.history.size).toBe(log.filter((e) => e.type === 'PlayerActionRecorded').length);
      }),
      { numRuns: 150 },
    );
  });

  it('any batching and redelivery ends in the state of one ordered, once-only application', () => {
    fc.assert(
      fc.property(
        deliveries,
        ([log, batches]) => {
          const expected = applyOnce(log);
          const delivered = new InlineReadModels();
          for (const batch of batches) delivered.apply(batch);
          expect(delivered.docs).toEqual(expected.docs);
          expect(delivered.history).toEqual(expected.history);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('folding in place (the bulk rebuild) gives the documents of folding by copies, over any batching and redelivery', () => {
    fc.assert(
      fc.property(
        deliveries,
        ([log, batches]) => {
          const expected = applyOnce(log);
          const docs = new Map<string, Doc>();
          for (const batch of batches) {
            // Each batch's events fresh from "the database", as the feed gives them.
            for (const doc of planBatch(ALL_PROJECTIONS, docs, structuredClone(batch), { inPlace: true }).docs) docs.set(docKey(doc.table, doc.streamId), doc);
          }
          expect(docs).toEqual(expected.docs);
          for (const [key, doc] of docs) expect(JSON.stringify(doc.state)).toBe(JSON.stringify(expected.docs.get(key)!.state));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses an event that skips revisions of a stream it holds (a read model that lost rows)', () => {
    const log = gameLog([
      { op: 'spawn', target: 0, value: 1 },
      { op: 'update', target: 0, value: 2 },
      { op: 'update', target: 0, value: 3 },
    ]);
    const models = new InlineReadModels();
    models.apply([log[0]!]);
    expect(() => models.apply([log[2]!])).toThrow(ProjectionGapError);
  });

  it('keeps a despawned entity as a document with its status, for the 410 answer', () => {
    const log = gameLog([
      { op: 'spawn', target: 1, value: 1 },
      { op: 'despawn', target: 1, value: 0 },
    ]);
    const doc = applyOnce(log).docs.get(docKey('entities', log[0]!.streamId));
    expect((doc?.state as EntityState).status).toBe('despawned');
    expect(doc?.id).toBe(entityIdOf(1));
  });

  it('reports the last event of the batch as the checkpoint, also when no projection handles it', () => {
    const log = gameLog([{ op: 'weather', value: 1 }]);
    const foreign = { ...log[0]!, streamId: 'audit-something', position: { commit: 9n, prepare: 99n } };
    const changes = planBatch(ALL_PROJECTIONS, new Map(), [log[0]!, foreign]);
    expect(changes.checkpoint?.position).toEqual({ commit: 9n, prepare: 99n });
    expect(changes.docs).toHaveLength(1);
  });
});
