import type { ProblemBody } from './types';

/** Exit codes: 0 ok; 1 the server or the operation failed; 2 the request was wrong or refused. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Something the user can fix on the command line (bad value, missing key, declined confirmation). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly hints: string[] = [],
  ) {
    super(message);
  }
}

/** The operation ran and failed (a failed rebuild job, …). */
export class OperationFailedError extends Error {
  override readonly name = 'OperationFailedError';
  constructor(
    message: string,
    readonly hints: string[] = [],
  ) {
    super(message);
  }
}

/** The server answered with an error status; `problem` is its problem+json body (or one made from a non-JSON answer). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** Lines a command adds to explain this error in its context (printed after the field errors). */
  details: string[] = [];
  hints: string[] = [];
  constructor(
    readonly method: string,
    readonly url: string,
    readonly problem: ProblemBody,
  ) {
    super(`${problem.title} (${problem.status}): ${problem.detail}`);
  }

  get status(): number {
    return this.problem.status;
  }

  /** Whether the problem's type is `urn:lorestore:problem:<slug>`. */
  is(slug: string): boolean {
    return this.problem.type === `urn:lorestore:problem:${slug}`;
  }
}

/** No HTTP answer at all: connection refused, DNS, timeout, TLS. */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
  hints: string[] = [];
  constructor(
    readonly baseUrl: string,
    readonly reason: string,
  ) {
    super(`cannot reach ${baseUrl}: ${reason}`);
  }
}

export const isApiError = (error: unknown, slug?: string): error is ApiError => error instanceof ApiError && (slug === undefined || error.is(slug));

/** 5xx and network failures may succeed when sent again; 4xx will not. */
export const isTransient = (error: unknown): boolean => error instanceof NetworkError || (error instanceof ApiError && error.status >= 500);

export const exitCodeOf = (error: unknown): number => {
  if (error instanceof UsageError) return EXIT_USAGE;
  if (error instanceof ApiError) return error.status >= 400 && error.status < 500 ? EXIT_USAGE : EXIT_FAILURE;
  return EXIT_FAILURE;
};

const statusHints: Record<number, string> = {
  401: 'check LORESTORE_API_KEY (or --api-key): the server does not know this key',
  403: 'this key is not an admin key: admin commands need a key with role admin',
};

/** What to print on stderr for an error, one string per line. */
export const describeError = (error: unknown): string[] => {
  if (error instanceof ApiError) {
    const p = error.problem;
    const lines = [`error: ${p.title} (${p.status}): ${p.detail}`];
    for (const e of p.errors ?? []) lines.push(`  ${e.path || '(body)'}: ${e.message}`);
    lines.push(...error.details);
    const hint = statusHints[p.status];
    if (hint) lines.push(hint);
    lines.push(...error.hints);
    return lines;
  }
  if (error instanceof UsageError || error instanceof OperationFailedError) return [`error: ${error.message}`, ...error.hints];
  if (error instanceof NetworkError) return [`error: ${error.message}`, ...error.hints];
  // Our own bug: say so with the stack, it is what a report needs.
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return [`error: unexpected failure in the lorestore CLI: ${text}`];
};
