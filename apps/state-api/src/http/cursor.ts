import { validationProblem } from './problem';

/** A page cursor as clients see it: opaque base64url. */
export const encodeCursor = (c: string | null): string | null => (c === null ? null : Buffer.from(c).toString('base64url'));

/**
 * The cursor a client sent back, decoded, or a 400 naming `cursor` when it
 * is not one this service could have issued (`issued` says what those look
 * like): nothing the client made up reaches a query.
 */
export const decodeCursor = (c: string | undefined, issued: (decoded: string) => boolean): string | undefined => {
  if (c === undefined) return undefined;
  const decoded = Buffer.from(c, 'base64url').toString('utf8');
  if (!issued(decoded)) throw validationProblem([{ path: 'cursor', message: 'not a cursor this service issued' }]);
  return decoded;
};
