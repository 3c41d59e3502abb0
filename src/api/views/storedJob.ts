import type { PortraitState } from '../../flows/contracts/portraitState';
import type { JobDocument } from '../../store/jobModel';

/** The accepted attempt, as flows/portrait/jobDocument.ts writes it. */
export type JobResult = { attempt: number; imageKey: string; score: number };

/**
 * The Job document with the records it stores as Mixed typed by the contracts they are written
 * from (the orchestrator copies them from its PortraitState). The store cannot name those types
 * itself: it sits below the workflows, which import it.
 */
export type StoredJob = Omit<JobDocument, 'parameters' | 'loras' | 'attempts' | 'report' | 'result' | 'error' | 'webhook' | 'history'> &
  Pick<PortraitState, 'parameters' | 'loras' | 'attempts' | 'history'> & {
    report?: PortraitState['report'] | null;
    result?: JobResult | null;
    error?: PortraitState['error'] | null;
    webhook?: PortraitState['webhook'] | null;
  };
