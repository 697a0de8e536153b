import type { Pool, PoolClient } from 'pg';

/** How often the holder checks the connection that holds its lock. */
const LEASE_CHECK_MS = 5000;

/**
 * Leadership by a PostgreSQL session advisory lock: one holder per name among
 * every process on the database. The lock lives as long as its connection;
 * a connection to a host that died silently lingers until TCP gives up, so
 * the holder checks its own every few seconds and counts the lease lost when
 * it does not answer (`onLost`).
 */
export class AdvisoryLease {
  private client: PoolClient | null = null;
  private lost = false;

  constructor(
    private readonly pool: Pool,
    private readonly name: string,
    private readonly onLost: () => void = () => undefined,
  ) {}

  get held(): boolean {
    return this.client !== null && !this.lost;
  }

  /** Takes the lock if free (true), or keeps it; false while another session holds it. */
  async acquire(): Promise<boolean> {
    if (this.held) return true;
    this.release();
    const client = await this.pool.connect();
    try {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [this.name]);
      if (!rows[0]!.ok) {
        client.release();
        return false;
      }
    } catch (error) {
      client.release(true);
      throw error;
    }
    this.lost = false;
    const lose = () => {
      if (this.client !== client || this.lost) return;
      this.lost = true;
      this.onLost();
    };
    client.on('error', lose);
    this.client = client;
    let pending = false;
    const timer = setInterval(() => {
      if (this.client !== client) return clearInterval(timer);
      if (pending) {
        clearInterval(timer);
        return lose();
      }
      pending = true;
      client.query('SELECT 1').then(
        () => (pending = false),
        () => {
          clearInterval(timer);
          lose();
        },
      );
    }, LEASE_CHECK_MS);
    timer.unref();
    return true;
  }

  /** Gives the lock up: the connection is destroyed, which releases it even when the connection is broken. */
  release(): void {
    const client = this.client;
    this.client = null;
    client?.release(true);
  }
}
