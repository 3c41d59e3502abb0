import { JobModel } from '../../store/jobModel';
import { UNFINISHED_STATUSES } from '../../store/statuses';
import type { PortraitState } from '../contracts/portraitState';
import { bestAttempt, chosenImage, revisionOf } from './stateMachine';

/**
 * Writes the Job document from the orchestrator's state, unless the document already holds a
 * later revision (stateMachine.ts revisionOf): a write arriving late — from a process replaying the
 * job, or one that lost its lock — is ignored instead of taking the document backwards. A running
 * job's write never replaces a final status (one the orchestrator or the API gave it). The guard is
 * part of the update's filter, which MongoDB and FerretDB both apply; MongoDB applies it atomically,
 * FerretDB 1.x reads then writes, so two writes of one job at the same instant could still land out
 * of order there. The orchestrator writes only within a job's activation, and a job's activations
 * never overlap, so that needs a process that lost its lock and still writes.
 */
export async function writeJobDocument(state: PortraitState, status: string): Promise<void> {
  const finished = status !== 'running';
  const revision = revisionOf(state, finished);
  const best = finished ? bestAttempt(state) : undefined;
  const later = { $or: [{ revision: { $lt: revision } }, { revision: { $exists: false } }] };
  await JobModel.updateOne(
    { _id: state.jobId, ...later, ...(finished ? {} : { status: { $in: UNFINISHED_STATUSES } }) },
    {
      $set: {
        status,
        attempts: state.attempts,
        report: state.report ?? null,
        error: state.error ?? null,
        cycle: state.cycle,
        history: state.history,
        result: best ? { attempt: best.number, imageKey: chosenImage(best).key, score: best.verdict!.score } : null,
        revision,
        ...(finished ? { finishedAt: new Date() } : {}),
      },
    },
  );
}
