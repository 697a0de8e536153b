/**
 * An RFC 9562 version 7 UUID: 48 bits of Unix milliseconds, then 74 bits
 * taken from a hash of `seed`. Ids made this way sort by time, cannot collide
 * between two seeds in the same millisecond (the seed's bits differ, unlike
 * the brief's `npc_timestamp`), and are deterministic: deciding the same
 * command at the same instant gives the same id, so `decide` stays pure.
 */
export const uuidV7 = (unixMs: number, seed: string): string => {
  if (!Number.isSafeInteger(unixMs) || unixMs < 0 || unixMs >= 2 ** 48) throw new RangeError(`uuidV7: ${unixMs} is not a 48-bit Unix time in ms`);
  const bytes = new Uint8Array(16);
  // 4 × 32 bits of the seed's hash (the domain imports nothing, so no node:crypto); bytes 6–15 are used.
  for (let k = 0; k < 4; k++) {
    const h = hash32(seed, k);
    bytes[4 * k] = h >>> 24;
    bytes[4 * k + 1] = (h >>> 16) & 0xff;
    bytes[4 * k + 2] = (h >>> 8) & 0xff;
    bytes[4 * k + 3] = h & 0xff;
  }
  let ms = unixMs;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

/** The Unix milliseconds a version 7 UUID was made at. */
export const uuidV7Time = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16);

/** MurmurHash3's 32-bit mix over the string's UTF-16 units, seeded: four seeds give 128 well-mixed bits. */
const hash32 = (text: string, seed: number): number => {
  let h = (0x9747b28c ^ Math.imul(seed + 1, 0x85ebca6b)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    let k = Math.imul(text.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }
  h ^= text.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};
