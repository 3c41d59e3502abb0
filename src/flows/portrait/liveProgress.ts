import type { Queue } from 'bullmq';
import type { JobDocument } from '../../store/jobModel';
import { UNFINISHED_STATUSES } from '../../store/statuses';
import { PortraitState } from '../contracts/portraitState';
import { portraitJobId } from '../ids';
import { planTransition, revisionOf } from './stateMachine';

/**
 * GET /jobs/:id while the job runs. The orchestrator writes the Job document only at the
 * transitions a reader needs (the start, after a step that ran a while, the end), so between them
 * the document may trail the state machine; the state in the orchestrator's BullMQ job never does.
 * When that state is further on (a higher revision), the caller sees its attempts, steps and
 * report instead. A finished job's document is final: it is written before the orchestrator job
 * completes.
 */
export async function withLiveProgress(doc: JobDocument, portraitQueue: Queue): Promise<JobDocument> {
  if (!(UNFINISHED_STATUSES as readonly string[]).includes(doc.status)) return doc;
  const job = await portraitQueue.getJob(portraitJobId(doc._id.toHexString(), doc.cycle ?? 1));
  const parsed = PortraitState.safeParse(job?.data);
  if (!parsed.success) return doc;
  const state = parsed.data;
  // Saved job data always awaits a step, except before the cycle's first one is queued.
  const running = planTransition(state, Date.now()).kind === 'await';
  if (!running || revisionOf(state, false) <= (doc.revision ?? 0)) return doc;
  return { ...doc, status: 'running', attempts: state.attempts, report: state.report ?? null, error: state.error ?? null };
}
