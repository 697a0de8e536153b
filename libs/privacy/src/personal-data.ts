import { createHash, createHmac } from 'node:crypto';
import { DomainRefusal, ERASED, PERSONAL_COMMANDS, PERSONAL_DATA, type DomainCommand } from '@lorestore/domain';
import type { RecordedEvent } from '@lorestore/event-store';
import { EnvelopeError, findSealed, keyObjectOf, normalizeSubjects, open, replaceSealed, seal, subjectKey, type Sealed } from './envelope';
import type { PlayerKeyStore } from './key-store';

type EventLike = { type: string; data: unknown };

/** The players an event's personal fields belong to (none: the event holds nothing personal). */
export const subjectsOf = (event: EventLike): string[] => {
  const personal = PERSONAL_DATA[event.type as keyof typeof PERSONAL_DATA];
  if (!personal || typeof event.data !== 'object' || event.data === null) return [];
  const subject = (event.data as Record<string, unknown>)[personal.subjectField];
  if (typeof subject === 'string') return [subject];
  const ids = Array.isArray(subject) ? subject : [];
  return normalizeSubjects(ids.filter((id): id is string => typeof id === 'string'));
};

/**
 * Seals and opens personal data, as PERSONAL_DATA in libs/domain declares it:
 * the command path seals an event's personal fields before it is appended, so
 * the log, its mirrors and every state folded from it hold only envelopes;
 * the edges (queries, exports, the vector index) open them. A value whose
 * key is destroyed opens as ERASED.
 */
export class PersonalDataCodec {
  constructor(
    private readonly keys: PlayerKeyStore,
    private readonly options: { onUnreadable?: (envelope: Sealed, error: Error) => void } = {},
  ) {}

  /**
   * The events with their personal fields sealed. Refuses (410 `erased`) an
   * event with personal data of an erased player: nothing personal is taken
   * for them again.
   */
  async seal<E extends EventLike>(events: readonly E[]): Promise<E[]> {
    const subjects = events.map(subjectsOf);
    const all = subjects.flat();
    if (all.length === 0) return [...events];
    const keys = this.keys.cached(all) ?? (await this.keys.keys(all, { create: true }));
    for (const id of new Set(all)) {
      if (!keys.get(id)) throw new DomainRefusal('erased', `player ${id} was erased: lorestore takes no personal data for them any more`);
    }
    return events.map((event, i) => {
      const s = subjects[i]!;
      if (s.length === 0) return event;
      const key = subjectKey(s, (id) => keys.get(id)!);
      const data = { ...(event.data as Record<string, unknown>) };
      for (const field of PERSONAL_DATA[event.type as keyof typeof PERSONAL_DATA]!.fields) {
        if (field in data) data[field] = seal(data[field], s, key);
      }
      return { ...event, data };
    });
  }

  /** `value` with every envelope in it opened (or ERASED); `value` itself when it holds none. */
  async open<T>(value: T): Promise<T> {
    const envelopes = findSealed(value);
    if (envelopes.length === 0) return value;
    const subjects = envelopes.flatMap((e) => e.s);
    const keys = this.keys.cached(subjects) ?? (await this.keys.keys(subjects, { create: false }));
    return replaceSealed(value, (envelope) => {
      if (envelope.s.length === 0 || envelope.s.some((id) => !keys.get(id))) return ERASED;
      try {
        return open(envelope, subjectKey(envelope.s, (id) => keys.get(id)!));
      } catch (error) {
        // Altered, or sealed under a key that is not this player's: unreadable, like an erased one.
        if (!(error instanceof EnvelopeError)) throw error;
        this.options.onUnreadable?.(envelope, error);
        return ERASED;
      }
    }) as T;
  }

  /** The events with their data opened (each event itself when its data holds no envelope). */
  async openEvents(events: readonly RecordedEvent[]): Promise<RecordedEvent[]> {
    // One walk and one key lookup for the whole batch.
    const opened = (await this.open(events.map((e) => e.data))) as unknown[];
    return events.map((event, i) => (opened[i] === event.data ? event : { ...event, data: opened[i] }));
  }

  /** Drops a player's key from this process's cache (an erasure seen in the log). */
  forget(playerId: string): void {
    this.keys.forget(playerId);
  }

  /**
   * A command's idempotency hash over `text` (its payload): for a command
   * with personal data, an HMAC under its players' key, so the stored hash can
   * never be checked against guessed names or emails, and not at all once the
   * player is erased; for any other command a plain SHA-256. Refuses (410
   * `erased`) personal data of an erased player, as sealing would.
   */
  async commandDigest(command: DomainCommand, text: string): Promise<string> {
    const eventType = PERSONAL_COMMANDS[command.type];
    const subjects = eventType ? subjectsOf({ type: eventType, data: command.data }) : [];
    if (subjects.length === 0) return createHash('sha256').update(text).digest('base64url');
    const keys = this.keys.cached(subjects) ?? (await this.keys.keys(subjects, { create: true }));
    for (const id of subjects) if (!keys.get(id)) throw new DomainRefusal('erased', `player ${id} was erased: lorestore takes no personal data for them any more`);
    return createHmac('sha256', keyObjectOf(subjectKey(subjects, (id) => keys.get(id)!)))
      .update('lorestore/command-hash/v1:')
      .update(text)
      .digest('base64url');
  }
}
