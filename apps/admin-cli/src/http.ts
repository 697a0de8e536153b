import { Readable } from 'node:stream';
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

  /**
   * A GET whose JSON answer is streamed instead of read whole (a player's
   * export can be large): resolves once a 2xx answer's headers are in, with
   * its body as a byte stream. Error answers and transport failures throw as
   * for get(); a body that breaks off errors the stream with a NetworkError.
   * The timeout covers the wait for the headers, then each pause between
   * chunks of the body (not the whole transfer).
   */
  async download(path: string, query: Query = {}): Promise<Readable> {
    const url = this.urlFor(path, query);
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => abort.abort(new DOMException('no answer in time', 'TimeoutError')), this.timeoutMs);
    };
    arm();
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'GET',
        headers: { authorization: `Bearer ${this.options.apiKey}`, accept: 'application/json, application/problem+json' },
        signal: abort.signal,
      });
      if (!response.ok || !/json/i.test(response.headers.get('content-type') ?? '')) {
        const text = await response.text();
        clearTimeout(timer);
        if (!response.ok) throw this.failure('GET', url, response, text);
        throw new ApiError('GET', url, { type: 'about:blank', title: 'Not JSON', status: 502, detail: `GET ${path} answered ${response.status} with a body that is not JSON; is ${this.baseUrl} a lorestore server?` });
      }
    } catch (error) {
      clearTimeout(timer);
      if (error instanceof ApiError) throw error;
      throw new NetworkError(this.baseUrl, reasonOf(error));
    }
    if (!response.body) return Readable.from([]);
    const reader = response.body.getReader();
    const baseUrl = this.baseUrl;
    let done = false;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (;;) {
        arm();
        let next: Awaited<ReturnType<typeof reader.read>>;
        try {
          next = await reader.read();
        } catch (error) {
          throw new NetworkError(baseUrl, `the answer broke off: ${reasonOf(error)}`);
        } finally {
          // Not while the destination takes its time with a chunk: only the server's pauses count.
          clearTimeout(timer);
        }
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
      }
    }
    const stream = Readable.from(chunks(), { objectMode: false });
    // Destroyed before the end (the destination failed, or was never opened): drop the connection instead of leaving it open.
    stream.once('close', () => {
      clearTimeout(timer);
      if (!done) reader.cancel().catch(() => undefined);
    });
    return stream;
  }

  private urlFor(path: string, query: Query): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    return `${this.baseUrl}${path}${params.size > 0 ? `?${params}` : ''}`;
  }

  /** An error answer as an ApiError (its problem+json, or one made from whatever it said). */
  private failure(method: string, url: string, response: Response, text: string): ApiError {
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return new ApiError(method, url, problemFrom(response.status, response.statusText, text, parsed));
  }

  private async send<T>(method: 'GET' | 'POST', path: string, query: Query, body?: unknown): Promise<T> {
    const url = this.urlFor(path, query);
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
    if (!response.ok) throw this.failure(method, url, response, text);
    if (parsed === undefined && text.length > 0) {
      throw new ApiError(method, url, { type: 'about:blank', title: 'Not JSON', status: 502, detail: `${method} ${path} answered ${response.status} with a body that is not JSON; is ${this.baseUrl} a lorestore server?` });
    }
    return parsed as T;
  }
}
