import { createHash, randomUUID } from 'node:crypto';
import type { DomainCommand } from '@lorestore/domain';
import { PostgresEventStore } from '@lorestore/event-store';
import { createPostgresPool } from '@lorestore/infra';
import { LocalKeyWrapper, PersonalDataCodec, PlayerKeyStore, migratePrivacy } from '@lorestore/privacy';
import { BENCH_MASTER_KEY } from '../support/service-env';
import { prefillLorestore } from '../support/history';
import { poolSizeFor, type AppendSpec, type Contender, type ContenderConfig } from './contender';

/** What a game puts in an action's context: free text, as chat (personal data: sealed per player). */
const CHAT = { text: 'meet me at the old mill at dawn, bring twelve iron ore and the map', channel: 'party', mentions: 2 };
const PLAYERS = 10_000;

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

/**
 * lorestore's PostgresEventStore as the service calls it: one event per
 * append, an expected revision, a commandId and a command hash, group-committed.
 */
export const openLorestore = async (config: ContenderConfig, writers: number): Promise<Contender> => {
  const pool = createPostgresPool({ url: config.url, schema: config.schema, max: poolSizeFor(writers), applicationName: 'bench-lorestore' });
  await PostgresEventStore.migrate(pool, config.schema);
  let batches = 0;
  let appends = 0;
  let batchMs = 0;
  const store = new PostgresEventStore({
    pool,
    schema: config.schema,
    ...(config.groupCommit ? { groupCommit: config.groupCommit } : {}),
    fastAppend: config.kind !== 'lorestore-full',
    onBatch: (size, ms) => {
      batches++;
      appends += size;
      batchMs += ms;
    },
  });
  // The personal cells: the service's command path for a PlayerActionRecorded with a chat context,
  // with (sealed) or without (plain) the codec: key lookup, AES-256-GCM, the keyed command hash.
  const mode = config.personal;
  let keys: PlayerKeyStore | null = null;
  let codec: PersonalDataCodec | null = null;
  const wrapper = new LocalKeyWrapper(Buffer.from(BENCH_MASTER_KEY, 'base64'));
  if (mode === 'sealed' || mode === 'sealed-new-player') {
    await migratePrivacy(pool, config.schema);
    keys = new PlayerKeyStore({ pool, wrapper });
    codec = new PersonalDataCodec(keys);
  }
  const players = Array.from({ length: PLAYERS }, () => randomUUID());
  let next = 0;
  const personalEvent = async (spec: AppendSpec): Promise<{ data: unknown; hash: string }> => {
    const playerId = mode === 'sealed-new-player' ? randomUUID() : players[next++ % PLAYERS]!;
    const data = { playerId, action: 'chat', context: CHAT, at: new Date().toISOString(), recordedAt: new Date().toISOString() };
    // The service's command hash: SHA-256 without personal data, an HMAC under the player's key with it.
    if (!codec) return { data, hash: sha256(JSON.stringify(data)) };
    const command = { type: 'player.record_action', data: { playerId, action: data.action, context: data.context }, metadata: {} } as unknown as DomainCommand;
    const hash = await codec.commandDigest(command, JSON.stringify(data));
    const [sealed] = await codec.seal([{ type: spec.event.type, data }]);
    return { data: sealed!.data, hash };
  };
  if (codec && mode === 'sealed') {
    // Known players: their keys exist and are cached (a live world's players come back).
    for (let i = 0; i < PLAYERS; i += 1000) await keys!.keys(players.slice(i, i + 1000), { create: true });
  }
  return {
    append: async (spec: AppendSpec) => {
      const { event } = spec;
      const { data, hash } = mode ? await personalEvent(spec) : { data: event.data, hash: sha256(JSON.stringify(event.data)) };
      await store.appendToStream(spec.streamId, [{ id: event.id, type: event.type, data, metadata: event.metadata, schemaVersion: 1 }], {
        expectedRevision: spec.revision === 0n ? 'no_stream' : 'any',
        commandId: spec.commandId,
        commandHash: hash,
      });
    },
    prefill: (events: number) => prefillLorestore(pool, config.schema, events),
    stats: () => ({
      batches,
      meanBatchSize: batches ? Math.round((appends / batches) * 10) / 10 : 0,
      meanBatchMs: batches ? Math.round((batchMs / batches) * 100) / 100 : 0,
    }),
    resetStats: () => {
      batches = 0;
      appends = 0;
      batchMs = 0;
    },
    close: async () => {
      await keys?.close();
      await store.close();
      await pool.end();
    },
  };
};
