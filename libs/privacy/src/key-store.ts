import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Client, type ClientConfig, type Pool } from 'pg';
import { loadMigrations, migrate } from '@lorestore/infra';
import { KEY_BYTES } from './envelope';
import { MasterKeyError, type KeyWrapper } from './master-key';

export const PRIVACY_MIGRATIONS_DIR = path.join(__dirname, 'postgres', 'migrations');
export const migratePrivacy = async (pool: Pool, schema: string): Promise<string[]> => migrate(pool, schema, await loadMigrations(PRIVACY_MIGRATIONS_DIR));

/** The channel every process listens on to drop an erased player's key from its cache at once. */
export const ERASED_CHANNEL = 'lorestore_player_erased';

export type Erasure = { playerId: string; erasedAt: Date; reason: string; erasedBy: string | null; position: bigint | null };

export type PlayerKeyStoreOptions = {
  pool: Pool;
  wrapper: KeyWrapper;
  /** Keys kept unwrapped in memory (least recently used out first). Default 100,000 (about 10 MB). */
  cacheSize?: number;
  /**
   * How long a live key is trusted from the cache. Erasure tells every process
   * at once (NOTIFY); this bounds the time a process that missed the notice
   * (its listening connection was down) keeps using a destroyed key. Default 60 s.
   */
  ttlMs?: number;
  now?: () => number;
  logger?: { warn(msg: string): void };
};

type Queued = { create: boolean; waiters: { resolve: (key: Buffer | null | undefined) => void; reject: (error: unknown) => void }[] };

/** Key statements in flight at once, and players per statement. */
const MAX_FLUSHES = 2;
const FLUSH_MAX = 1000;

type Row = { player_id: string; wrapped_key: Buffer | null; wrapped_by: string; erased_at: Date | null };
type Entry = { key: Buffer | null; expiresAt: number };

/**
 * The players' data keys in PostgreSQL, wrapped by the master key (or a
 * KMS), unwrapped into a bounded cache. A key is committed (synchronous
 * commit) before anything sealed with it is appended. `null` means erased.
 */
export class PlayerKeyStore {
  private readonly cache = new Map<string, Entry>();
  private readonly queued = new Map<string, Queued>();
  /**
   * Bumped for a player each time this process is told of their erasure: a
   * read that started before must not put the destroyed key back in the cache.
   */
  private readonly epochs = new Map<string, number>();
  private flushes = 0;
  private listener: Client | null = null;
  private listening = false;
  private retry: NodeJS.Timeout | null = null;

  constructor(private readonly options: PlayerKeyStoreOptions) {}

  private now(): number {
    return this.options.now ? this.options.now() : Date.now();
  }

  /** The keys of these players if every one is in the cache (the command path's common case, without a promise); else null. */
  cached(playerIds: readonly string[]): Map<string, Buffer | null> | null {
    const now = this.now();
    const found = new Map<string, Buffer | null>();
    for (const id of playerIds) {
      const entry = this.fresh(id, now);
      if (!entry) return null;
      found.set(id, entry.key);
    }
    return found;
  }

  private fresh(playerId: string, now: number): Entry | undefined {
    const entry = this.cache.get(playerId);
    return entry && entry.expiresAt > now ? entry : undefined;
  }

  /**
   * The keys of these players: a Buffer, `null` for an erased player, absent
   * for a player who has none (with `create`, one is made and stored first).
   */
  async keys(playerIds: readonly string[], options: { create: boolean }): Promise<Map<string, Buffer | null>> {
    const found = new Map<string, Buffer | null>();
    const missing: string[] = [];
    const now = this.now();
    for (const id of new Set(playerIds)) {
      const entry = this.fresh(id, now);
      if (entry) found.set(id, entry.key);
      else missing.push(id);
    }
    // Every key not in the cache goes through one queue: at most MAX_FLUSHES statements at a time,
    // each for every player asked for since the last one (up to FLUSH_MAX), so a burst of new players
    // costs a few commits, not one each (the same idea as the event store's group commit).
    await Promise.all(
      missing.map(async (id) => {
        const key = await this.request(id, options.create);
        if (key !== undefined) found.set(id, key);
      }),
    );
    return found;
  }

  private request(id: string, create: boolean): Promise<Buffer | null | undefined> {
    return new Promise((resolve, reject) => {
      const entry = this.queued.get(id);
      if (entry) {
        entry.create ||= create;
        entry.waiters.push({ resolve, reject });
      } else {
        this.queued.set(id, { create, waiters: [{ resolve, reject }] });
      }
      this.kick();
    });
  }

  private kick(): void {
    while (this.flushes < MAX_FLUSHES && this.queued.size > 0) {
      const batch: [string, Queued][] = [];
      for (const [id, entry] of this.queued) {
        batch.push([id, entry]);
        this.queued.delete(id);
        if (batch.length === FLUSH_MAX) break;
      }
      this.flushes++;
      void this.flush(batch).finally(() => {
        this.flushes--;
        this.kick();
      });
    }
  }

  private async flush(batch: [string, Queued][]): Promise<void> {
    const creates = batch.filter(([, e]) => e.create).map(([id]) => id);
    const reads = batch.filter(([, e]) => !e.create).map(([id]) => id);
    try {
      const none = new Map<string, Buffer | null | Error>();
      const [made, read] = await Promise.all([creates.length ? this.fetch(creates, true) : none, reads.length ? this.fetch(reads, false) : none]);
      for (const [id, entry] of batch) {
        const key = made.has(id) ? made.get(id) : read.get(id);
        // A key that does not unwrap fails its own callers only, not the others of the batch.
        for (const waiter of entry.waiters) if (key instanceof Error) waiter.reject(key);
        else waiter.resolve(key);
      }
    } catch (error) {
      for (const [, entry] of batch) for (const waiter of entry.waiters) waiter.reject(error);
    }
  }

  private async fetch(ids: string[], create: boolean): Promise<Map<string, Buffer | null | Error>> {
    const epochs = new Map(ids.map((id) => [id, this.epochs.get(id) ?? 0]));
    let rows: Row[];
    if (create) {
      const wrapped = await Promise.all(ids.map(() => this.options.wrapper.wrap(randomBytes(KEY_BYTES))));
      // Named: prepared once per connection. Only the insert: a player whose key exists (made by another
      // process, or before this one started) is read back by primary key after, never by a scan.
      ({ rows } = await this.options.pool.query<Row>({
        name: 'lorestore-player-keys-create',
        text: `INSERT INTO player_keys (player_id, wrapped_key, wrapped_by)
               SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[])
               ON CONFLICT (player_id) DO NOTHING
               RETURNING player_id::text, wrapped_key, wrapped_by, erased_at`,
        values: [ids, wrapped, ids.map(() => this.options.wrapper.id)],
      }));
      if (rows.length < ids.length) {
        const made = new Set(rows.map((r) => r.player_id));
        rows = rows.concat(await this.select(ids.filter((id) => !made.has(id))));
      }
    } else {
      rows = await this.select(ids);
    }
    const keys = new Map<string, Buffer | null | Error>();
    for (const row of rows) {
      let key: Buffer | null;
      try {
        key = row.wrapped_key === null ? null : await this.unwrap(row);
      } catch (error) {
        keys.set(row.player_id, error as Error);
        continue;
      }
      keys.set(row.player_id, key);
      // Told of an erasure while this read was out: the answer stands for this caller, the cache keeps the erasure.
      if ((this.epochs.get(row.player_id) ?? 0) === epochs.get(row.player_id)) this.remember(row.player_id, key);
    }
    return keys;
  }

  private async select(ids: string[]): Promise<Row[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.options.pool.query<Row>({
      name: 'lorestore-player-keys-read',
      text: 'SELECT player_id::text, wrapped_key, wrapped_by, erased_at FROM player_keys WHERE player_id = ANY ($1::uuid[])',
      values: [ids],
    });
    return rows;
  }

  private async unwrap(row: Row): Promise<Buffer> {
    if (row.wrapped_by !== this.options.wrapper.id) {
      // Never "erased": a wrong master key must fail loudly, not make every player look forgotten.
      throw new MasterKeyError(
        `player ${row.player_id}'s key was wrapped by ${row.wrapped_by}, but this process has ${this.options.wrapper.id}: is LORESTORE_MASTER_KEY the one this database was written with?`,
      );
    }
    try {
      return await this.options.wrapper.unwrap(row.wrapped_key!);
    } catch (error) {
      throw new MasterKeyError(`player ${row.player_id}'s key does not unwrap with ${this.options.wrapper.id}: ${(error as Error).message}`);
    }
  }

  private remember(playerId: string, key: Buffer | null): void {
    this.cache.delete(playerId);
    // An erasure is for ever: an erased player is never read again.
    this.cache.set(playerId, { key, expiresAt: key === null ? Infinity : this.now() + (this.options.ttlMs ?? 60_000) });
    const max = this.options.cacheSize ?? 100_000;
    while (this.cache.size > max) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** Drops a player's key from this process's cache (told of an erasure); reads already out do not bring it back. */
  forget(playerId: string): void {
    this.epochs.set(playerId, (this.epochs.get(playerId) ?? 0) + 1);
    this.cache.delete(playerId);
  }

  /** Whether lorestore ever made a key for this player (erased or not). */
  async has(playerId: string): Promise<boolean> {
    const { rows } = await this.options.pool.query('SELECT 1 FROM player_keys WHERE player_id = $1', [playerId]);
    return rows.length > 0;
  }

  async erasure(playerId: string): Promise<Erasure | null> {
    const { rows } = await this.options.pool.query<{ erased_at: Date | null; erase_reason: string | null; erased_by: string | null; erase_position: string | null }>(
      'SELECT erased_at, erase_reason, erased_by, erase_position FROM player_keys WHERE player_id = $1',
      [playerId],
    );
    const row = rows[0];
    if (!row?.erased_at) return null;
    return {
      playerId,
      erasedAt: row.erased_at,
      reason: row.erase_reason ?? '',
      erasedBy: row.erased_by,
      position: row.erase_position === null ? null : BigInt(row.erase_position),
    };
  }

  /**
   * Destroys the player's key (a tombstone row stays, also for a player who
   * never had one) and tells every process. `fresh` is false when the player
   * was erased before: then the first erasure is returned and nothing changes.
   */
  async erase(playerId: string, reason: string, erasedBy: string | null): Promise<{ erasure: Erasure; fresh: boolean }> {
    const { rows } = await this.options.pool.query<{ erased_at: Date; fresh: boolean }>(
      `WITH erased AS (
         INSERT INTO player_keys AS k (player_id, wrapped_key, wrapped_by, erased_at, erase_reason, erased_by)
         VALUES ($1, NULL, $4, now(), $2, $3)
         ON CONFLICT (player_id) DO UPDATE
           SET wrapped_key = NULL, erased_at = now(), erase_reason = excluded.erase_reason, erased_by = excluded.erased_by
           WHERE k.erased_at IS NULL
         RETURNING erased_at),
       told AS (SELECT pg_notify($5, $1::text) FROM erased)
       SELECT erased_at, true AS fresh FROM erased, (SELECT count(*) FROM told) t`,
      [playerId, reason, erasedBy, this.options.wrapper.id, ERASED_CHANNEL],
    );
    this.forget(playerId);
    this.remember(playerId, null);
    if (rows[0]) return { erasure: { playerId, erasedAt: rows[0].erased_at, reason, erasedBy, position: null }, fresh: true };
    const before = await this.erasure(playerId);
    if (!before) throw new Error(`player ${playerId}: erasure neither made nor found`);
    return { erasure: before, fresh: false };
  }

  /** Erasures whose audit event was never appended (the process died between the two steps), older than `olderThanMs`. */
  async unfinishedErasures(olderThanMs: number, limit = 100): Promise<Erasure[]> {
    const { rows } = await this.options.pool.query<{ player_id: string; erased_at: Date; erase_reason: string | null; erased_by: string | null }>(
      `SELECT player_id::text, erased_at, erase_reason, erased_by FROM player_keys
        WHERE erased_at IS NOT NULL AND erase_position IS NULL AND erased_at < now() - make_interval(secs => $1::float / 1000)
        ORDER BY erased_at LIMIT $2`,
      [olderThanMs, limit],
    );
    return rows.map((r) => ({ playerId: r.player_id, erasedAt: r.erased_at, reason: r.erase_reason ?? '', erasedBy: r.erased_by, position: null }));
  }

  async recordErasePosition(playerId: string, position: bigint): Promise<void> {
    await this.options.pool.query('UPDATE player_keys SET erase_position = $2 WHERE player_id = $1 AND erase_position IS NULL', [playerId, position.toString()]);
  }

  /** Listens for erasures made by other processes; reconnects in the background if the connection drops. */
  async listen(): Promise<void> {
    this.listening = true;
    await this.connectListener();
  }

  private async connectListener(): Promise<void> {
    if (!this.listening) return;
    // A connection of its own, outside the pool: it is held for as long as the process runs.
    const client = new Client((this.options.pool as unknown as { options: ClientConfig }).options);
    try {
      client.on('notification', (message) => {
        if (message.channel === ERASED_CHANNEL && message.payload) this.forget(message.payload);
      });
      client.on('error', () => this.dropListener(client));
      await client.connect();
      await client.query(`LISTEN ${ERASED_CHANNEL}`);
      if (!this.listening) {
        await client.end();
        return;
      }
      this.listener = client;
      // Erasures made while this process was not listening: cached live keys are read again.
      for (const entry of this.cache.values()) if (entry.key !== null) entry.expiresAt = 0;
    } catch (error) {
      await client.end().catch(() => undefined);
      this.options.logger?.warn(`privacy: cannot listen for erasures (${(error as Error).message}); cached keys expire within ${this.options.ttlMs ?? 60_000} ms meanwhile`);
      this.scheduleReconnect();
    }
  }

  private dropListener(client: Client): void {
    if (this.listener !== client) return;
    this.listener = null;
    void client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.listening || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.connectListener();
    }, 1000);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.listening = false;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    const client = this.listener;
    this.listener = null;
    await client?.end().catch(() => undefined);
    this.cache.clear();
  }
}
