import type { Queue } from 'bullmq';
import type { Config } from '../../config';
import { JobModel } from '../../store/jobModel';
import { TERMINAL_STATUSES } from '../../store/statuses';
import type { QueuePayloads } from '../queues';
import { eraseJobInputs } from './inputErasure';
import { eraseResources } from './resourceErasure';
import { MODELS } from './resourceModels';
import { nowOf, type ErasureDeps } from './erasureTarget';

const DAY_MS = 24 * 3600 * 1000;
/** Batches of RETENTION_BATCH_SIZE one sweep erases at most per kind; the next sweep goes on. */
const MAX_BATCHES_PER_SWEEP = 10;
const SCHEDULER_ID = 'retention';

/** Statuses after which a resource's retention clock runs (from its `finishedAt`), a batch's among them. */
const FINISHED = [...TERMINAL_STATUSES];

/** What retention erases: not identities, which are kept until they are deleted (README, "People's data"). */
const RETAINED = ['batch', 'job', 'generation'] as const;
type RetainedKind = (typeof RETAINED)[number];

export type RetentionSweep = { outputs: Record<RetainedKind, number>; inputs: number };

/**
 * One retention sweep at `now`: every job, generation and batch that ended more than
 * RETENTION_OUTPUTS_DAYS ago is erased whole (batches first, with their children), through the
 * one erasure path; every job that ended more than RETENTION_INPUTS_DAYS ago loses its photos
 * (inputErasure.ts). A period of 0 keeps that data. Resources that have not ended are never due.
 */
export async function runRetention(deps: ErasureDeps): Promise<RetentionSweep> {
  const now = nowOf(deps);
  const at = { ...deps, now: () => now };
  const { RETENTION_INPUTS_DAYS: inputsDays, RETENTION_OUTPUTS_DAYS: outputsDays, RETENTION_BATCH_SIZE: size } = deps.config;
  const sweep: RetentionSweep = { outputs: { batch: 0, job: 0, generation: 0 }, inputs: 0 };
  if (outputsDays > 0) {
    const cutoff = new Date(now.getTime() - outputsDays * DAY_MS);
    for (const kind of RETAINED) {
      for (let batch = 0; batch < MAX_BATCHES_PER_SWEEP; batch++) {
        const due = await MODELS[kind].find({ status: { $in: FINISHED }, finishedAt: { $lt: cutoff } }, { _id: 1, tenant: 1 }).limit(size).lean<{ _id: unknown; tenant: string }[]>();
        if (due.length === 0) break;
        const { erased } = await eraseResources(at, due.map((d) => ({ kind, id: String(d._id), tenant: d.tenant })), 'retention');
        for (const k of RETAINED) sweep.outputs[k] += erased[k];
        if (due.length < size) break;
      }
    }
  }
  if (inputsDays > 0) {
    const cutoff = new Date(now.getTime() - inputsDays * DAY_MS);
    for (let batch = 0; batch < MAX_BATCHES_PER_SWEEP; batch++) {
      const due = await JobModel.find({ status: { $in: FINISHED }, finishedAt: { $lt: cutoff }, inputsErasedAt: { $exists: false } }, { _id: 1 }).limit(size).lean<{ _id: unknown }[]>();
      if (due.length === 0) break;
      await eraseJobInputs(at, due.map((d) => String(d._id)), 'retention');
      sweep.inputs += due.length;
      if (due.length < size) break;
    }
  }
  return sweep;
}

/** The retention sweep's job scheduler (upserted by every orchestrator: harmless), every RETENTION_SWEEP_S; removed when both periods are 0. */
export async function scheduleRetention(queue: Queue<QueuePayloads['retention']>, config: Config): Promise<void> {
  if (config.RETENTION_INPUTS_DAYS === 0 && config.RETENTION_OUTPUTS_DAYS === 0) {
    await queue.removeJobScheduler(SCHEDULER_ID);
    return;
  }
  await queue.upsertJobScheduler(SCHEDULER_ID, { every: config.RETENTION_SWEEP_S * 1000 }, { name: 'sweep', data: {}, opts: { removeOnComplete: { count: 10 }, removeOnFail: { count: 50 } } });
}

export function retentionProcessor(deps: ErasureDeps) {
  return async (): Promise<RetentionSweep> => runRetention(deps);
}
