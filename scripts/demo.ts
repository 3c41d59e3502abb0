/**
 * npm run demo: starts the whole product, submits a portrait job for the astronaut photo
 * (scikit-image's public-domain NASA picture), follows it to the end with its progress, prints the
 * job record and where the image is, saves the image, and stops everything.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLocalStack } from './localStack';

const ROOT = join(__dirname, '..');
const say = (line: string) => process.stdout.write(`[demo] ${line}\n`);

function astronautPng(): Buffer {
  const python = join(ROOT, 'gpu-worker', '.venv', 'bin', 'python');
  const code = 'import io,sys; from PIL import Image; from skimage import data; b=io.BytesIO(); Image.fromarray(data.astronaut()).save(b,"PNG"); sys.stdout.buffer.write(b.getvalue())';
  return execFileSync(python, ['-c', code], { maxBuffer: 16 * 2 ** 20 });
}

async function main() {
  const verbose = process.argv.includes('--verbose');
  say('starting services, API, orchestrator and GPU worker (first run builds the tiny models)...');
  const stack = await startLocalStack({ quiet: !verbose, onExit: (name, code) => fail(`${name} exited with ${code}`) });
  const fail = (reason: string) => {
    say(`failed: ${reason}`);
    void stack.stop().then(() => process.exit(1));
  };
  try {
    const form = new FormData();
    form.append('image_file', new Blob([new Uint8Array(astronautPng())], { type: 'image/png' }), 'astronaut.png');
    form.append('parameters', JSON.stringify({ purpose: 'professional_linkedin', attire: 'business_formal', background: 'neutral_studio', vibe: 'confident', lighting: 'studio_softbox', resolution: '1k' }));
    say(`POST ${stack.apiUrl}/jobs (astronaut.png, professional_linkedin, business_formal)`);
    const created = await fetch(`${stack.apiUrl}/jobs`, { method: 'POST', body: form });
    const { job_id: jobId } = (await created.json()) as { job_id: string };
    say(`job ${jobId} accepted (${created.status})`);

    let job: any;
    let last = '';
    for (;;) {
      job = await (await fetch(`${stack.apiUrl}/jobs/${jobId}`)).json();
      const attempt = job.attempts?.at(-1);
      // A step is `queued` from the moment it is handed to its queue until its result is back.
      const step = attempt ? Object.entries(attempt.steps ?? {}).find(([, s]: any) => s?.status === 'queued') : undefined;
      const line = `status ${job.status}${attempt ? `, attempt ${attempt.number}` : ''}${step ? `, ${step[0]} in progress` : ''}`;
      if (line !== last) say((last = line));
      if (!['pending', 'running'].includes(job.status)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    say('job record:');
    process.stdout.write(JSON.stringify(job, null, 2) + '\n');
    for (const a of job.attempts ?? []) {
      const failed = (a.verdict?.checks ?? []).filter((c: any) => !c.passed).map((c: any) => `${c.name}=${c.value}`);
      say(`attempt ${a.number}: ${a.status}, score ${a.verdict?.score ?? '-'}${failed.length ? `, failed ${failed.join(' ')}` : ''}`);
    }
    const best = job.status === 'completed' ? `${stack.apiUrl}/jobs/${jobId}/result` : `${stack.apiUrl}/jobs/${jobId}/attempts/1/image`;
    const image = await fetch(best);
    if (image.ok) {
      const dir = join(ROOT, '.cache', 'demo');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${jobId}.png`);
      writeFileSync(file, Buffer.from(await image.arrayBuffer()));
      say(`image: ${best} (S3 bucket ${stack.env.S3_BUCKET ?? 'apex-portraits'}, key under jobs/${jobId}/), saved to ${file}`);
    }
    say(`finished with status ${job.status}`);
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`[demo] ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
