import { z } from 'zod';
import { JobId } from '../../flows/contracts/common';

/** One page of a newest-first list (tenantResources.ts newestFirstPage): the items, and the cursor that continues after them. */
export function pageOf<Field extends string, Item extends z.ZodType>(field: Field, item: Item) {
  const cursor = JobId.nullable().describe('pass as ?cursor= for the next page; null on the last');
  return z.object({ [field]: z.array(item), next_cursor: cursor } as { [F in Field]: z.ZodArray<Item> } & { next_cursor: typeof cursor });
}
