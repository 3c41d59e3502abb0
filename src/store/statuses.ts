/**
 * The statuses of jobs, generations and batches, declared once: the mongoose models, the workflows,
 * the routes and the OpenAPI document read them from here.
 */
export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed_validation', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const GENERATION_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
export type GenerationStatus = (typeof GENERATION_STATUSES)[number];

export const BATCH_STATUSES = ['pending', 'running', 'completed', 'failed'] as const;

/** Not finished yet: what the orchestrator may still move on (or give up on). */
export const UNFINISHED_STATUSES = ['pending', 'running'] as const;

/** Finished for good (any kind; `ready`: an identity that was learnt): event streams end, cancel answers 409. */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['completed', 'failed_validation', 'failed', 'cancelled', 'ready']);

/** A job in one of these may start a new attempt cycle (POST /jobs/:id/retry). */
export const RETRYABLE_STATUSES: readonly JobStatus[] = ['failed', 'failed_validation'];

/**
 * An identity's life: its photos checked and framed (`preparing`, with their captions), a LoRA
 * learnt (`training`), held-out portraits rendered with and without it (`evaluating`), then `ready`
 * for portraits; or it ended `failed` / `cancelled`.
 */
export const IDENTITY_STATUSES = ['pending', 'preparing', 'training', 'evaluating', 'ready', 'failed', 'cancelled'] as const;
export type IdentityStatus = (typeof IDENTITY_STATUSES)[number];
