import { isErasedValue, type PlayerState } from '@lorestore/domain';

/**
 * A player's profile as answers show it, from its opened value: null once the
 * player is erased (the read model says so, or a field no longer opens).
 */
export const profileView = (state: PlayerState, opened: PlayerState['profile']): { profile: PlayerState['profile']; erased: boolean } => {
  const erased = state.erasedAt !== undefined || (opened !== null && Object.values(opened).some(isErasedValue));
  return { profile: erased ? null : opened, erased };
};
