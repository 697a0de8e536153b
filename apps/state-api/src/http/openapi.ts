import { applyDecorators } from '@nestjs/common';
import { ApiHeader, ApiQuery, ApiResponse } from '@nestjs/swagger';
import { z } from 'zod';
import { commandEnvelopeSchema, memorySchema, memorySearchSchema, payloadSchemas } from '../commands/command.schemas';

type JsonSchema = Record<string, unknown>;

/**
 * zod → an OpenAPI 3.0 schema object. JSON values (`z.json()`) are recursive
 * and come out as `$defs` references that an inline OpenAPI schema cannot
 * resolve; there they are simply "any JSON".
 */
const toSchema = (schema: z.ZodType): JsonSchema => {
  const raw = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'openapi-3.0' }) as JsonSchema;
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (!node || typeof node !== 'object') return node;
    const object = node as JsonSchema;
    if (typeof object.$ref === 'string' && object.$ref.startsWith('#/$defs/')) return {};
    return Object.fromEntries(Object.entries(object).filter(([k]) => k !== '$defs' && k !== '$schema').map(([k, v]) => [k, strip(v)]));
  };
  return strip(raw) as JsonSchema;
};

/** The command body: one variant per command type, told apart by `type`. */
export const commandRequestJsonSchema: JsonSchema = {
  oneOf: Object.entries(payloadSchemas).map(([type, payload]) => {
    const envelope = toSchema(commandEnvelopeSchema) as { properties: JsonSchema };
    return {
      ...envelope,
      title: type,
      properties: { ...envelope.properties, type: { type: 'string', enum: [type] }, payload: toSchema(payload) },
    };
  }),
};

export const memoryRequestJsonSchema: JsonSchema = toSchema(memorySchema);
export const memorySearchJsonSchema: JsonSchema = toSchema(memorySearchSchema);

const problem = { description: 'application/problem+json: type, title, status, detail (and errors[{ path, message }] for 400)' };

/** The errors every authenticated route may answer. */
export const ApiProblems = (...statuses: number[]) =>
  applyDecorators(...[401, ...statuses].map((status) => ApiResponse({ status, ...problem })));

/** The point-in-time and consistency parameters every query accepts. */
export const ApiPointInTime = () =>
  applyDecorators(
    ApiQuery({ name: 'atRevision', required: false, type: Number, description: 'answer as of this revision of the stream' }),
    ApiQuery({ name: 'atPosition', required: false, type: Number, description: 'answer as of this global position' }),
    ApiQuery({ name: 'asOf', required: false, type: String, description: 'answer as of this ISO-8601 time' }),
    ApiQuery({ name: 'minPosition', required: false, type: Number, description: 'wait (bounded) until this position is readable; 504 if not' }),
    ApiHeader({ name: 'x-consistency-token', required: false, description: 'same as minPosition' }),
  );
