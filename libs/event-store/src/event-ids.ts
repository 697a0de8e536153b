import { createHash } from 'node:crypto';

/**
 * A stable event id for the index-th event of a command: a retried append
 * carries the same ids, so a store that deduplicates by event id (EventStoreDB
 * does) drops the repeat by itself. Formatted as an RFC 9562 version 8 UUID.
 */
export const deriveEventId = (commandId: string, index: number): string => {
  const bytes = createHash('sha256').update(`${commandId.toLowerCase()}:${index}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
