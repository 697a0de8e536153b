const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006']);

/**
 * The error says the database could not be reached or went away (server
 * down, restarting, shutting down, network cut): worth a 503 and a retry,
 * not a 500. pg reports these by errno, SQLSTATE class 08 / 57P0x, or only
 * by message.
 */
export const isConnectionError = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused|the database system is (starting up|shutting down|in recovery mode)/.test(message);
};

/** A unique violation (SQLSTATE 23505), of `constraint` when one is named. */
export const isUniqueViolation = (error: unknown, constraint?: string): boolean => {
  const e = error as { code?: unknown; constraint?: unknown } | null;
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
};
