import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { log } from '../support/env';

/**
 * With BENCH_CPU_PROF=<dir>, a CPU profile of this process while `work` runs,
 * written to <dir>/<name>.cpuprofile (open it in Chrome DevTools or speedscope).
 * Without it, just `work()`.
 */
export const profiled = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return work();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${name}.cpuprofile`);
    await writeFile(file, JSON.stringify(profile));
    log(`CPU profile: ${file}`);
  }
};
