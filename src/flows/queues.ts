import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BatchJobData } from './contracts/batch';
import type { GenerationJobData } from './contracts/generation';
import type { IdentityJobData } from './contracts/identity';
import type { PortraitState } from './contracts/portraitState';
import type { ScheduleFireData } from './contracts/schedule';
import { GPU_QUEUES, stepQueue, type GpuQueue, type StepInput, type StepName, type StepOfQueue } from './steps/registry';
import type { NotifyJobData } from './webhooks/events';

/**
 * Every queue of the product, in one place: its name and (QueuePayloads) the data its jobs carry,
 * so `queues.get(QueueName.batch)` is a `Queue<BatchJobData>` for every producer and consumer. The
 * GPU step queues are named after their steps and consumed by the Python worker.
 */
export const QueueName = {
  /** TypeScript orchestrator: the portrait state machine, one job per attempt cycle. */
  portrait: 'portrait',
  generation: 'generation',
  batch: 'batch',
  /** An identity's workflow: its photos prepared and captioned, a LoRA trained, then evaluated. */
  identity: 'identity',
  /** One job per firing of a schedule (BullMQ job schedulers); each starts a batch. */
  schedule: 'schedule',
  /** The retention sweep, fired by a job scheduler in the orchestrator role. */
  retention: 'retention',
  prompt: 'prompt',
  /** Text-to-image generations; portraits render on their own queue, so each pool scales on its own backlog. */
  generate: 'generate',
  /** The generate step of portrait attempts: the pool with the image-editing model. */
  portraitGenerate: stepQueue('generate', 'portrait'),
  validate: 'validate',
  report: 'report',
  /** POST /identities waits for it: each photo's face, before anything is kept. */
  checkIdentityPhotos: 'check_identity_photos',
  /** The notifier: one webhook delivery per job. */
  notify: 'notify',
} as const satisfies Record<string, string> & Partial<Record<StepName, StepName>>;
/** The queues named above and every GPU queue of the step registry (steps/registry.ts). */
export type QueueName = (typeof QueueName)[keyof typeof QueueName] | GpuQueue;

export type QueuePayloads = {
  portrait: PortraitState;
  generation: GenerationJobData;
  batch: BatchJobData;
  identity: IdentityJobData;
  schedule: ScheduleFireData;
  retention: Record<string, never>;
  notify: NotifyJobData;
} & { [Q in GpuQueue]: StepInput<StepOfQueue<Q>> };

// Which step runs on which GPU queue is the step registry's; re-exported for the queues' users.
export { GPU_QUEUES, stepQueue, type GpuQueue };

/** Every queue, for the dashboard and the metrics. */
export const ALL_QUEUES: QueueName[] = [...new Set<QueueName>([...Object.values(QueueName), ...(Object.keys(GPU_QUEUES) as GpuQueue[])])];

/** A batch's orchestrator job, when the workflow job is one of its children. */
export type ParentJob = { id: string; queue: string };

/**
 * Options of a workflow's own orchestrator job (portrait, generation, batch): its retries cover the
 * orchestrator's infrastructure errors (a MongoDB or Redis blip), not the steps'. As a batch's
 * child, its failure still wakes the batch (which counts it) instead of failing the batch.
 */
export const orchestratorJobOptions = (jobId: string, retentionS: number, parent?: ParentJob) => ({
  jobId,
  attempts: 8,
  backoff: { type: 'exponential' as const, delay: 500 },
  removeOnComplete: { age: retentionS },
  removeOnFail: { age: retentionS },
  ...(parent ? { parent, ignoreDependencyOnFailure: true } : {}),
});

/**
 * The BullMQ queues one process uses, one instance per name on the process's connection: routes,
 * workflows and the dashboard share them instead of each opening its own. Closed together.
 */
export class QueueSet {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
  ) {}

  get<Q extends QueueName>(name: Q): Queue<QueuePayloads[Q]> {
    let queue = this.queues.get(name);
    if (!queue) this.queues.set(name, (queue = new Queue(name, { connection: this.connection, prefix: this.prefix })));
    return queue as Queue<QueuePayloads[Q]>;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
