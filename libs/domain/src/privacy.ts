import type { Event } from './decider';
import type { PlayerState } from './player';

/**
 * The audit event of an erasure (GDPR): the player's data key was destroyed,
 * so every personal value sealed for them reads as erased from now on, and
 * the read models drop what they held. It carries no personal data: the
 * player's id is pseudonymous, the reason is the operator's. Appended once,
 * to the player's own privacy stream (not to a world: the erasure covers
 * every world).
 */
export type PlayerErased = Event<'PlayerErased', { playerId: string; reason: string; erasedBy: string | null; at: string }>;

/** The stream of a player's erasure: outside every world, so no world rollback can touch it. */
export const privacyStreamId = (playerId: string) => `privacy-${playerId}`;

/** What a personal value reads as once its key is destroyed: in read models, exports and query answers. */
export const ERASED: Readonly<{ $erased: true }> = Object.freeze({ $erased: true as const });
export type Erased = typeof ERASED;

export const isErasedValue = (value: unknown): value is Erased =>
  typeof value === 'object' && value !== null && (value as { $erased?: unknown }).$erased === true && Object.keys(value).length === 1;

/** A player's read-model state once erased: no profile, and when. */
export const erasePlayerState = (state: PlayerState, at: string): PlayerState => ({ ...state, profile: null, erasedAt: at });
