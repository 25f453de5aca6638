import type { z } from 'zod';
import { QuarryError } from '../errors.ts';
import { formatZodIssue, issuePath } from '../validation.ts';

/** Validates CLI input with the same schema as the API; errors name the flag, not the JSON field. */
export function parseFlags<S extends z.ZodType>(schema: S, input: Record<string, unknown>, flagNames: Record<string, string>): z.output<S> {
  const clean = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  const result = schema.safeParse(clean);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const key = issuePath(issue) ?? '';
  const flag = flagNames[key] ?? flagNames[key.split('.')[0]!] ?? key;
  throw new QuarryError('invalid_request', `${flag}: ${formatZodIssue({ ...issue, path: [] })}`, { field: flag });
}
