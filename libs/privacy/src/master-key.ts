import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KEY_BYTES } from './envelope';

/**
 * What wraps the players' data keys for storage. The local implementation
 * holds a master key in memory; a KMS (AWS KMS, GCP KMS, Vault transit)
 * implements the same three members, so the key store never sees the master
 * key itself. `id` is stored beside each wrapped key so a key written under
 * one master key is never unwrapped with another.
 */
export interface KeyWrapper {
  readonly id: string;
  wrap(dataKey: Buffer): Promise<Buffer>;
  unwrap(wrapped: Buffer): Promise<Buffer>;
}

export class MasterKeyError extends Error {
  override readonly name = 'MasterKeyError';
}

/** AES-256-GCM key wrapping under a 32-byte master key: iv (12) ‖ ciphertext (32) ‖ tag (16). */
export class LocalKeyWrapper implements KeyWrapper {
  readonly id: string;

  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length !== KEY_BYTES) throw new MasterKeyError(`the master key must be ${KEY_BYTES} bytes, got ${masterKey.length}`);
    // A fingerprint, not the key: which master key wrapped a stored key.
    this.id = `local:${createHash('sha256').update('lorestore/master-key-id').update(masterKey).digest('hex').slice(0, 16)}`;
  }

  async wrap(dataKey: Buffer): Promise<Buffer> {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey, iv);
    cipher.setAAD(Buffer.from('lorestore/player-key/v1'));
    return Buffer.concat([iv, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
  }

  async unwrap(wrapped: Buffer): Promise<Buffer> {
    const decipher = createDecipheriv('aes-256-gcm', this.masterKey, wrapped.subarray(0, 12));
    decipher.setAAD(Buffer.from('lorestore/player-key/v1'));
    decipher.setAuthTag(wrapped.subarray(wrapped.length - 16));
    return Buffer.concat([decipher.update(wrapped.subarray(12, wrapped.length - 16)), decipher.final()]);
  }
}

/** LORESTORE_MASTER_KEY: 32 bytes as base64 (44 characters) or hex (64). */
export const parseMasterKey = (text: string): Buffer => {
  const trimmed = text.trim();
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) key = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== KEY_BYTES) {
    throw new MasterKeyError(`LORESTORE_MASTER_KEY must be ${KEY_BYTES} random bytes as base64 or hex (make one with: openssl rand -base64 32)`);
  }
  return key;
};

export const MASTER_KEY_FILE = 'master.key';

/**
 * The embedded default's master key: read from `<dataDir>/master.key`, made
 * (and written with mode 0600) the first time. Every process of one machine
 * sharing the data folder uses the same key.
 */
export const loadOrCreateMasterKeyFile = async (dataDir: string): Promise<{ key: Buffer; file: string; created: boolean }> => {
  const file = path.join(dataDir, MASTER_KEY_FILE);
  try {
    return { key: parseMasterKey(await readFile(file, 'utf8')), file, created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(KEY_BYTES);
  // Written whole under a name of its own, then linked into place: link fails if the file exists, so two
  // processes starting together agree on one key, and neither ever reads a half-written file.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temp, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await chmod(temp, 0o600);
    await link(temp, file);
    return { key, file, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { key: parseMasterKey(await readFile(file, 'utf8')), file, created: false };
  } finally {
    await unlink(temp).catch(() => undefined);
  }
};
