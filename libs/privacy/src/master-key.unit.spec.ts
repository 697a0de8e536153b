import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { LocalKeyWrapper, MASTER_KEY_FILE, MasterKeyError, loadOrCreateMasterKeyFile, parseMasterKey } from './master-key';

const RUNS = { numRuns: 100 };
const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes));

const expectMasterKeyError = (action: () => unknown) => {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(MasterKeyError);
};

describe('parseMasterKey', () => {
  it('accepts 32 bytes as base64 (with and without =), base64url and hex (either case), around whitespace', () => {
    fc.assert(
      fc.property(key32, (key) => {
        const base64 = key.toString('base64');
        expect(base64).toHaveLength(44);
        expect(parseMasterKey(base64).equals(key)).toBe(true);
        expect(parseMasterKey(base64.replace(/=+$/, '')).equals(key)).toBe(true);
        expect(parseMasterKey(key.toString('base64url')).equals(key)).toBe(true);
        expect(parseMasterKey(key.toString('hex')).equals(key)).toBe(true);
        expect(parseMasterKey(key.toString('hex').toUpperCase()).equals(key)).toBe(true);
        expect(parseMasterKey(`  ${base64}\n`).equals(key)).toBe(true);
      }),
      RUNS,
    );
  });

  it('a key with both base64url characters (- and _) decodes to the bytes they stand for', () => {
    // 0xfb 0xff… is '+/…' in base64, '-_…' in base64url.
    const key = Buffer.alloc(32, 0xfb);
    key[1] = 0xff;
    key[2] = 0xbf;
    const url = key.toString('base64url');
    expect(url).toMatch(/[-_]/);
    expect(parseMasterKey(url).equals(key)).toBe(true);
  });

  it('refuses 16 or 33 bytes, 31/33-byte hex, and garbage', () => {
    const refused = [
      randomBytes(16).toString('base64'),
      randomBytes(16).toString('hex'),
      randomBytes(33).toString('base64'),
      randomBytes(33).toString('base64url'),
      randomBytes(33).toString('hex'),
      randomBytes(31).toString('hex'),
      randomBytes(31).toString('base64'),
      '',
      '   ',
      'not a key',
      'openssl rand -base64 32',
      `${randomBytes(32).toString('base64').slice(0, 42)}!=`,
      `${randomBytes(32).toString('base64')}=`,
      `${randomBytes(32).toString('hex').slice(0, 63)}g`,
      `${randomBytes(32).toString('base64').slice(0, 20)} ${randomBytes(32).toString('base64').slice(0, 23)}`,
    ];
    for (const text of refused) expectMasterKeyError(() => parseMasterKey(text));
    expect(() => parseMasterKey('x')).toThrow(/32 random bytes/);
  });
});

describe('LocalKeyWrapper', () => {
  it('wraps and unwraps a data key; the wrapped form is iv ‖ ciphertext ‖ tag, never the key itself, and random', async () => {
    await fc.assert(
      fc.asyncProperty(key32, key32, async (master, dataKey) => {
        const wrapper = new LocalKeyWrapper(master);
        const wrapped = await wrapper.wrap(dataKey);
        expect(wrapped).toHaveLength(12 + 32 + 16);
        expect(wrapped.includes(dataKey)).toBe(false);
        expect((await wrapper.unwrap(wrapped)).equals(dataKey)).toBe(true);
        const again = await wrapper.wrap(dataKey);
        expect(again.equals(wrapped)).toBe(false);
        expect((await wrapper.unwrap(again)).equals(dataKey)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('its id is a fingerprint of the master key: stable for one key, different for another, never the key', () => {
    fc.assert(
      fc.property(key32, key32, (one, two) => {
        fc.pre(!one.equals(two));
        const a = new LocalKeyWrapper(one);
        expect(a.id).toMatch(/^local:[0-9a-f]{16}$/);
        expect(new LocalKeyWrapper(Buffer.from(one)).id).toBe(a.id);
        expect(new LocalKeyWrapper(two).id).not.toBe(a.id);
        expect(a.id).not.toContain(one.toString('hex').slice(0, 16));
      }),
      RUNS,
    );
  });

  it('a key wrapped under one master key does not unwrap under another; an altered one does not unwrap either', async () => {
    const one = new LocalKeyWrapper(randomBytes(32));
    const two = new LocalKeyWrapper(randomBytes(32));
    const dataKey = randomBytes(32);
    const wrapped = await one.wrap(dataKey);
    await expect(two.unwrap(wrapped)).rejects.toThrow();
    for (const at of [0, 12, 43, wrapped.length - 1]) {
      const altered = Buffer.from(wrapped);
      altered[at] ^= 0x01;
      await expect(one.unwrap(altered)).rejects.toThrow();
    }
    expect((await one.unwrap(wrapped)).equals(dataKey)).toBe(true);
  });

  it('refuses a master key that is not 32 bytes', () => {
    for (const size of [0, 16, 31, 33, 64]) expectMasterKeyError(() => new LocalKeyWrapper(randomBytes(size)));
  });
});

describe('loadOrCreateMasterKeyFile', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'lorestore-master-key-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates <dir>/master.key (mode 0600, parseable base64) the first time and returns the same key after', async () => {
    const dir = path.join(root, 'data', 'nested');
    const first = await loadOrCreateMasterKeyFile(dir);
    expect(first.created).toBe(true);
    expect(first.file).toBe(path.join(dir, MASTER_KEY_FILE));
    expect(first.key).toHaveLength(32);
    expect((await stat(first.file)).mode & 0o777).toBe(0o600);
    const text = await readFile(first.file, 'utf8');
    expect(parseMasterKey(text).equals(first.key)).toBe(true);

    const second = await loadOrCreateMasterKeyFile(dir);
    expect(second.created).toBe(false);
    expect(second.file).toBe(first.file);
    expect(second.key.equals(first.key)).toBe(true);
    // Read, not rewritten.
    expect(await readFile(first.file, 'utf8')).toBe(text);
    expect(new LocalKeyWrapper(second.key).id).toBe(new LocalKeyWrapper(first.key).id);
  });

  it('uses a key file that is already there (hex too), and fails loudly on a corrupt one instead of replacing it', async () => {
    const key = randomBytes(32);
    await writeFile(path.join(root, MASTER_KEY_FILE), `${key.toString('hex')}\n`);
    const loaded = await loadOrCreateMasterKeyFile(root);
    expect(loaded).toMatchObject({ created: false });
    expect(loaded.key.equals(key)).toBe(true);

    await writeFile(path.join(root, MASTER_KEY_FILE), 'garbage\n');
    await expect(loadOrCreateMasterKeyFile(root)).rejects.toBeInstanceOf(MasterKeyError);
    expect(await readFile(path.join(root, MASTER_KEY_FILE), 'utf8')).toBe('garbage\n');
  });

  it('callers starting together on an empty folder all get one key, made once', async () => {
    for (let round = 0; round < 20; round++) {
      const dir = path.join(root, `together-${round}`);
      const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateMasterKeyFile(dir)));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      for (const r of results) expect(r.key.equals(results[0]!.key)).toBe(true);
      expect(parseMasterKey(await readFile(path.join(dir, MASTER_KEY_FILE), 'utf8')).equals(results[0]!.key)).toBe(true);
    }
  });
});
