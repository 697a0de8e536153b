import type { Pool } from 'pg';
import { withTransaction } from '@lorestore/infra';
import { analyzeSchema } from '../support/database';
import { log } from '../support/env';
import type { GameTraffic, GeneratedCommand } from './traffic';

export type PrefillResult = { events: number; commands: number; streams: number; transactions: number; ms: number; megabytes: number };

/**
 * Writes `events` events of game traffic into a migrated lorestore schema as
 * `append_batch` would leave them — per transaction the stream heads (inserted
 * or moved on, with their last writer), the commands rows and the events in
 * order (positions, the writing transaction, created_at from the column
 * defaults) — but set-based,
 * `perTransaction` events at a time, instead of one group-commit batch of
 * at most 256 appends at a time: the same rows, in seconds instead of a minute.
 */
export const prefillEventStore = async (pool: Pool, schema: string, traffic: GameTraffic, events: number, perTransaction = 2000): Promise<PrefillResult> => {
  const started = performance.now();
  let written = 0;
  let commands = 0;
  let transactions = 0;
  let bytes = 0;
  let lastLog = started;
  while (written < events) {
    const chunk: GeneratedCommand[] = [];
    let inChunk = 0;
    while (inChunk < perTransaction && written + inChunk < events) {
      const command = traffic.next();
      if (!command) continue;
      chunk.push(command);
      inChunk += command.events.length;
    }
    const heads = new Map<string, { revision: bigint; world: string; category: string }>();
    const ev = { stream: [] as string[], revision: [] as string[], id: [] as string[], type: [] as string[], v: [] as number[], data: [] as string[], metadata: [] as string[] };
    const cmd = { id: [] as string[], hash: [] as string[], stream: [] as string[], first: [] as string[], last: [] as string[] };
    for (const c of chunk) {
      const first = c.expected + 1n;
      const last = c.expected + BigInt(c.events.length);
      heads.set(c.streamId, { revision: last, world: c.worldId, category: c.category });
      cmd.id.push(c.commandId);
      cmd.hash.push(c.commandHash);
      cmd.stream.push(c.streamId);
      cmd.first.push(first.toString());
      cmd.last.push(last.toString());
      c.events.forEach((e, k) => {
        const data = JSON.stringify(e.data);
        const metadata = JSON.stringify(e.metadata);
        bytes += data.length + metadata.length;
        ev.stream.push(c.streamId);
        ev.revision.push((first + BigInt(k)).toString());
        ev.id.push(e.id);
        ev.type.push(e.type);
        ev.v.push(e.schemaVersion);
        ev.data.push(data);
        ev.metadata.push(metadata);
      });
    }
    await withTransaction(pool, async (client) => {
      await client.query(
        `INSERT INTO streams (stream_id, revision, world_id, category, last_tx)
         SELECT s, r, w, c, pg_current_xact_id() FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) AS h(s, r, w, c)
         ON CONFLICT (stream_id) DO UPDATE SET revision = excluded.revision, last_tx = excluded.last_tx, updated_at = now()`,
        [[...heads.keys()], [...heads.values()].map((h) => h.revision.toString()), [...heads.values()].map((h) => h.world), [...heads.values()].map((h) => h.category)],
      );
      await client.query(
        `INSERT INTO commands (command_id, command_hash, stream_id, first_revision, last_revision)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])`,
        [cmd.id, cmd.hash, cmd.stream, cmd.first, cmd.last],
      );
      await client.query(
        `INSERT INTO events (stream_id, revision, event_id, type, schema_version, data, metadata)
         SELECT s, r, e, t, v, d, m
           FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[]) WITH ORDINALITY AS x(s, r, e, t, v, d, m, o)
          ORDER BY o`,
        [ev.stream, ev.revision, ev.id, ev.type, ev.v, ev.data, ev.metadata],
      );
    });
    transactions++;
    written += inChunk;
    commands += chunk.length;
    if (performance.now() - lastLog > 5000) {
      lastLog = performance.now();
      log(`  prefill: ${written} / ${events} events`);
    }
  }

  // The rows must add up: every stream's head is its last revision, every revision is one event.
  const { rows } = await pool.query<{ events: string; streams: string; revisions: string }>(
    'SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM streams) AS streams, (SELECT coalesce(sum(revision + 1), 0) FROM streams) AS revisions',
  );
  const check = rows[0]!;
  if (Number(check.events) !== written || Number(check.revisions) !== written || Number(check.streams) !== traffic.streamCount) {
    throw new Error(`prefill check failed: ${JSON.stringify(check)} for ${written} events over ${traffic.streamCount} streams`);
  }
  await analyzeSchema(pool, schema);
  return {
    events: written,
    commands,
    streams: Number(check.streams),
    transactions,
    ms: Math.round(performance.now() - started),
    megabytes: Math.round((bytes / 2 ** 20) * 10) / 10,
  };
};
