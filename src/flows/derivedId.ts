import { createHash } from 'node:crypto';

/**
 * A stable 24-hex id (the shape of a MongoDB ObjectId, which the public ids are) derived from its
 * parts: a replayed fan-out creates the same children instead of new ones.
 */
export const derivedId = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 24);
