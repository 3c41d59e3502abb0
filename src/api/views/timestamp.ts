import { z } from 'zod';

/** Every time a view shows: an ISO 8601 string in UTC, or null where it has not happened (yet). */
export const Timestamp = z.iso.datetime().nullable();

/** A stored time (epoch milliseconds or a Date) as views show it. */
export function iso(time?: number | Date | null): string | null {
  return time ? new Date(time).toISOString() : null;
}
