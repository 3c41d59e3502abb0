import sharp from 'sharp';
import type { PortraitState } from '../src/flows/contracts/portraitState';
import { PortraitParameters } from '../src/flows/contracts/portraitParameters';
import { createPortraitJob, type SubmissionDeps } from '../src/flows/portrait/submission';
import { CONCURRENCY } from './instantGpu';

/**
 * Portrait jobs created the way POST /jobs creates them (reference photo in S3, Job document in
 * MongoDB) but not yet enqueued: the benchmarks create them before the clock starts and time only
 * the workflow, as the baselines' jobs are timed.
 */
export async function createBenchJobs(deps: SubmissionDeps, jobs: number): Promise<PortraitState[]> {
  const photo = await sharp({ create: { width: 512, height: 640, channels: 3, background: '#888' } }).jpeg().toBuffer();
  const request = { tenant: 'bench', parameters: PortraitParameters.parse({}), reference: { data: photo, contentType: 'image/jpeg', width: 512, height: 640 } };
  const states: PortraitState[] = [];
  for (let i = 0; i < jobs; i += CONCURRENCY) {
    states.push(...(await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs - i) }, () => createPortraitJob(deps, request)))));
  }
  return states;
}
