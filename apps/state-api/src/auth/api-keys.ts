import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export type Role = 'game' | 'admin';
export type Principal = { keyId: string; role: Role };

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest();

export class ApiKeyError extends Error {
  override readonly name = 'ApiKeyError';
}

/**
 * The keys the service accepts, as SHA-256 digests: a presented key is
 * compared with timingSafeEqual against every known one, so neither a key
 * nor how much of it matched leaks through timing. A key once accepted is
 * also remembered as presented (see `accepted`): the plain keys of the ring
 * stay in memory, as they already do in the configuration it was read from.
 */
export class ApiKeyRing {
  private constructor(private readonly entries: { digest: Buffer; principal: Principal }[]) {}

  /** `key:role,key:role` (commas or new lines), roles `game` and `admin`. */
  static parse(spec: string): ApiKeyRing {
    const items = spec
      .split(/[,\n]/)
      .map((s) => s.trim())
      .filter((s) => s && !s.startsWith('#'));
    if (items.length === 0) throw new ApiKeyError('API_KEYS holds no key');
    const entries = items.map((item, i) => {
      const at = item.lastIndexOf(':');
      const key = at > 0 ? item.slice(0, at) : '';
      const role = item.slice(at + 1);
      if (!key || (role !== 'game' && role !== 'admin')) {
        throw new ApiKeyError(`API_KEYS entry ${i + 1} must be key:game or key:admin`);
      }
      if (key.length < 8) throw new ApiKeyError(`API_KEYS entry ${i + 1}: a key needs at least 8 characters`);
      const d = digest(key);
      return { digest: d, principal: { keyId: `key-${d.toString('hex').slice(0, 12)}`, role: role as Role } };
    });
    return new ApiKeyRing(entries);
  }

  /**
   * Keys presented before and found: hashing every request's key cost 5 % of
   * a read's CPU. Only a known key is kept, so an unknown one always takes
   * the constant-time path and the memo cannot be filled with junk. A memo
   * hit tells the caller nothing it did not know: it sent the whole key.
   */
  private readonly accepted = new Map<string, Principal>();

  authenticate(presented: string): Principal | null {
    const known = this.accepted.get(presented);
    if (known) return known;
    const d = digest(presented);
    let found: Principal | null = null;
    for (const entry of this.entries) {
      // No early exit: every key is compared, whatever matched.
      if (timingSafeEqual(entry.digest, d)) found = entry.principal;
    }
    // A key matches only itself: the memo holds at most one entry per key of the ring.
    if (found) this.accepted.set(presented, found);
    return found;
  }
}

/**
 * With no API_KEYS the service still never opens up: it makes a random admin
 * key once, keeps it (mode 0600) under the data folder, and says where.
 */
export const loadOrCreateAdminKey = async (dataDir: string): Promise<{ key: string; file: string; created: boolean }> => {
  const file = path.join(dataDir, 'admin.key');
  if (existsSync(file)) return { key: (await readFile(file, 'utf8')).trim(), file, created: false };
  await mkdir(dataDir, { recursive: true });
  const key = `ls_admin_${randomBytes(24).toString('base64url')}`;
  await writeFile(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return { key, file, created: true };
};
