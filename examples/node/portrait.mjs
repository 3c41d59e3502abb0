#!/usr/bin/env node
// Submit a portrait, follow its progress, download the result.
//
//   APEX_API_URL=http://localhost:8001 APEX_API_KEY=apx_... node portrait.mjs me.jpg [output folder]
//
// Prints the job id, every step and the denoising progress, the final status, then saves the portrait
// (or, when every attempt was rejected, the best attempt's image and the failure report's summary).
// Exits 0 when it saved an image, 1 otherwise.
import { openAsBlob } from 'node:fs';
import { basename, join } from 'node:path';
import { ApiError, call, download, followEvents, newIdempotencyKey } from './apexClient.mjs';

const PARAMETERS = { purpose: 'corporate_headshot', attire: 'business_formal', background: 'neutral_studio', resolution: '1k' };

async function main(photo, outDir) {
  const form = new FormData();
  form.append('image_file', await openAsBlob(photo), basename(photo));
  form.append('parameters', JSON.stringify(PARAMETERS));
  const created = await call('POST', '/jobs', { form, headers: { 'Idempotency-Key': newIdempotencyKey() } });
  const jobId = created.job_id;
  console.log(`job ${jobId} created (${created.status})`);
  for await (const { event, data } of followEvents(`/jobs/${jobId}/events`)) {
    if (event === 'step') console.log(`attempt ${data.attempt}: ${data.step} ${data.status}`);
    else if (event === 'progress') console.log(`attempt ${data.attempt}: denoising ${data.denoise_step}/${data.denoise_total}`);
  }
  const job = await call('GET', `/jobs/${jobId}`);
  console.log(`status: ${job.status}`);
  for (const attempt of job.attempts) {
    const failed = (attempt.verdict?.checks ?? []).filter((c) => !c.passed).map((c) => c.name);
    console.log(`attempt ${attempt.number}: ${attempt.status}, score ${attempt.verdict?.score}, failed checks: ${failed.join(', ') || 'none'}`);
  }
  let url, name;
  if (job.status === 'completed') {
    [url, name] = [job.result.url, `portrait-${jobId}`];
  } else if (job.status === 'failed_validation') {
    console.log(`report: ${(await call('GET', `/jobs/${jobId}/report`)).report.summary}`);
    const best = job.result.attempt;
    [url, name] = [`/jobs/${jobId}/attempts/${best}/image`, `portrait-${jobId}-attempt-${best}`];
  } else {
    console.log('error:', job.error);
    return 1;
  }
  const { file, type, size } = await download(url, join(outDir, name));
  console.log(`saved ${file} (${type}, ${size} bytes)`);
  return 0;
}

const [photo, outDir = '.'] = process.argv.slice(2);
if (!photo) {
  console.error('usage: node portrait.mjs PHOTO [OUTPUT_FOLDER]  (APEX_API_URL, APEX_API_KEY from the environment)');
  process.exit(2);
}
main(photo, outDir).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ApiError ? `API error: ${err.message}` : err);
    process.exit(1);
  },
);
