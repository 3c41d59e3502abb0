import { JobModel } from '../../store/jobModel';
import { photosTakenFor } from '../../store/processedPhotoModel';
import { jobObjectsPrefix } from '../ids';
import { WorkflowMetrics } from '../workflowMetrics';
import { eraseTakenPhotos } from './documentsAndObjects';
import { nowOf, type ErasureDeps, type ErasureTrigger } from './erasureTarget';

/**
 * Erases a finished job's inputs, the person's photos, and keeps the rest (attempts, images,
 * verdicts) until the outputs' period: its reference photo, and the inbox photo it was made from
 * while that still holds the same bytes (its claim stays, so a schedule does not take it again).
 * Marks the job (`inputsErasedAt`): it can no longer be retried.
 */
export async function eraseJobInputs(deps: ErasureDeps, jobIds: string[], trigger: ErasureTrigger): Promise<void> {
  for (const id of jobIds) {
    const references = await deps.objects.list(`${jobObjectsPrefix(id)}reference.`, 10);
    await deps.objects.deleteKeys(references.map((o) => o.key));
    await eraseTakenPhotos(deps.objects, await photosTakenFor([id]), { keepClaims: true });
    await JobModel.updateOne({ _id: id }, { $set: { inputsErasedAt: nowOf(deps) } });
  }
  await new WorkflowMetrics(deps.config.QUEUE_PREFIX).erased(deps.redis, 'job_inputs', trigger, jobIds.length);
}
