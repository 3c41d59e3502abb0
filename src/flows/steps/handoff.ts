import type { Job, Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';

/**
 * A workflow transition's Redis writes — the next step's child job and deadline, the workflow
 * job's new state, its events and metrics — in one MULTI: one round trip, and all of them or none,
 * so a crash can never leave a child queued without the state that records it.
 */
export type Handoff = ChainableCommander;

/**
 * A MULTI on the workflow queue's connection (the Redis backend's client, BullMQ's escape hatch).
 * Its ioredis adapter hands out ioredis' own MULTI with the `runCommand` BullMQ's scripts need, so
 * Job.addJob and plain commands share it.
 */
export async function openHandoff(queue: Queue): Promise<Handoff> {
  return (await queue.getBackend().client).multi() as unknown as Handoff;
}

/**
 * Stores the workflow job's state as its job data, as Job.updateData does (the job exists: the
 * processor holds its lock), so a replay resumes from it.
 */
export function saveJobData(tx: Handoff, queue: Queue, job: Job, data: unknown): void {
  tx.hset(queue.toKey(job.id!), { data: JSON.stringify(data) });
  job.data = data;
}

/**
 * Sends the MULTI; a command that failed, or a BullMQ script that answered an error code (< 0: our
 * own commands only ever count up), throws.
 */
export async function commitHandoff(tx: Handoff): Promise<void> {
  const results = await tx.exec();
  if (!results) throw new Error('hand-off transaction was discarded');
  for (const [err, value] of results) {
    if (err) throw err;
    if (typeof value === 'number' && value < 0) throw new Error(`hand-off transaction: a BullMQ script answered error code ${value}`);
  }
}
