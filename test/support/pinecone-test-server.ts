import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A TEST DOUBLE of Pinecone's data-plane HTTP routes, held in memory. It is
 * not a vector database: queries are a brute-force cosine scan over every
 * record of a namespace, and nothing is persisted. It exists so the Pinecone
 * adapter can be tested with the real `@pinecone-database/pinecone` client
 * (8.2.x) without network access:
 *
 *   const server = await startPineconeTestServer({ dimension: 3 });
 *   const index = new Pinecone({ apiKey: 'test' }).index({ host: server.host });
 *
 * Routes, with the client method that calls each (paths, methods, JSON field
 * names and the `Api-Key` header as the client's generated code sends them):
 *   POST   /vectors/upsert              index.upsert
 *   POST   /query                       index.query
 *   POST   /vectors/delete              index.deleteOne / deleteMany / deleteAll
 *   GET    /vectors/fetch?ids=&ids=&namespace=                 index.fetch
 *   POST   /vectors/fetch_by_metadata   index.fetchByMetadata
 *   POST   /vectors/update              index.update
 *   GET    /vectors/list?prefix=&limit=&paginationToken=&namespace=  index.listPaginated
 *   POST   /describe_index_stats        index.describeIndexStats (GET answered too)
 *   GET    /namespaces?prefix=&limit=&paginationToken=         index.listNamespaces
 *   POST   /namespaces                  index.createNamespace
 *   GET    /namespaces/{namespace}      index.describeNamespace
 *   DELETE /namespaces/{namespace}      index.deleteNamespace
 *
 * Errors are Pinecone's gRPC-gateway JSON, `{"code":3,"message":"…","details":[]}`;
 * the client reads only `message` from it and picks its error class from the
 * HTTP status. The index behaves as a serverless, dense, cosine index.
 * Modelled limits: 1000 records and 2 MB per upsert, 40960 bytes of metadata
 * per record, the index dimension (fixed by `options.dimension`, else by the
 * first accepted upsert), topK 1..10000 (1..1000 when values or metadata are
 * included). Where the real service's behaviour is an assumption rather than
 * documented, the code says so.
 */

export type PineconeTestServer = {
  host: string;
  close(): Promise<void>;
  /** namespace -> number of records */
  counts(): Record<string, number>;
  /** every request seen: method, path, body size in bytes, record count for upserts */
  requests: { method: string; path: string; bytes: number; records?: number }[];
  /** the next `n` requests (optionally only those whose path includes `pathPart`) answer with this HTTP status (429 or 503, etc.) and a Pinecone-shaped error JSON body */
  failNext(n: number, status: number, pathPart?: string): void;
  /** forget everything */
  reset(): void;
};

type MetadataValue = string | number | boolean | string[];
type Metadata = Record<string, MetadataValue>;
type StoredRecord = { id: string; values: number[]; metadata?: Metadata };
type Json = Record<string, unknown>;
type Namespace = Map<string, StoredRecord>;
type Predicate = (metadata: Metadata | undefined) => boolean;

/** The namespace the client targets when none is given (v8 sends the literal name). */
const DEFAULT_NAMESPACE = '__default__';
const MAX_UPSERT_RECORDS = 1000;
const MAX_REQUEST_BYTES = 2 * 1024 * 1024;
const MAX_METADATA_BYTES = 40_960;
const MAX_ID_LENGTH = 512;
const MAX_TOP_K = 10_000;
const MAX_TOP_K_WITH_DATA = 1000;
const MAX_IDS_PER_REQUEST = 1000;
const MAX_IN_VALUES = 10_000;
const DEFAULT_PAGE_SIZE = 100;

/** HTTP status -> google.rpc.Code, as Pinecone's gateway reports it in `code`. */
const GRPC_CODE: Record<number, number> = { 400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4 };

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
const badRequest = (message: string) => new HttpError(400, message);

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const isScalar = (value: unknown): value is string | number | boolean =>
  typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));

const normalizeNamespace = (value: unknown): string => {
  if (value === undefined || value === null || value === '') return DEFAULT_NAMESPACE;
  if (typeof value !== 'string') throw badRequest('namespace must be a string');
  return value;
};

// ---------------------------------------------------------------- metadata filters

const COMPARISONS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists']);

/**
 * Compiles Pinecone's metadata filter language to a predicate, rejecting
 * malformed filters up front (a 400 even when the namespace is empty).
 * A string-list field matches `$eq`/`$in` when any element does, and
 * `$ne`/`$nin` when none does. A missing field matches `$ne` and `$nin`
 * (assumed MongoDB-like, as Pinecone's docs describe the operators).
 */
const compileFilter = (filter: unknown): Predicate => {
  if (!isObject(filter)) throw badRequest('filter must be an object');
  const parts: Predicate[] = [];
  for (const [key, operand] of Object.entries(filter)) {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(operand) || operand.length === 0) throw badRequest(`${key} needs a non-empty array of filters`);
      const children = operand.map(compileFilter);
      parts.push(key === '$and' ? (m) => children.every((c) => c(m)) : (m) => children.some((c) => c(m)));
    } else if (key.startsWith('$')) {
      throw badRequest(`unknown top-level operator ${key} in filter`);
    } else if (isObject(operand)) {
      const ops = Object.entries(operand);
      if (ops.length === 0) throw badRequest(`filter for field ${key} is empty`);
      for (const [op, value] of ops) parts.push(compileComparison(key, op, value));
    } else if (isScalar(operand)) {
      parts.push(compileComparison(key, '$eq', operand));
    } else {
      throw badRequest(`invalid filter value for field ${key}: expected a string, number, boolean or operator object`);
    }
  }
  return (m) => parts.every((p) => p(m));
};

const compileComparison = (field: string, op: string, operand: unknown): Predicate => {
  if (!COMPARISONS.has(op)) throw badRequest(`unknown operator ${op} for field ${field}`);
  const read = (m: Metadata | undefined) => m?.[field];
  switch (op) {
    case '$eq':
    case '$ne': {
      if (!isScalar(operand)) throw badRequest(`${op} for field ${field} needs a string, number or boolean`);
      const eq = (v: MetadataValue | undefined) => (Array.isArray(v) ? v.includes(operand as string) : v === operand);
      return op === '$eq' ? (m) => eq(read(m)) : (m) => !eq(read(m));
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      if (typeof operand !== 'number' || !Number.isFinite(operand)) throw badRequest(`${op} for field ${field} needs a number`);
      const cmp = { $gt: (v: number) => v > operand, $gte: (v: number) => v >= operand, $lt: (v: number) => v < operand, $lte: (v: number) => v <= operand }[op];
      return (m) => {
        const v = read(m);
        return typeof v === 'number' && cmp(v);
      };
    }
    case '$in':
    case '$nin': {
      if (!Array.isArray(operand) || !operand.every(isScalar)) throw badRequest(`${op} for field ${field} needs an array of strings, numbers or booleans`);
      if (operand.length > MAX_IN_VALUES) throw badRequest(`${op} for field ${field} has more than ${MAX_IN_VALUES} values`);
      const set = new Set<unknown>(operand);
      const any = (v: MetadataValue | undefined) => (Array.isArray(v) ? v.some((e) => set.has(e)) : v !== undefined && set.has(v));
      return op === '$in' ? (m) => any(read(m)) : (m) => !any(read(m));
    }
    default: {
      if (typeof operand !== 'boolean') throw badRequest(`$exists for field ${field} needs a boolean`);
      return (m) => (read(m) !== undefined) === operand;
    }
  }
};

const optionalFilter = (filter: unknown): Predicate => (filter === undefined || filter === null ? () => true : compileFilter(filter));

// ---------------------------------------------------------------- records

const validateMetadata = (id: string, metadata: unknown): Metadata | undefined => {
  if (metadata === undefined || metadata === null) return undefined;
  if (!isObject(metadata)) throw badRequest(`Metadata of record ${id} must be an object`);
  for (const [key, value] of Object.entries(metadata)) {
    const ok = isScalar(value) || (Array.isArray(value) && value.every((e) => typeof e === 'string'));
    if (!ok) throw badRequest(`Metadata value must be a string, number, boolean or list of strings, got '${JSON.stringify(value)}' for field '${key}'`);
  }
  const size = Buffer.byteLength(JSON.stringify(metadata));
  // Wording as the real service answers it.
  if (size > MAX_METADATA_BYTES) throw badRequest(`Metadata size is ${size} bytes, which exceeds the limit of ${MAX_METADATA_BYTES} bytes per vector`);
  return metadata as Metadata;
};

const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a: number[], b: number[]) => {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot / (norm(a) * norm(b));
};

/** Opaque to clients, like Pinecone's: base64 of the last id (or name) returned. */
const encodeToken = (after: string) => Buffer.from(JSON.stringify({ after })).toString('base64url');
const decodeToken = (token: string | null | undefined): string | undefined => {
  if (!token) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (isObject(parsed) && typeof parsed.after === 'string') return parsed.after;
  } catch {
    // fall through
  }
  throw badRequest('invalid pagination token');
};

const parseLimit = (raw: unknown, fallback: number): number => {
  if (raw === undefined || raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw badRequest(`limit must be a positive integer, got ${String(raw)}`);
  return n;
};

/** Bitwise ("C") order, as Pinecone sorts listed ids and namespaces. */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

const page = (sortedKeys: string[], prefix: string, limit: number, token: string | null | undefined) => {
  const after = decodeToken(token);
  const matching = sortedKeys.filter((k) => k.startsWith(prefix) && (after === undefined || byteOrder(k, after) > 0));
  const items = matching.slice(0, limit);
  const next = matching.length > limit ? encodeToken(items[items.length - 1]) : undefined;
  return { items, pagination: next ? { next } : undefined };
};

// ---------------------------------------------------------------- server

export async function startPineconeTestServer(options: { dimension?: number } = {}): Promise<PineconeTestServer> {
  const namespaces = new Map<string, Namespace>();
  const requests: PineconeTestServer['requests'] = [];
  let failures: { remaining: number; status: number; pathPart?: string }[] = [];
  /** Set by options, else by the first accepted upsert: a real index has exactly one. */
  let dimension: number | undefined = options.dimension;

  const checkDimension = (length: number) => {
    // Wording as the real service answers it.
    if (dimension !== undefined && length !== dimension) throw badRequest(`Vector dimension ${length} does not match the dimension of the index ${dimension}`);
  };

  const checkValues = (id: string, values: unknown): number[] => {
    if (values === undefined || values === null) values = [];
    if (!Array.isArray(values) || !values.every((x) => typeof x === 'number' && Number.isFinite(x))) throw badRequest(`values of record ${id} must be an array of finite numbers`);
    checkDimension(values.length);
    if (values.length === 0) throw badRequest(`Dense vector of record ${id} must contain values`);
    if (values.every((x) => x === 0)) throw badRequest('Dense vectors must contain at least one non-zero value.');
    return values as number[];
  };

  const namespaceOf = (name: string, create: boolean): Namespace | undefined => {
    let ns = namespaces.get(name);
    if (!ns && create) namespaces.set(name, (ns = new Map()));
    return ns;
  };

  const toWire = (r: StoredRecord, withValues = true, withMetadata = true) => ({
    id: r.id,
    values: withValues ? r.values : [],
    ...(withMetadata && r.metadata ? { metadata: r.metadata } : {}),
  });

  const routes: Record<string, (body: Json, query: URLSearchParams, param?: string) => unknown> = {
    'POST /vectors/upsert': (body) => {
      if (!Array.isArray(body.vectors)) throw badRequest('vectors must be an array');
      if (body.vectors.length === 0) throw badRequest('vectors must not be empty');
      if (body.vectors.length > MAX_UPSERT_RECORDS)
        throw badRequest(`Batch size of ${body.vectors.length} vectors exceeds the maximum of ${MAX_UPSERT_RECORDS} vectors per upsert request`);
      const name = normalizeNamespace(body.namespace);
      const accepted: StoredRecord[] = [];
      for (const raw of body.vectors as unknown[]) {
        if (!isObject(raw)) throw badRequest('each vector must be an object');
        const id = raw.id;
        if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) throw badRequest(`vector id must be a string of 1 to ${MAX_ID_LENGTH} characters`);
        if (raw.sparseValues !== undefined && raw.sparseValues !== null) throw badRequest('Sparse vectors are not supported for indexes with the cosine metric (this test double is dense, cosine)');
        const values = checkValues(id, raw.values);
        const metadata = validateMetadata(id, raw.metadata);
        accepted.push({ id, values: [...values], ...(metadata ? { metadata: structuredClone(metadata) } : {}) });
      }
      // All or nothing: the request was validated before any write.
      dimension ??= accepted[0].values.length;
      const ns = namespaceOf(name, true)!;
      for (const r of accepted) ns.set(r.id, r);
      return { upsertedCount: accepted.length };
    },

    'POST /query': (body) => {
      const topK = body.topK;
      if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K) throw badRequest(`topK must be an integer between 1 and ${MAX_TOP_K}, got ${String(topK)}`);
      const includeValues = body.includeValues === true;
      const includeMetadata = body.includeMetadata === true;
      if ((includeValues || includeMetadata) && topK > MAX_TOP_K_WITH_DATA)
        throw badRequest(`topK must be at most ${MAX_TOP_K_WITH_DATA} when includeValues or includeMetadata is true, got ${topK}`);
      if (body.queries !== undefined) throw badRequest('the deprecated `queries` field is not supported');
      if (body.sparseVector !== undefined) throw badRequest('sparse queries are not supported by a dense, cosine index');
      const hasVector = body.vector !== undefined && body.vector !== null;
      const hasId = body.id !== undefined && body.id !== null;
      if (hasVector === hasId) throw badRequest('exactly one of `vector` and `id` must be given');
      const predicate = optionalFilter(body.filter);
      const name = normalizeNamespace(body.namespace);
      const ns = namespaceOf(name, false);
      let vector: number[] | undefined;
      if (hasVector) {
        if (!Array.isArray(body.vector) || !body.vector.every((x) => typeof x === 'number' && Number.isFinite(x))) throw badRequest('vector must be an array of finite numbers');
        vector = body.vector as number[];
        checkDimension(vector.length);
      } else {
        if (typeof body.id !== 'string') throw badRequest('id must be a string');
        vector = ns?.get(body.id)?.values; // an unknown id matches nothing
      }
      const target = vector;
      const matches =
        target && ns && norm(target) > 0
          ? [...ns.values()]
              .filter((r) => predicate(r.metadata))
              .map((r) => ({ r, score: cosine(target, r.values) }))
              .sort((a, b) => b.score - a.score || byteOrder(a.r.id, b.r.id))
              .slice(0, topK)
              .map(({ r, score }) => ({ ...toWire(r, includeValues, includeMetadata), score }))
          : [];
      return { matches, namespace: name, usage: { readUnits: 1 } };
    },

    'POST /vectors/delete': (body) => {
      const name = normalizeNamespace(body.namespace);
      const modes = [body.deleteAll === true, body.ids !== undefined, body.filter !== undefined].filter(Boolean).length;
      if (modes !== 1) throw badRequest('exactly one of `ids`, `filter` and `deleteAll` must be given');
      // Assumed from reports against serverless indexes: deleting in a namespace that does not exist is a 404.
      const ns = namespaceOf(name, false);
      if (!ns) throw new HttpError(404, 'Namespace not found');
      if (body.deleteAll === true) {
        ns.clear(); // the (empty) namespace remains until deleteNamespace
      } else if (body.ids !== undefined) {
        if (!Array.isArray(body.ids) || body.ids.length === 0 || !body.ids.every((x) => typeof x === 'string')) throw badRequest('ids must be a non-empty array of strings');
        if (body.ids.length > MAX_IDS_PER_REQUEST) throw badRequest(`at most ${MAX_IDS_PER_REQUEST} ids per delete request`);
        for (const id of body.ids as string[]) ns.delete(id);
      } else {
        const predicate = compileFilter(body.filter);
        for (const [id, r] of ns) if (predicate(r.metadata)) ns.delete(id);
      }
      return {};
    },

    'GET /vectors/fetch': (_body, query) => {
      const ids = query.getAll('ids');
      if (ids.length === 0) throw badRequest('ids must be given');
      if (ids.length > MAX_IDS_PER_REQUEST) throw badRequest(`at most ${MAX_IDS_PER_REQUEST} ids per fetch request`);
      const name = normalizeNamespace(query.get('namespace'));
      const ns = namespaceOf(name, false);
      const vectors: Record<string, unknown> = {};
      for (const id of ids) {
        const r = ns?.get(id);
        if (r) vectors[id] = toWire(r);
      }
      return { vectors, namespace: name, usage: { readUnits: Math.max(1, Math.ceil(Object.keys(vectors).length / 10)) } };
    },

    'POST /vectors/fetch_by_metadata': (body) => {
      const predicate = compileFilter(body.filter);
      const name = normalizeNamespace(body.namespace);
      const ns = namespaceOf(name, false);
      const limit = parseLimit(body.limit, DEFAULT_PAGE_SIZE);
      const ids = ns ? [...ns.values()].filter((r) => predicate(r.metadata)).map((r) => r.id).sort(byteOrder) : [];
      const { items, pagination } = page(ids, '', limit, body.paginationToken as string | undefined);
      const vectors = Object.fromEntries(items.map((id) => [id, toWire(ns!.get(id)!)]));
      return { vectors, namespace: name, usage: { readUnits: 1 }, ...(pagination ? { pagination } : {}) };
    },

    'POST /vectors/update': (body) => {
      const name = normalizeNamespace(body.namespace);
      const byId = body.id !== undefined && body.id !== null;
      const byFilter = body.filter !== undefined && body.filter !== null;
      if (byId === byFilter) throw badRequest('exactly one of `id` and `filter` must be given');
      if (byFilter && body.values !== undefined) throw badRequest('values cannot be updated by filter');
      const setMetadata = validateMetadata(String(body.id ?? 'matched by filter'), body.setMetadata);
      const values = body.values === undefined ? undefined : checkValues(String(body.id), body.values);
      const ns = namespaceOf(name, false);
      const targets = !ns ? [] : byId ? [ns.get(String(body.id))].filter((r): r is StoredRecord => r !== undefined) : [...ns.values()].filter((r) => compileFilter(body.filter)(r.metadata));
      if (body.dryRun !== true) {
        for (const r of targets) {
          if (values) r.values = [...values];
          if (setMetadata) r.metadata = { ...r.metadata, ...structuredClone(setMetadata) };
        }
      }
      return { matchedRecords: targets.length };
    },

    'GET /vectors/list': (_body, query) => {
      const name = normalizeNamespace(query.get('namespace'));
      const ns = namespaceOf(name, false);
      const limit = parseLimit(query.get('limit'), DEFAULT_PAGE_SIZE);
      const { items, pagination } = page(ns ? [...ns.keys()].sort(byteOrder) : [], query.get('prefix') ?? '', limit, query.get('paginationToken'));
      return { vectors: items.map((id) => ({ id })), namespace: name, usage: { readUnits: 1 }, ...(pagination ? { pagination } : {}) };
    },

    'POST /describe_index_stats': (body) => {
      // Serverless indexes refuse a filter here; the client passes one through if given.
      if (body.filter !== undefined && body.filter !== null) throw badRequest('Serverless and starter indexes do not support describing index stats with metadata filtering.');
      const stats = Object.fromEntries([...namespaces].map(([name, ns]) => [name, { vectorCount: ns.size }]));
      const total = Object.values(stats).reduce((s, n) => s + n.vectorCount, 0);
      return { namespaces: stats, ...(dimension !== undefined ? { dimension } : {}), indexFullness: 0, totalVectorCount: total, metric: 'cosine', vectorType: 'dense' };
    },

    'GET /namespaces': (_body, query) => {
      const prefix = query.get('prefix') ?? '';
      const names = [...namespaces.keys()].sort(byteOrder);
      const limit = parseLimit(query.get('limit'), DEFAULT_PAGE_SIZE);
      const { items, pagination } = page(names, prefix, limit, query.get('paginationToken'));
      return {
        namespaces: items.map((name) => ({ name, record_count: namespaces.get(name)!.size })),
        ...(pagination ? { pagination } : {}),
        total_count: names.filter((n) => n.startsWith(prefix)).length,
      };
    },

    'POST /namespaces': (body) => {
      if (typeof body.name !== 'string' || body.name.length === 0) throw badRequest('name must be a non-empty string');
      if (namespaces.has(body.name)) throw new HttpError(409, `Namespace ${body.name} already exists`);
      namespaces.set(body.name, new Map());
      return { name: body.name, record_count: 0 };
    },

    'GET /namespaces/{namespace}': (_body, _query, name) => {
      const ns = namespaces.get(name!);
      if (!ns) throw new HttpError(404, `Namespace ${name} not found`);
      return { name, record_count: ns.size };
    },

    'DELETE /namespaces/{namespace}': (_body, _query, name) => {
      if (!namespaces.delete(name!)) throw new HttpError(404, `Namespace ${name} not found`);
      return {};
    },
  };
  routes['GET /describe_index_stats'] = (_body, query) => routes['POST /describe_index_stats']({}, query);

  const send = (res: ServerResponse, status: number, payload: unknown) => {
    const text = JSON.stringify(payload);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const sendError = (res: ServerResponse, status: number, message: string) => send(res, status, { code: GRPC_CODE[status] ?? 2, message, details: [] });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const seen: PineconeTestServer['requests'][number] = { method, path: url.pathname, bytes: raw.length };
    requests.push(seen);

    let body: Json = {};
    let malformed: string | undefined;
    if (raw.length > 0) {
      try {
        const parsed: unknown = JSON.parse(raw.toString('utf8'));
        if (isObject(parsed)) body = parsed;
        else malformed = 'request body must be a JSON object';
      } catch (error) {
        malformed = `malformed JSON body: ${(error as Error).message}`;
      }
    }
    if (method === 'POST' && url.pathname === '/vectors/upsert' && Array.isArray(body.vectors)) seen.records = body.vectors.length;

    const apiKey = req.headers['api-key'];
    if (typeof apiKey !== 'string' || apiKey.length === 0) return sendError(res, 401, 'Unauthorized: the Api-Key header is missing');

    const failure = failures.find((f) => f.remaining > 0 && (f.pathPart === undefined || url.pathname.includes(f.pathPart)));
    if (failure) {
      failure.remaining--;
      failures = failures.filter((f) => f.remaining > 0);
      const reason = failure.status === 429 ? 'Too many requests: rate limit exceeded' : `HTTP ${failure.status}`;
      return sendError(res, failure.status, `${reason} (injected by the Pinecone test server)`);
    }

    let route = routes[`${method} ${url.pathname}`];
    let param: string | undefined;
    const nsMatch = /^\/namespaces\/([^/]+)$/.exec(url.pathname);
    if (!route && nsMatch) {
      route = routes[`${method} /namespaces/{namespace}`];
      param = decodeURIComponent(nsMatch[1]);
    }
    if (!route) return sendError(res, 404, `Not Found: ${method} ${url.pathname}`);
    if (method === 'POST' && url.pathname === '/vectors/upsert' && raw.length > MAX_REQUEST_BYTES) {
      // Wording as the real service answers it.
      return sendError(res, 400, `Request size ${Math.round(raw.length / (1024 * 1024))}MB exceeds the maximum supported size of 2MB`);
    }
    if (malformed) return sendError(res, 400, malformed);
    try {
      send(res, 200, route(body, url.searchParams, param));
    } catch (error) {
      if (error instanceof HttpError) return sendError(res, error.status, error.message);
      throw error;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, `test server bug: ${error instanceof Error ? error.message : String(error)}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    host: `http://127.0.0.1:${port}`,
    requests,
    counts: () => Object.fromEntries([...namespaces].map(([name, ns]) => [name, ns.size])),
    failNext: (n, status, pathPart) => {
      if (!Number.isInteger(n) || n < 1) throw new Error(`failNext: n must be a positive integer, got ${n}`);
      if (!Number.isInteger(status) || status < 400 || status > 599) throw new Error(`failNext: status must be 4xx or 5xx, got ${status}`);
      failures.push({ remaining: n, status, pathPart });
    },
    reset: () => {
      namespaces.clear();
      requests.length = 0;
      failures = [];
      dimension = options.dimension;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections(); // the client's fetch keeps connections alive
      }),
  };
}
