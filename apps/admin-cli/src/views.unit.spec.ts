import { failingLines } from './views';
import type { ProjectionStatus } from './types';

const status = (name: string, error: ProjectionStatus['error']): ProjectionStatus => ({
  name,
  version: 1,
  checkpoint: 10,
  checkpointCommit: '7',
  lag: { events: 3, ms: 40_000 },
  eventsProcessed: 10,
  updatedAt: '2026-11-26T10:00:00.000Z',
  status: 'stalled',
  error,
});

describe('lorestore projections: failing projections below the table', () => {
  it('one line per failing projection, with count, since, checkpoint and the last error; nothing for the others or an older server', () => {
    const text = failingLines([
      status('entities', { message: 'error: relation "entities" does not exist', failures: 1234, since: '2026-11-26T09:00:00.000Z', lastAt: '2026-11-26T10:00:00.000Z', checkpoint: 10 }),
      status('world_state', null),
      { ...status('narrative_state', null), error: undefined },
    ]);
    expect(text).toBe('FAILING entities: 1,234 time(s) in a row since 2026-11-26T09:00:00.000Z, at checkpoint 10: error: relation "entities" does not exist');
  });
});
