import type { z } from 'zod';

/** The dotted path of a zod issue ("articles.0.title"), or undefined at the root. */
export function issuePath(issue: z.core.$ZodIssue): string | undefined {
  return issue.path.length > 0 ? issue.path.map(String).join('.') : undefined;
}

/** "title: must not be empty" — one line a user can act on. */
export function formatZodIssue(issue: z.core.$ZodIssue): string {
  const path = issuePath(issue);
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `\`${k}\``).join(', ')}`;
  return path ? `${path}: ${issue.message}` : issue.message;
}
