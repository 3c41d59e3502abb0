import type { Config } from '../../config';
import type { BatchItem } from '../../store/batchModel';
import { claimPhoto } from '../../store/processedPhotoModel';
import type { PortraitParameters } from '../contracts/portraitParameters';
import { inboxJobId } from '../ids';
import { normalizeReferenceImage } from '../portrait/referenceImage';
import { createPortraitJob, enqueuePortraitJob, type SubmissionDeps } from '../portrait/submission';
import type { ParentJob } from '../queues';

/** How many keys one run looks at under a prefix (already-taken photos included). */
export const INBOX_LIST_LIMIT = 10_000;

export type SkippedPhoto = { key: string; reason: string };

/** The tenant's inbox folder: tenants only ever see their own photos. */
export const inboxRoot = (config: Config, tenant: string, prefix: string) => `${config.S3_INBOX_PREFIX}${tenant}/${prefix}`;

/**
 * Fans out the photos under the tenant's inbox prefix that this scope has not taken yet: each is
 * claimed by (key, ETag), checked exactly like an upload to POST /jobs, and becomes a portrait job
 * under the batch. A photo that is not a usable image is claimed too (it is turned down once, with
 * its reason, not on every run).
 */
export async function portraitsFromInbox(
  deps: SubmissionDeps,
  run: {
    batchId: string;
    tenant: string;
    prefix: string;
    parameters: PortraitParameters;
    maxPhotos: number;
    dedupScope: string;
    parent: ParentJob;
    cancelled: () => Promise<boolean>;
  },
): Promise<{ items: BatchItem[]; skipped: SkippedPhoto[] }> {
  const items: BatchItem[] = [];
  const skipped: SkippedPhoto[] = [];
  const objects = await deps.objects.list(inboxRoot(deps.config, run.tenant, run.prefix), INBOX_LIST_LIMIT);
  for (const object of objects) {
    if (items.length + skipped.length >= run.maxPhotos || (await run.cancelled())) break;
    if (object.key.endsWith('/')) continue; // a folder marker
    const jobId = inboxJobId(run.batchId, object.key, object.etag);
    if (!(await claimPhoto(run.dedupScope, object.key, object.etag, jobId))) continue;
    if (object.size > deps.config.MAX_UPLOAD_BYTES) {
      skipped.push({ key: object.key, reason: `larger than ${deps.config.MAX_UPLOAD_BYTES} bytes` });
      continue;
    }
    const data = await deps.objects.getBuffer(object.key);
    if (!data) continue; // deleted since it was listed
    let reference;
    try {
      reference = await normalizeReferenceImage(data, deps.config);
    } catch (err) {
      skipped.push({ key: object.key, reason: (err as Error).message.replace('image_file', 'the photo') });
      continue;
    }
    const state = await createPortraitJob(deps, { tenant: run.tenant, parameters: run.parameters, references: [reference], jobId });
    await enqueuePortraitJob(deps, state, run.parent);
    items.push({ kind: 'portrait', id: jobId, source: { key: object.key, etag: object.etag } });
  }
  return { items, skipped };
}
