import { AutoscaleSignal } from './autoscale';
import type { PoolStats } from './bounded-pool';

describe('AutoscaleSignal: the brief’s rule', () => {
  const rules = { upQueue: 50, upWaitMs: 1000, downQueue: 5, downWindowMs: 300_000 };
  let now = 1_000_000;
  let waiting = 0;
  let oldestWaitMs = 0;
  const pools = (): PoolStats[] => [{ name: 'primary', max: 50, inUse: 50, idle: 0, waiting, oldestWaitMs }];
  const make = () => new AutoscaleSignal(rules, pools, () => now);
  beforeEach(() => {
    now = 1_000_000;
    waiting = 0;
    oldestWaitMs = 0;
  });

  it('+1 above 50 waiting, not at 50', () => {
    const signal = make();
    waiting = 50;
    expect(signal.evaluate()).toMatchObject({ signal: 0, code: 'hold' });
    waiting = 51;
    expect(signal.evaluate()).toMatchObject({ signal: 1, code: 'queue_depth', queueDepth: 51 });
  });

  it('+1 when a queued caller, or one granted within the last second, waited over 1 s', () => {
    const signal = make();
    waiting = 10;
    oldestWaitMs = 1001;
    expect(signal.evaluate()).toMatchObject({ signal: 1, code: 'wait_time' });
    oldestWaitMs = 0;
    signal.observeWait(1500);
    expect(signal.evaluate()).toMatchObject({ signal: 1, code: 'wait_time', waitMs: 1500 });
    now += 1001;
    expect(signal.evaluate()).toMatchObject({ signal: 0 });
  });

  it('−1 only after 5 minutes with fewer than 5 waiting without a break', () => {
    const signal = make();
    waiting = 4;
    expect(signal.evaluate().signal).toBe(0);
    now += 299_000;
    expect(signal.evaluate().signal).toBe(0);
    waiting = 5; // a break in the quiet: the window starts again
    now += 500;
    expect(signal.evaluate().signal).toBe(0);
    waiting = 0;
    now += 500;
    expect(signal.evaluate()).toMatchObject({ signal: 0, code: 'hold' });
    now += 300_000;
    expect(signal.evaluate()).toMatchObject({ signal: -1, code: 'quiet' });
    waiting = 51;
    expect(signal.evaluate().signal).toBe(1);
  });
});
