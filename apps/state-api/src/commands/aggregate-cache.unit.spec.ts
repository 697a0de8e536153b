import type { AppConfig } from '../config';
import { AggregateCache } from './aggregate-cache';

const cache = (size: number) => new AggregateCache({ AGGREGATE_CACHE_SIZE: size } as AppConfig);

describe('AggregateCache', () => {
  it('keeps the newer revision of a stream', () => {
    const c = cache(10);
    c.set('s', { state: 'v2', revision: 2n, position: 20n });
    c.set('s', { state: 'v1', revision: 1n, position: 10n });
    expect(c.get('s')).toEqual({ state: 'v2', revision: 2n, position: 20n });
    c.set('s', { state: 'v3', revision: 3n, position: 30n });
    expect(c.get('s')?.state).toBe('v3');
  });

  it('evicts the least recently used stream beyond its size', () => {
    const c = cache(2);
    c.set('a', { state: 1, revision: 0n, position: 1n });
    c.set('b', { state: 2, revision: 0n, position: 2n });
    c.get('a');
    c.set('c', { state: 3, revision: 0n, position: 3n });
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')?.state).toBe(1);
    expect(c.size).toBe(2);
  });

  it('holds nothing with size 0', () => {
    const c = cache(0);
    c.set('a', { state: 1, revision: 0n, position: 1n });
    expect(c.get('a')).toBeUndefined();
  });
});
