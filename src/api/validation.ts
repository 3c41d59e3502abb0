import type { z } from 'zod';
import { ApiError } from './errors';

/** The request field a zod issue is about: the path to the unknown key itself, or to the bad value. */
export function issueField(issue: z.core.$ZodIssue): string {
  return (issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path).join('.');
}

/**
 * How deeply a request's JSON may nest (objects and arrays, the body itself counted): the deepest
 * valid request nests 6 (a batch's generations' LoRAs). The bound keeps every later walk over the
 * value (zod, the MongoDB driver, JSON.stringify) far from the stack's limit.
 */
export const MAX_JSON_DEPTH = 32;

type Flaw = { path: (string | number)[]; flaw: 'nul' | 'depth' };

/**
 * The first place, in document order, that no request may hold: a string or key with U+0000 (no
 * field means one, and PostgreSQL under FerretDB refuses to store it), or an object or array nested
 * deeper than MAX_JSON_DEPTH. Iterative, so a body nested thousands deep cannot overflow the stack.
 */
function firstFlaw(root: unknown): Flaw | undefined {
  const pending: { value: unknown; path: (string | number)[] }[] = [{ value: root, path: [] }];
  while (pending.length > 0) {
    const { value, path } = pending.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return { path, flaw: 'nul' };
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= MAX_JSON_DEPTH) return { path, flaw: 'depth' };
    const children: typeof pending = [];
    for (const [key, item] of Object.entries(value)) {
      if (key.includes('\u0000')) return { path: [...path, key], flaw: 'nul' };
      children.push({ value: item, path: [...path, Array.isArray(value) ? Number(key) : key] });
    }
    pending.push(...children.reverse()); // the first child is taken next: document order
  }
  return undefined;
}

/** Parses `value`, or answers 400 with `code`, naming the first bad field (`fallback` when the whole value is wrong). */
export function parseOr400<T extends z.ZodType>(schema: T, value: unknown, code: string, fallback = 'body'): z.infer<T> {
  const flaw = firstFlaw(value);
  if (flaw?.flaw === 'nul') {
    const field = flaw.path.join('.') || fallback;
    throw new ApiError(400, code, `${field}: must not contain the NUL character (U+0000); send the text without it`, field);
  }
  if (flaw?.flaw === 'depth') {
    // The top-level field that holds it (the full path is MAX_JSON_DEPTH names long).
    const field = typeof flaw.path[0] === 'string' ? flaw.path[0] : fallback;
    throw new ApiError(400, code, `${field}: nested deeper than ${MAX_JSON_DEPTH} levels of objects and arrays; no request needs that`, field);
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issueField(issue) || fallback;
  throw new ApiError(400, code, `${field}: ${issue.message}`, field);
}
