import { endianness } from 'node:os';

/** Vectors as the memory index keeps them: float32, unit length, little-endian bytes in PostgreSQL. */

export class InvalidEmbeddingError extends Error {
  override readonly name = 'InvalidEmbeddingError';
}

/**
 * Checks an embedding against the deployment's dimension and scales it to unit
 * length (cosine similarity is then a dot product). Refuses a wrong length,
 * NaN or ±Infinity, and the zero vector (it has no direction).
 */
export const unitVector = (embedding: readonly number[] | Float32Array, dimension: number): Float32Array => {
  if (embedding.length !== dimension) throw new InvalidEmbeddingError(`embedding has ${embedding.length} dimensions; this deployment uses ${dimension} (VECTOR_DIMENSION)`);
  let norm = 0;
  for (let i = 0; i < embedding.length; i++) {
    const v = embedding[i]!;
    if (!Number.isFinite(v)) throw new InvalidEmbeddingError(`embedding[${i}] is ${v}, not a finite number`);
    norm += v * v;
  }
  if (!(norm > 0) || !Number.isFinite(norm)) throw new InvalidEmbeddingError('embedding has no direction (all zeros) or overflows');
  const scale = 1 / Math.sqrt(norm);
  const out = new Float32Array(embedding.length);
  for (let i = 0; i < embedding.length; i++) out[i] = embedding[i]! * scale;
  return out;
};

const LITTLE_ENDIAN = endianness() === 'LE';

export const vectorToBytes = (vector: Float32Array): Buffer => {
  if (LITTLE_ENDIAN) return Buffer.from(new Float32Array(vector).buffer);
  const out = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) out.writeFloatLE(vector[i]!, i * 4);
  return out;
};

export const bytesToVector = (bytes: Buffer): Float32Array => {
  const out = new Float32Array(bytes.length / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
  else for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
};

export const dot = (a: Float32Array, b: Float32Array, offsetB = 0): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[offsetB + i]!;
  return s;
};
