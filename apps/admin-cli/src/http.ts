import { ApiError, NetworkError } from './errors';
import type { ProblemBody } from './types';

export type Query = Record<string, string | number | boolean | undefined>;

export type ApiClientOptions = {
  /** e.g. http://127.0.0.1:3000 (a path prefix is kept). */
  baseUrl: string;
  apiKey: string;
  /** Per request; the API answers in milliseconds, a hung connection should not hang the CLI. */
  timeoutMs?: number;
};

/** Encodes one path segment (ids are slugs and UUIDs, but a typo must not change the route). */
export const seg = (value: string | number): string => encodeURIComponent(String(value));

/** Node's fetch hides the reason in `cause` (ECONNREFUSED, ENOTFOUND, …). */
const reasonOf = (error: unknown): string => {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'no answer in time';
  const cause = (error as { cause?: { code?: string; message?: string } } | null)?.cause;
  if (cause?.code && cause.message) return cause.message.includes(cause.code) ? cause.message : `${cause.code} (${cause.message})`;
  if (cause?.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
};

const problemFrom = (status: number, statusText: string, text: string, parsed: unknown): ProblemBody => {
  const p = parsed as Partial<ProblemBody> | undefined;
  if (p && typeof p === 'object' && typeof p.title === 'string') {
    return { ...p, type: p.type ?? 'about:blank', title: p.title, status: typeof p.status === 'number' ? p.status : status, detail: p.detail ?? '' } as ProblemBody;
  }
  // Not a problem document (a proxy's error page, …): keep what it said, briefly.
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return { type: 'about:blank', title: statusText || 'HTTP error', status, detail: snippet || 'no details in the answer' };
};

/**
 * The admin API over HTTP with the global fetch: one Bearer key, JSON in and
 * out, problem+json turned into ApiError and transport failures into
 * NetworkError. The only way the CLI touches lorestore.
 */
export class ApiClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(private readonly options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  get<T>(path: string, query: Query = {}): Promise<T> {
    return this.send<T>('GET', path, query);
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.send<T>('POST', path, {}, body);
  }

  private async send<T>(method: 'GET' | 'POST', path: string, query: Query, body?: unknown): Promise<T> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const url = `${this.baseUrl}${path}${params.size > 0 ? `?${params}` : ''}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.options.apiKey}`,
          accept: 'application/json, application/problem+json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw new NetworkError(this.baseUrl, reasonOf(error));
    }
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) throw new ApiError(method, url, problemFrom(response.status, response.statusText, text, parsed));
    if (parsed === undefined && text.length > 0) {
      throw new ApiError(method, url, { type: 'about:blank', title: 'Not JSON', status: 502, detail: `${method} ${path} answered ${response.status} with a body that is not JSON; is ${this.baseUrl} a lorestore server?` });
    }
    return parsed as T;
  }
}
