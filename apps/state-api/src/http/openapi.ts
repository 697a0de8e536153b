import { z } from 'zod';
import { commandEnvelopeSchema, memorySchema, payloadSchemas } from '../commands/command.schemas';

type JsonSchema = Record<string, unknown>;
const toSchema = (schema: z.ZodType): JsonSchema => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;

/** The command body as OpenAPI sees it: the envelope, with one payload schema per type. */
export const commandRequestJsonSchema: JsonSchema = {
  ...toSchema(commandEnvelopeSchema),
  description: 'payload depends on type; see x-payloads',
  'x-payloads': Object.fromEntries(Object.entries(payloadSchemas).map(([type, schema]) => [type, toSchema(schema)])),
};

export const memoryRequestJsonSchema: JsonSchema = toSchema(memorySchema);
