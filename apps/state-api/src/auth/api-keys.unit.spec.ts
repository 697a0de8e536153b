import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiKeyError, ApiKeyRing, loadOrCreateAdminKey } from './api-keys';

describe('ApiKeyRing', () => {
  const ring = ApiKeyRing.parse('game-key-1234:game, admin-key-5678:admin\n# a comment\nother-game-9999:game');

  it('authenticates each key with its role and a stable key id that does not reveal the key', () => {
    const game = ring.authenticate('game-key-1234');
    expect(game?.role).toBe('game');
    expect(game?.keyId).toMatch(/^key-[0-9a-f]{12}$/);
    expect(game?.keyId).not.toContain('game-key');
    expect(ring.authenticate('admin-key-5678')?.role).toBe('admin');
    expect(ring.authenticate('other-game-9999')?.keyId).not.toBe(game?.keyId);
  });

  it('refuses unknown keys, prefixes and near misses', () => {
    expect(ring.authenticate('game-key-123')).toBeNull();
    expect(ring.authenticate('game-key-12345')).toBeNull();
    expect(ring.authenticate('')).toBeNull();
  });

  it('remembers a key it accepted, and never one it refused (the memo holds at most the ring’s keys)', () => {
    const fresh = ApiKeyRing.parse('game-key-1234:game, admin-key-5678:admin');
    const memo = (fresh as unknown as { accepted: Map<string, unknown> }).accepted;
    for (let i = 0; i < 1000; i++) expect(fresh.authenticate(`game-key-1234${i}`)).toBeNull();
    expect(memo.size).toBe(0);
    const first = fresh.authenticate('game-key-1234');
    expect(fresh.authenticate('game-key-1234')).toBe(first);
    expect(fresh.authenticate('admin-key-5678')?.role).toBe('admin');
    expect(fresh.authenticate('admin-key-567')).toBeNull();
    expect([...memo.keys()].sort()).toEqual(['admin-key-5678', 'game-key-1234']);
  });

  it.each([
    ['', 'holds no key'],
    ['justakey', 'key:game or key:admin'],
    ['abcdefgh:root', 'key:game or key:admin'],
    [':admin', 'key:game or key:admin'],
    ['short:admin', 'at least 8 characters'],
  ])('rejects the spec %j', (spec, message) => {
    expect(() => ApiKeyRing.parse(spec)).toThrow(ApiKeyError);
    expect(() => ApiKeyRing.parse(spec)).toThrow(message);
  });
});

describe('loadOrCreateAdminKey', () => {
  it('creates a random admin key once (mode 0600) and reads the same key afterwards', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lorestore-keys-'));
    try {
      const first = await loadOrCreateAdminKey(dir);
      expect(first.created).toBe(true);
      expect(first.key).toMatch(/^ls_admin_[\w-]{32}$/);
      expect((await stat(first.file)).mode & 0o777).toBe(0o600);
      const second = await loadOrCreateAdminKey(dir);
      expect(second).toEqual({ key: first.key, file: first.file, created: false });
      expect((await readFile(first.file, 'utf8')).trim()).toBe(first.key);
      expect(ApiKeyRing.parse(`${first.key}:admin`).authenticate(first.key)?.role).toBe('admin');
    } finally {
      // A real admin key of nothing, but a key all the same: not left in the temp folder.
      await rm(dir, { recursive: true, force: true });
    }
  });
});
