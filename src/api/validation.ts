import type { z } from 'zod';
import { ApiError } from './errors';

/** The request field a zod issue is about: the path to the unknown key itself, or to the bad value. */
export function issueField(issue: z.core.$ZodIssue): string {
  return (issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path).join('.');
}

/** Parses `value`, or answers 400 with `code`, naming the first bad field (`fallback` when the whole value is wrong). */
export function parseOr400<T extends z.ZodType>(schema: T, value: unknown, code: string, fallback = 'body'): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issueField(issue) || fallback;
  throw new ApiError(400, code, `${field}: ${issue.message}`, field);
}
