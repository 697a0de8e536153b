import { randomUUID } from 'node:crypto';
import { prng } from '../support/random';

/**
 * One "player request" of the 10,000-CCU profile, drawn from a fixed mix:
 * 40 % commands, 60 % reads. Shares are per 100 requests.
 */
export const MIX = [
  { kind: 'record_action', share: 25, label: 'POST commands player.record_action' },
  { kind: 'entity_update', share: 10, label: 'POST commands entity.update' },
  { kind: 'change_relationship', share: 5, label: 'POST commands player.change_relationship' },
  { kind: 'get_entity', share: 35, label: 'GET entities/{id}' },
  { kind: 'get_player', share: 15, label: 'GET players/{id}' },
  { kind: 'get_history', share: 10, label: 'GET players/{id}/history?limit=10' },
] as const;

export type Kind = (typeof MIX)[number]['kind'];

export const KINDS: Kind[] = MIX.map((m) => m.kind);

export const describeMix = (): string => MIX.map((m) => `${m.share}% ${m.label}`).join(', ');

export type World = { worldId: string; entityIds: string[]; playerIds: string[] };

export type PlannedRequest = { kind: Kind; method: 'GET' | 'POST'; path: string; body?: string };

/** A UUID (v4 layout) from the seeded generator, so a run's ids are the same every time. */
export const seededUuid = (rand: () => number): string => {
  const bytes = Array.from({ length: 16 }, () => Math.floor(rand() * 256));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

export const seededWorld = (worldId: string, entities: number, players: number, seed: number): World => {
  const rand = prng(seed);
  return {
    worldId,
    entityIds: Array.from({ length: entities }, () => seededUuid(rand)),
    playerIds: Array.from({ length: players }, () => seededUuid(rand)),
  };
};

const ACTIONS = ['attack', 'trade', 'talk', 'craft', 'loot', 'travel'];

/**
 * The request sequence: a deck of 100 slots (the shares above) reshuffled with
 * a seeded generator for each pass, players and entities drawn from the same
 * generator. Same seed, same sequence of kinds and ids; commandIds are fresh.
 */
export const requestSequence = (world: World, seed: number): (() => PlannedRequest) => {
  const rand = prng(seed);
  const deck: Kind[] = MIX.flatMap((m) => Array.from({ length: m.share }, () => m.kind));
  let at = deck.length;
  const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)]!;
  const base = `/v1/worlds/${world.worldId}`;
  const command = (type: string, payload: object): PlannedRequest['body'] => JSON.stringify({ commandId: randomUUID(), type, payload });

  return () => {
    if (at === deck.length) {
      for (let i = deck.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [deck[i], deck[j]] = [deck[j]!, deck[i]!];
      }
      at = 0;
    }
    const kind = deck[at++]!;
    switch (kind) {
      case 'record_action':
        return {
          kind,
          method: 'POST',
          path: `${base}/commands`,
          body: command('player.record_action', { playerId: pick(world.playerIds), action: pick(ACTIONS), context: { zone: Math.floor(rand() * 50) } }),
        };
      case 'entity_update':
        return {
          kind,
          method: 'POST',
          path: `${base}/commands`,
          body: command('entity.update', { entityId: pick(world.entityIds), set: { hp: Math.floor(rand() * 100), mood: pick(ACTIONS) }, unset: [] }),
        };
      case 'change_relationship':
        return {
          kind,
          method: 'POST',
          path: `${base}/commands`,
          body: command('player.change_relationship', { playerId: pick(world.playerIds), targetId: pick(world.entityIds), delta: Math.floor(rand() * 11) - 5 }),
        };
      case 'get_entity':
        return { kind, method: 'GET', path: `${base}/entities/${pick(world.entityIds)}` };
      case 'get_player':
        return { kind, method: 'GET', path: `${base}/players/${pick(world.playerIds)}` };
      case 'get_history':
        return { kind, method: 'GET', path: `${base}/players/${pick(world.playerIds)}/history?limit=10` };
      default: {
        const _exhaustive: never = kind;
        throw new Error(`unknown kind ${String(_exhaustive)}`);
      }
    }
  };
};
