import { z } from 'zod';
import { isoTime } from '../http/validate';
import type { ReadStreamOptions } from '@lorestore/event-store';

const nonNegative = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** `atRevision` | `atPosition` | `asOf` (at most one) and `minPosition`, accepted by every query. */
export const pointInTimeShape = {
  atRevision: nonNegative.optional(),
  atPosition: nonNegative.optional(),
  asOf: isoTime
    // A second of grace for clocks that differ a little.
    .refine((t) => Date.parse(t) <= Date.now() + 1000, 'is in the future')
    .optional(),
  minPosition: nonNegative.optional(),
};

export type PointInTime = {
  atRevision?: number;
  atPosition?: number;
  asOf?: string;
  /**
   * Set by the controller, not the client: after waiting for a consistency
   * token, the primary's WAL position a read replica must have replayed to
   * answer this read (read-your-writes). Absent: any replica in rotation may.
   */
  fence?: bigint;
};

/** A query about the past: answered by folding the log, not from the read models. */
export const isPointInTime = (q: PointInTime) => q.atRevision !== undefined || q.atPosition !== undefined || q.asOf !== undefined;

export const atMostOnePointInTime = (q: PointInTime) =>
  [q.atRevision, q.atPosition, q.asOf].filter((v) => v !== undefined).length <= 1;
export const ONE_POINT_MESSAGE = { message: 'give at most one of atRevision, atPosition, asOf', path: ['atRevision'] };

export const toUntil = (q: PointInTime): ReadStreamOptions['until'] => ({
  ...(q.atRevision !== undefined ? { revision: BigInt(q.atRevision) } : {}),
  ...(q.atPosition !== undefined ? { position: BigInt(q.atPosition) } : {}),
  ...(q.asOf !== undefined ? { time: new Date(q.asOf) } : {}),
});
