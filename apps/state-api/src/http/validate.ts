import type { z } from 'zod';
import { validationProblem, type ProblemFieldError } from './problem';

const toFieldErrors = (error: z.ZodError, prefix: string): ProblemFieldError[] =>
  error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.'),
    message: issue.message,
  }));

/** Parses untrusted input or throws a 400 problem naming every bad field. */
export const parseOrThrow = <S extends z.ZodType>(schema: S, input: unknown, prefix = ''): z.output<S> => {
  const result = schema.safeParse(input);
  if (!result.success) throw validationProblem(toFieldErrors(result.error, prefix));
  return result.data;
};
