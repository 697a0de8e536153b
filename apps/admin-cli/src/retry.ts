import { isTransient } from './errors';
import { err } from './io';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Sends an idempotent request again after a network failure or a 5xx (the
 * same body, so the same operationId: the server applies it at most once).
 * 4xx answers are final.
 */
export const withRetries = async <T>(send: () => Promise<T>, what: string, attempts = 4): Promise<T> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      if (!isTransient(error) || attempt >= attempts) throw error;
      const delay = 500 * 2 ** (attempt - 1);
      err(`note: ${what} failed (${error instanceof Error ? error.message : String(error)}); sending it again in ${delay} ms`);
      await sleep(delay);
    }
  }
};
