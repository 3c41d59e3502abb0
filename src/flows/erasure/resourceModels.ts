import type { Model } from 'mongoose';
import { BatchModel } from '../../store/batchModel';
import { GenerationModel } from '../../store/generationModel';
import { IdentityModel } from '../../store/identityModel';
import { JobModel } from '../../store/jobModel';
import type { ResourceKind } from './erasureTarget';

/** The document of each kind of resource. */
export const MODELS: Record<ResourceKind, Model<any>> = { job: JobModel, generation: GenerationModel, batch: BatchModel, identity: IdentityModel };
