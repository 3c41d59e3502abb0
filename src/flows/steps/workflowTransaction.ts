import type { IRedisTransaction, Job, Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';

/**
 * A workflow transition's Redis writes — the next step's child job and deadline, the workflow
 * job's new state, its events and metrics — in one MULTI: one round trip, and all of them or none,
 * so a crash can never leave a child queued without the state that records it. The step runner
 * (stepRunner.ts) opens and commits it; the orchestrators add their own writes to it.
 */
export type WorkflowTransaction = ChainableCommander;

/**
 * A MULTI on the workflow queue's connection (the Redis backend's client, BullMQ's escape hatch).
 * Its ioredis adapter hands out ioredis' own MULTI with the `runCommand` BullMQ's scripts need, so
 * Job.addJob and plain commands share it.
 */
export async function openWorkflowTransaction(queue: Queue): Promise<WorkflowTransaction> {
  return (await queue.getBackend().client).multi() as unknown as WorkflowTransaction;
}

/** The transaction typed as BullMQ's own calls take one (Job.addJob, the backend's scripts). */
export const asBullMQTransaction = (tx: WorkflowTransaction) => tx as unknown as IRedisTransaction;

/**
 * Stores the workflow job's state as its job data, as Job.updateData does (the job exists: the
 * processor holds its lock), so a replay resumes from it.
 */
export function saveJobData(tx: WorkflowTransaction, queue: Queue, job: Job, data: unknown): void {
  tx.hset(queue.toKey(job.id!), { data: JSON.stringify(data) });
  job.data = data;
}

/**
 * Sends the MULTI and returns each command's reply; a command that failed, or a BullMQ script that
 * answered an error code (< 0: our own commands only ever count up), throws.
 */
export async function commitWorkflowTransaction(tx: WorkflowTransaction): Promise<unknown[]> {
  const results = await tx.exec();
  if (!results) throw new Error('workflow transaction was discarded');
  return results.map(([err, value]) => {
    if (err) throw err;
    if (typeof value === 'number' && value < 0) throw new Error(`workflow transaction: a BullMQ script answered error code ${value}`);
    return value;
  });
}

/**
 * Commits the transaction with the workflow job parked in waiting-children as its last command
 * (Job.moveToWaitingChildren's script, on the MULTI through the Redis backend, as FlowProducer
 * runs its scripts), so queueing a step and parking cost one round trip. False when there was
 * nothing to wait for: the step already finished (a replay found it done).
 */
export async function commitAndPark(tx: WorkflowTransaction, queue: Queue, job: Job, token: string): Promise<boolean> {
  const backend = queue.getBackend();
  backend.execCommand(asBullMQTransaction(tx), 'moveToWaitingChildren', backend.moveToWaitingChildrenArgs(job.id!, token, {}));
  // The script's reply: 0 moved, 1 no pending children.
  return (await commitWorkflowTransaction(tx)).at(-1) === 0;
}
