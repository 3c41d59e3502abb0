import { JobError } from '../../flows/contracts/portraitState';
import { Timestamp } from './timestamp';

/** How a piece of work (a generation, a batch) ended, the same way in every view: why it failed, if it did, and when it started and ended. */
export const ENDING_FIELDS = { error: JobError.nullable(), created_at: Timestamp, finished_at: Timestamp };
