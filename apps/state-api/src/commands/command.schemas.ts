import { z } from 'zod';
import { isoTime } from '../http/validate';
import type { CommandType } from '@lorestore/domain';

/** API.md: slugs for names, UUIDs (any version, compared lower-case) for ids. */
export const SLUG = /^[A-Za-z0-9_.-]{1,64}$/;
/** What `z.guid()` accepts (zod's own pattern): any 8-4-4-4-12 hex, version and variant unchecked. */
export const GUID = /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$/;
export const slug = z.string().regex(SLUG, 'must match [A-Za-z0-9_.-]{1,64}');
export const id = z.guid('must be a UUID').transform((v) => v.toLowerCase());
/** `<category>-<world>[-<uuid>]`, as streamIds in libs/domain builds them. */
export const streamIdSchema = z.string().regex(/^[a-z]+-[A-Za-z0-9_.-]{1,64}(-[0-9a-fA-F-]{36})?$/, 'not a stream name');
const jsonObject = z.record(z.string().max(200), z.json());
const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `at most ${max} characters`);

export const expectedRevisionSchema = z.union([
  z.number().int().min(0, 'a revision is ≥ 0').max(Number.MAX_SAFE_INTEGER),
  z.enum(['any', 'no_stream', 'exists']),
]);

export const commandEnvelopeSchema = z
  .object({
    commandId: id,
    type: z.string().min(1).max(64),
    expectedRevision: expectedRevisionSchema.optional(),
    /** The player or service this command acts for (recorded on its events; an actor rollback finds them by it). */
    actorId: z.string().regex(/^[\w.:@-]{1,128}$/, '1–128 letters, digits, _ . : @ -').optional(),
    payload: z.record(z.string(), z.unknown()),
  })
  .strict();

/** Embedding length bounds; the per-deployment dimension is fixed by the memory feature. */
const MAX_EMBEDDING = 4096;
export const memorySchema = z
  .object({
    text: text(4000),
    embedding: z
      .array(z.number().refine(Number.isFinite, 'must be a finite number'))
      .min(1, 'must not be empty')
      .max(MAX_EMBEDDING, `at most ${MAX_EMBEDDING} dimensions`),
    importance: z.number().int().min(1).max(10).optional(),
    subjects: z.array(id).max(32).optional(),
  })
  .strict();

const weight = z.number().min(0, 'a weight is ≥ 0').max(100, 'a weight is ≤ 100');

/** `POST /v1/worlds/{w}/npcs/{npcId}/memories/search`. */
export const memorySearchSchema = z
  .object({
    embedding: memorySchema.shape.embedding,
    topK: z.number().int('must be an integer').min(1, 'topK is 1–100').max(100, 'topK is 1–100').default(5),
    minScore: z.number().refine(Number.isFinite, 'must be a finite number').optional(),
    minPosition: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    weights: z.object({ relevance: weight, recency: weight, importance: weight }).partial().strict().optional(),
  })
  .strict();

export const payloadSchemas = {
  'entity.spawn': z
    .object({ entityId: id, kind: text(64), attributes: jsonObject.default({}), locationId: id.optional() })
    .strict(),
  'entity.update': z
    .object({ entityId: id, set: jsonObject.default({}), unset: z.array(z.string().min(1).max(200)).max(200).default([]) })
    .strict()
    .refine((p) => Object.keys(p.set).length > 0 || p.unset.length > 0, { message: 'set or unset must name at least one attribute', path: ['set'] })
    .refine((p) => !p.unset.some((k) => k in p.set), { message: 'an attribute cannot be both set and unset', path: ['unset'] }),
  'entity.move': z.object({ entityId: id, locationId: id }).strict(),
  'entity.despawn': z.object({ entityId: id, reason: text(500).optional() }).strict(),
  'world.advance_time': z.object({ ticks: z.number().int().min(1, 'time only moves forward: ticks > 0').max(1_000_000_000) }).strict(),
  'world.set_weather': z.object({ weather: slug, regionId: slug.optional() }).strict(),
  'world.set_faction_standing': z
    .object({ factionId: id, otherFactionId: id, standing: z.number().int().min(-100).max(100) })
    .strict(),
  'player.record_action': z.object({ playerId: id, action: text(100), context: jsonObject.default({}), at: isoTime.optional() }).strict(),
  'player.change_relationship': z
    .object({ playerId: id, targetId: id, delta: z.number().int().min(-200).max(200), reason: text(500).optional() })
    .strict(),
  'player.set_profile': z
    .object({
      playerId: id,
      displayName: text(100),
      email: z.email().max(254).optional(),
      locale: z.string().regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a BCP 47 tag such as en-GB').optional(),
    })
    .strict(),
  'narrative.advance_plot': z.object({ plotId: slug, stage: text(128), choices: jsonObject.optional() }).strict(),
  'narrative.set_flag': z.object({ flag: slug, value: z.json() }).strict(),
  'npc.record_memory': memorySchema.extend({ npcId: id }).strict(),
  'npc.forget_memory': z.object({ npcId: id, memoryId: id }).strict(),
} satisfies Record<CommandType, z.ZodType>;

export const COMMAND_TYPES = Object.keys(payloadSchemas) as CommandType[];
export const isCommandType = (type: string): type is CommandType => Object.hasOwn(payloadSchemas, type);
