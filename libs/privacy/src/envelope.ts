import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, randomFillSync, type KeyObject } from 'node:crypto';

/**
 * A personal value as it is stored: AES-256-GCM ciphertext under the key of
 * the player(s) it belongs to. `s` names them (pseudonymous ids, sorted);
 * `ct` is the ciphertext with its 16-byte tag appended. The subjects are
 * bound to the ciphertext as associated data, so an envelope cannot be moved
 * to another player.
 */
export type Sealed = { $pii: 1; s: string[]; iv: string; ct: string };

export { ERASED, type Erased } from '@lorestore/domain';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An envelope as lorestore writes them: subjects are player ids (UUIDs), at least one. */
export const isSealed = (value: unknown): value is Sealed =>
  typeof value === 'object' &&
  value !== null &&
  (value as { $pii?: unknown }).$pii === 1 &&
  Array.isArray((value as Sealed).s) &&
  (value as Sealed).s.length > 0 &&
  (value as Sealed).s.every((id) => typeof id === 'string' && UUID.test(id)) &&
  typeof (value as Sealed).iv === 'string' &&
  typeof (value as Sealed).ct === 'string';

export { isErasedValue as isErased } from '@lorestore/domain';

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_BYTES = 32;

const aad = (subjects: readonly string[]) => Buffer.from(`lorestore/pii/v1:${subjects.join(',')}`);

/** The subjects of a value, as the envelope names them: distinct and sorted. */
export const normalizeSubjects = (subjects: readonly string[]): string[] => [...new Set(subjects)].sort();

/**
 * The key a value of these subjects is sealed with: the player's own key for
 * one subject; for several, one derived from all of theirs (HKDF-SHA-256), so
 * destroying any one of their keys makes the value unreadable.
 */
export const subjectKey = (subjects: readonly string[], keyOf: (subject: string) => Buffer): Buffer => {
  if (subjects.length === 1) return keyOf(subjects[0]!);
  const material = Buffer.concat(subjects.map(keyOf));
  return Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), aad(subjects), KEY_BYTES));
};

/**
 * IVs from the CSPRNG, drawn a thousand at a time: one call to it costs more
 * than the whole encryption of a short value. Each IV is used once, at once.
 */
const IV_POOL = 1024;
const ivPool = Buffer.allocUnsafe(IV_BYTES * IV_POOL);
let ivNext = IV_POOL;
const nextIv = (): Buffer => {
  if (ivNext === IV_POOL) {
    randomFillSync(ivPool);
    ivNext = 0;
  }
  return ivPool.subarray(IV_BYTES * ivNext, IV_BYTES * ++ivNext);
};

/** The key as a KeyObject, made once per key buffer (the key store hands out the same buffer for a player). */
const keyObjects = new WeakMap<Buffer, KeyObject>();
export const keyObjectOf = (key: Buffer): KeyObject => {
  let object = keyObjects.get(key);
  if (!object) keyObjects.set(key, (object = createSecretKey(key)));
  return object;
};

/** Seals a JSON value (null included: whether a player gave an email is personal too). */
export const seal = (value: unknown, subjects: readonly string[], key: Buffer): Sealed => {
  const iv = nextIv();
  const cipher = createCipheriv(ALGORITHM, keyObjectOf(key), iv);
  cipher.setAAD(aad(subjects));
  const ct = Buffer.concat([cipher.update(JSON.stringify(value ?? null), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { $pii: 1, s: [...subjects], iv: iv.toString('base64'), ct: ct.toString('base64') };
};

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

/** Opens an envelope with its subjects' key; throws EnvelopeError if the key is not the one it was sealed with, or it was altered. */
export const open = (envelope: Sealed, key: Buffer): unknown => {
  const bytes = Buffer.from(envelope.ct, 'base64');
  const iv = Buffer.from(envelope.iv, 'base64');
  if (iv.length !== IV_BYTES || bytes.length < TAG_BYTES) throw new EnvelopeError('malformed envelope');
  try {
    const decipher = createDecipheriv(ALGORITHM, keyObjectOf(key), iv);
    decipher.setAAD(aad(envelope.s));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    const plain = Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]);
    return JSON.parse(plain.toString('utf8'));
  } catch (error) {
    throw new EnvelopeError(`envelope does not open: ${(error as Error).message}`);
  }
};

/** Every envelope inside a JSON value (depth-first), without copying anything. */
export const findSealed = (value: unknown, found: Sealed[] = []): Sealed[] => {
  if (typeof value !== 'object' || value === null) return found;
  if (isSealed(value)) {
    found.push(value);
    return found;
  }
  if (Array.isArray(value)) for (const item of value) findSealed(item, found);
  else for (const key in value) findSealed((value as Record<string, unknown>)[key], found);
  return found;
};

/** A copy of `value` with each envelope replaced by `replace(envelope)`; `value` itself when it holds none. */
export const replaceSealed = (value: unknown, replace: (envelope: Sealed) => unknown): unknown => {
  if (typeof value !== 'object' || value === null) return value;
  if (isSealed(value)) return replace(value);
  if (Array.isArray(value)) {
    let copy: unknown[] | null = null;
    value.forEach((item, i) => {
      const next = replaceSealed(item, replace);
      if (next !== item) (copy ??= [...value])[i] = next;
    });
    return copy ?? value;
  }
  let copy: Record<string, unknown> | null = null;
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    const next = replaceSealed(item, replace);
    if (next !== item) (copy ??= { ...(value as Record<string, unknown>) })[key] = next;
  }
  return copy ?? value;
};
