/**
 * A command the domain will not accept in the current state. HTTP-agnostic:
 * the API maps `not_found` to 404, `gone` and `erased` to 410 and every other code to 422.
 */
export type RefusalCode =
  | 'not_found'
  | 'gone'
  | 'already_exists'
  | 'not_an_npc'
  | 'invalid_transition'
  | 'out_of_range'
  /** Personal data for a player who was erased (GDPR): 410. */
  | 'erased';

export class DomainRefusal extends Error {
  override readonly name = 'DomainRefusal';
  constructor(
    readonly code: RefusalCode,
    message: string,
  ) {
    super(message);
  }
}

export const refuse = (code: RefusalCode, message: string): never => {
  throw new DomainRefusal(code, message);
};
