import type { ConnectionOptions } from 'node:tls';
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { MicroBatcher } from '@lorestore/event-store';
import type { Doc, DocTable } from '../projections';
import { hotKey, type HotDoc, type HotStateStore } from './hot-state';

/**
 * The one write path into Redis: apply a document only if its (revision,
 * position) is newer than the stored one, then (re)set the TTL. The position
 * breaks a tie of revisions: an erasure rewrites a player's document without
 * moving its stream, at the erasure's later position. Atomic on the server, so
 * two writers racing (the projector and a reader filling a miss) end with the
 * newer document whatever the order they arrive in.
 * KEYS[1] document key; ARGV: revision, position, updatedAt, state JSON, ttl seconds.
 */
const PUT_IF_NEWER = `
local stored = redis.call('HMGET', KEYS[1], 'revision', 'position')
if stored[1] then
  local rev, inc = tonumber(stored[1]), tonumber(ARGV[1])
  if rev > inc or (rev == inc and tonumber(stored[2] or '0') >= tonumber(ARGV[2])) then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'revision', ARGV[1], 'position', ARGV[2], 'updatedAt', ARGV[3], 'doc', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
`;

/**
 * The same for many documents in one call, on one node (a Cluster spreads
 * documents over slots, so there each goes on its own). KEYS: the documents;
 * ARGV: ttl, then revision, position, updatedAt, state JSON per key.
 */
const PUT_MANY_IF_NEWER = `
local written = 0
for i = 1, #KEYS do
  local at = 1 + (i - 1) * 4
  local stored = redis.call('HMGET', KEYS[i], 'revision', 'position')
  local rev, inc = tonumber(stored[1] or '-1'), tonumber(ARGV[at + 1])
  if not stored[1] or rev < inc or (rev == inc and tonumber(stored[2] or '0') < tonumber(ARGV[at + 2])) then
    redis.call('HSET', KEYS[i], 'revision', ARGV[at + 1], 'position', ARGV[at + 2], 'updatedAt', ARGV[at + 3], 'doc', ARGV[at + 4])
    redis.call('EXPIRE', KEYS[i], ARGV[1])
    written = written + 1
  end
end
return written
`;

/** Documents per call of PUT_MANY_IF_NEWER: long enough to save round trips, short enough not to block the server. */
const PUT_CHUNK = 200;

type Client = (Redis | Cluster) & {
  lorestorePutIfNewer(key: string, revision: string, position: string, updatedAt: string, doc: string, ttl: number): Promise<number>;
  lorestorePutManyIfNewer(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
};

export type RedisHotStateOptions = {
  /** One node: `redis://host:port/db`. */
  url?: string;
  /** A Cluster: seed nodes `host:port`. */
  clusterNodes?: { host: string; port: number }[];
  ttlSeconds: number;
  /** Prepended to every key (after ioredis' keyPrefix rules), so deployments can share a server. */
  keyPrefix?: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** AUTH: an ACL user (Redis 6+) and/or password; for `url`, a user or password written in the URL wins over these. */
  username?: string;
  password?: string;
  /**
   * TLS to every node (a `rediss://` url turns it on by itself): the options of
   * `tls.connect`, e.g. `{ ca }` for a private CA. Certificates are checked
   * against the host names given, which a Cluster keeps instead of resolving
   * them (as managed clusters with TLS need).
   */
  tls?: ConnectionOptions;
};

/**
 * The URL with the user and password of `options` where it has none: ioredis
 * takes the URL's fields first, and a URL with a user but no password would
 * otherwise send an empty one (the URL in a config map, the password in a secret).
 */
const withCredentials = (url: string, options: { username?: string; password?: string }): string => {
  if (options.username === undefined && options.password === undefined) return url;
  const parsed = new URL(url);
  if (!parsed.username && options.username !== undefined) parsed.username = encodeURIComponent(options.username);
  if (!parsed.password && options.password !== undefined) parsed.password = encodeURIComponent(options.password);
  return parsed.toString();
};

const DOC_FIELDS = ['revision', 'position', 'updatedAt', 'doc'] as const;
/**
 * Reads per pipeline; four pipelines' worth may wait behind the one in
 * flight, and a read beyond that fails at once (its caller falls back to
 * PostgreSQL): at 10,000 reads/s that queue means a pipeline out for 100 ms,
 * twice the read timeout (REDIS_READ_TIMEOUT_MS): Redis has stalled.
 */
const READ_BATCH = 256;

type FieldsReply = { fields: (string | null)[] } | { error: Error };

const unwrap = (reply: FieldsReply): (string | null)[] => {
  if ('error' in reply) throw reply.error;
  return reply.fields;
};

/** Hot state in Redis, one node or a Cluster, through ioredis. */
export class RedisHotState implements HotStateStore {
  readonly kind: 'redis' | 'redis-cluster';
  private readonly client: Client;
  private readonly lossListeners: (() => void)[] = [];

  constructor(private readonly options: RedisHotStateOptions) {
    const common: RedisOptions = {
      keyPrefix: options.keyPrefix ?? '',
      connectTimeout: options.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs,
      maxRetriesPerRequest: 2,
      enableAutoPipelining: true,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
    };
    if (options.clusterNodes && options.clusterNodes.length > 0) {
      const clusterOptions: ClusterOptions = {
        redisOptions: common,
        // With TLS, connect to nodes by the names given (certificates name hosts, not addresses).
        ...(options.tls ? { dnsLookup: (address: string, callback: (error: Error | null, address: string) => void) => callback(null, address) } : {}),
        keyPrefix: options.keyPrefix ?? '',
        enableAutoPipelining: true,
        // Reads go to primaries: a replica may be behind, and hot state must not go backwards.
        scaleReads: 'master',
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        slotsRefreshTimeout: options.connectTimeoutMs,
        // Also notice a failover that no command ran into yet.
        slotsRefreshInterval: 2000,
        maxRedirections: 16,
      };
      this.client = new Cluster(options.clusterNodes, clusterOptions) as Client;
      this.kind = 'redis-cluster';
      // A node leaving or joining may be a failover: the promoted replica can miss the last writes.
      this.client.on('-node', () => this.possibleLoss());
      this.client.on('+node', () => this.possibleLoss());
    } else if (options.url) {
      this.client = new Redis(withCredentials(options.url, options), common) as Client;
      this.kind = 'redis';
      // Back after losing the connection: the server may have restarted from an older snapshot,
      // or a failover behind the same address may have lost the last writes.
      let connectedBefore = false;
      this.client.on('ready', () => {
        if (connectedBefore) this.possibleLoss();
        connectedBefore = true;
      });
    } else {
      throw new Error('RedisHotState needs a url or cluster nodes');
    }
    // Without a listener, ioredis prints every connection error; the health check and the callers report
    // them, with the last one (a refused password or certificate is only ever said here).
    this.client.on('error', (error: Error & { lastNodeError?: Error }) => {
      // A Cluster's "Failed to refresh slots cache." carries the node's own answer (NOAUTH, a certificate error).
      this.lastError = error.lastNodeError ? `${error.message} ${error.lastNodeError.message}` : error.message;
    });
    this.client.on('ready', () => (this.lastError = null));
    this.reads =
      this.kind === 'redis'
        ? new MicroBatcher((keys) => this.readMany(keys), { maxConcurrentBatches: 1, maxBatchSize: READ_BATCH, maxQueued: 4 * READ_BATCH, isolateFailures: false }, (size) => {
            this.groupReads.batches++;
            this.groupReads.reads += size;
          })
        : null;
    this.client.defineCommand('lorestorePutIfNewer', { numberOfKeys: 1, lua: PUT_IF_NEWER });
    this.client.defineCommand('lorestorePutManyIfNewer', { lua: PUT_MANY_IF_NEWER });
  }

  private lossTimer: NodeJS.Timeout | null = null;
  private lastError: string | null = null;

  private possibleLoss(): void {
    // Topology events come in bursts: resync at the first one (the sooner lost writes are
    // back, the shorter readers see older revisions), and once more after the burst.
    if (!this.lossTimer) for (const listener of this.lossListeners) listener();
    else clearTimeout(this.lossTimer);
    this.lossTimer = setTimeout(() => {
      this.lossTimer = null;
      for (const listener of this.lossListeners) listener();
    }, 500);
    this.lossTimer.unref();
  }

  onPossibleLoss(listener: () => void): void {
    this.lossListeners.push(listener);
  }

  /**
   * A Cluster that no node of answers (down, or refusing our AUTH or TLS) keeps
   * commands queued until it is back, without end: then this rejects after the
   * command timeout, so callers fall back or retry instead of hanging. One node
   * is bounded by ioredis itself (maxRetriesPerRequest, commandTimeout).
   */
  private async bounded<T>(operation: () => Promise<T>): Promise<T> {
    if (this.kind !== 'redis-cluster') return operation();
    const ms = this.options.commandTimeoutMs;
    const why = () => `${this.client.status}${this.lastError ? `; last error: ${this.lastError}` : ''}`;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis Cluster did not answer within ${ms} ms (${why()})`)), ms);
    });
    try {
      // Not connected: wait here, not in ioredis' queue, which while no node answers only grows (a
      // command a read) and is sent all at once when one does.
      if (this.client.status !== 'ready') await Promise.race([this.whenReady(), timeout]);
      return await Promise.race([operation(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private readyWait: Promise<void> | null = null;

  /** The next 'ready' of the Cluster client, one listener for every waiter. */
  private whenReady(): Promise<void> {
    return (this.readyWait ??= new Promise<void>((resolve) =>
      this.client.once('ready', () => {
        this.readyWait = null;
        resolve();
      }),
    ));
  }

  async get(table: DocTable, worldId: string, id: string, generation = 1): Promise<HotDoc | null> {
    const key = hotKey(table, worldId, id, generation);
    // Not connected: no group reads (they would queue behind a batch that cannot end); ioredis
    // answers each read as it did before group reads (its offline queue, its retries).
    const [revision, position, updatedAt, doc] =
      this.reads && this.client.status === 'ready'
        ? unwrap(await this.reads.submit(key))
      : await this.bounded(() => this.client.hmget(key, ...DOC_FIELDS)).catch((error: unknown) => this.redirected(error));
    if (revision === null || position === null || updatedAt === null || doc === null) return null;
    return { revision: BigInt(revision), position: BigInt(position), updatedAt, state: JSON.parse(doc) };
  }

  async put(docs: readonly Doc[]): Promise<void> {
    if (this.kind === 'redis') return this.putChunks(docs);
    // Auto-pipelining sends these as one round trip per node.
    await this.bounded(() =>
      Promise.all(
        docs.map((d) =>
          this.client.lorestorePutIfNewer(
            hotKey(d.table, d.worldId, d.id, d.generation),
            d.revision.toString(),
            d.position.toString(),
            d.updatedAt,
            JSON.stringify(d.state),
            this.options.ttlSeconds,
          ),
        ),
      ),
    ).catch((error: unknown) => this.redirected(error));
  }

  /** One node: PUT_MANY_IF_NEWER over chunks of documents, all chunks in one pipelined round trip. */
  private async putChunks(docs: readonly Doc[]): Promise<void> {
    const calls: Promise<number>[] = [];
    for (let i = 0; i < docs.length; i += PUT_CHUNK) {
      const chunk = docs.slice(i, i + PUT_CHUNK);
      const args: (string | number)[] = chunk.map((d) => hotKey(d.table, d.worldId, d.id, d.generation));
      args.push(this.options.ttlSeconds);
      for (const d of chunk) args.push(d.revision.toString(), d.position.toString(), d.updatedAt, JSON.stringify(d.state));
      calls.push(this.client.lorestorePutManyIfNewer(chunk.length, ...args));
    }
    await Promise.all(calls);
  }

  /**
   * ioredis follows MOVED/ASK inside an auto-pipeline only when every reply of
   * the pipeline carries the same one; a pipeline over several slots hands the
   * errors back and leaves the slot map stale. Refresh it, so the caller's
   * retry goes to the new owner (found by the Cluster failover test).
   */
  private redirected(error: unknown): never {
    if (this.client instanceof Cluster && /^(MOVED|ASK) /.test((error as Error).message)) this.client.refreshSlotsCache();
    throw error;
  }

  async ping(): Promise<void> {
    if (this.client instanceof Cluster) {
      const info = await this.bounded(() => this.client.cluster('INFO'));
      if (!String(info).includes('cluster_state:ok')) throw new Error('Redis Cluster state is not ok');
      return;
    }
    await this.client.ping();
  }

  /** The raw client, for tests and benchmarks that inspect keys. */
  get raw(): Redis | Cluster {
    return this.client;
  }

  /**
   * One node, connected: reads go out as group reads (the MicroBatcher of group commit):
   * one in flight, and the reads that arrive meanwhile wait for it and go
   * out together as one pipeline. ioredis' auto-pipelining sends one write
   * per turn of the event loop, and under load an HTTP server reads about
   * one request per turn: a write and a reply read per GET, the largest
   * part of a hot read's CPU after the HTTP response itself. A Cluster keeps
   * auto-pipelining (it pipelines per node, and follows redirections).
   */
  private readonly reads: MicroBatcher<string, FieldsReply> | null;
  /** One node: reads answered, and the pipelines they went out in. */
  readonly groupReads = { batches: 0, reads: 0 };

  private async readMany(keys: string[]): Promise<FieldsReply[]> {
    const pipeline = this.client.pipeline();
    for (const key of keys) pipeline.hmget(key, ...DOC_FIELDS);
    const replies = (await pipeline.exec()) ?? [];
    return keys.map((_, i) => {
      const [error, fields] = replies[i] ?? [new Error('no reply in the pipeline'), null];
      return error ? { error } : { fields: fields as (string | null)[] };
    });
  }

  async close(): Promise<void> {
    // Reads need no drain: the waiting ones fail (their callers fall back to PostgreSQL), those in
    // flight end with their pipeline.
    this.reads?.abandon(new Error('hot state closed'));
    if (this.lossTimer) clearTimeout(this.lossTimer);
    // Not connected: nothing to say goodbye to (QUIT would wait in the queue); stop reconnecting.
    if (this.client.status !== 'ready') return this.client.disconnect();
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
