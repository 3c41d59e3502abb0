import type { z } from 'zod';
import { ApiError } from './errors';

/** The request field a zod issue is about: the path to the unknown key itself, or to the bad value. */
export function issueField(issue: z.core.$ZodIssue): string {
  return (issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path).join('.');
}

/**
 * The path of the first string holding U+0000. No field means one, and PostgreSQL (under FerretDB)
 * refuses to store it: caught here, it is the caller's 400 rather than a failed job later.
 */
export function nulCharacterPath(value: unknown, path: (string | number)[] = []): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path.join('.') : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    if (key.includes('\u0000')) return [...path, key].join('.');
    const found = nulCharacterPath(item, [...path, Array.isArray(value) ? Number(key) : key]);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Parses `value`, or answers 400 with `code`, naming the first bad field (`fallback` when the whole value is wrong). */
export function parseOr400<T extends z.ZodType>(schema: T, value: unknown, code: string, fallback = 'body'): z.infer<T> {
  const nulAt = nulCharacterPath(value);
  if (nulAt !== undefined) {
    const field = nulAt || fallback;
    throw new ApiError(400, code, `${field}: must not contain the NUL character (U+0000); send the text without it`, field);
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issueField(issue) || fallback;
  throw new ApiError(400, code, `${field}: ${issue.message}`, field);
}
