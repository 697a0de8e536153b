import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The root package's version: found by walking up from this file (src/ or dist/), "unknown" if not found. */
export const cliVersion = (): string => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'lorestore' && pkg.version) return pkg.version;
      } catch {
        // not ours, keep looking
      }
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
};
