import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import type { PhotoCheck } from '../contracts/checkIdentityPhotosStep';
import { stepJobId } from '../ids';
import { QueueName, type QueueSet } from '../queues';
import { checkOutcome } from '../steps/outcomes';
import { STEPS } from '../steps/registry';
import { readStepOutcome } from '../steps/stepJobs';

/** The face check did not answer in time (no vlm worker, a long backlog): the caller may try again. */
export class PhotoCheckUnavailable extends Error {}

const POLL_MS = 100;

/**
 * Runs the `check_identity_photos` step on photos already in S3 and waits for its verdicts (one per
 * photo, in order), for at most IDENTITY_PHOTO_CHECK_TIMEOUT_MS: a request the API answers, so it is
 * a job of its own, not a workflow's child, and it is removed once read (it named the photos' keys).
 * Throws PhotoCheckUnavailable when it did not end in time or failed.
 */
export async function checkIdentityPhotos(deps: { config: Config; redis: Redis; queues: QueueSet }, identityId: string, photoKeys: string[]): Promise<PhotoCheck[]> {
  const queue = deps.queues.get(QueueName.checkIdentityPhotos);
  const id = stepJobId(identityId, 'check_identity_photos');
  const input = STEPS.check_identity_photos.input.parse({ identityId, photoKeys });
  await queue.add('check_identity_photos', input, { jobId: id, attempts: 2, backoff: { type: 'fixed', delay: 500 }, removeOnComplete: { age: 3600 }, removeOnFail: { age: 3600 } });
  const deadline = Date.now() + deps.config.IDENTITY_PHOTO_CHECK_TIMEOUT_MS;
  try {
    for (;;) {
      const outcome = await readStepOutcome(deps.redis, queue, id);
      if (outcome) {
        const checked = checkOutcome('check_identity_photos', outcome);
        if (!checked.ok || checked.result.photos.length !== photoKeys.length) throw new PhotoCheckUnavailable(checked.ok ? 'the face check answered for other photos' : checked.error.message);
        return checked.result.photos;
      }
      if (Date.now() >= deadline) throw new PhotoCheckUnavailable('the face check did not answer in time');
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    // A running check cannot be removed (its worker holds it); it ends on its own and expires with the queue's retention.
    await queue.remove(id).catch(() => undefined);
  }
}
