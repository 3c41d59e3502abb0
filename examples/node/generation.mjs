#!/usr/bin/env node
// Generate an image from a prompt with a LoRA from Hugging Face, then download it.
//
//   APEX_API_URL=http://localhost:8001 APEX_API_KEY=apx_... node generation.mjs "a studio portrait" \
//       --lora owner/name:lora.safetensors:0.8 [--width 1024 --height 1024 --steps 28 --seed 7 --out .]
//
// `--lora REPO[:WEIGHT_FILE][:SCALE]` may be given up to 8 times. Prints the generation id and its final
// status, then saves every image from its presigned URL. Exits 0 when it saved them, 1 otherwise.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiError, call, download, followEvents, newIdempotencyKey } from './apexClient.mjs';

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    lora: { type: 'string', multiple: true, default: [] },
    width: { type: 'string', default: '1024' },
    height: { type: 'string', default: '1024' },
    steps: { type: 'string' },
    guidance: { type: 'string' },
    seed: { type: 'string' },
    'num-images': { type: 'string', default: '1' },
    out: { type: 'string', default: '.' },
  },
});

function lora(text) {
  const [repo, weightName, scale] = text.split(':');
  return { repo, ...(weightName ? { weight_name: weightName } : {}), scale: Number(scale || 1) };
}

async function main(prompt) {
  const request = { prompt, width: Number(options.width), height: Number(options.height), num_images: Number(options['num-images']), loras: options.lora.map(lora) };
  for (const field of ['steps', 'guidance', 'seed']) if (options[field] !== undefined) request[field] = Number(options[field]);
  const created = await call('POST', '/generations', { json: request, headers: { 'Idempotency-Key': newIdempotencyKey() } });
  const id = created.generation_id;
  console.log(`generation ${id} created (${created.status})`);
  for await (const { event, data } of followEvents(`/generations/${id}/events`)) {
    if (event === 'status') console.log(`status: ${data.status}`);
    else if (event === 'progress') console.log(`denoising ${data.denoise_step}/${data.denoise_total}`);
  }
  const generation = await call('GET', `/generations/${id}`);
  if (generation.status !== 'completed') {
    console.log('error:', generation.error);
    return 1;
  }
  console.log(`seed ${generation.seed}, loras ${generation.request.loras.map((l) => l.repo).join(', ') || 'none'}`);
  for (const [i, image] of generation.images.entries()) {
    const { file, type, size } = await download(image.url, join(options.out, `generation-${id}-${i}`));
    console.log(`saved ${file} (${type}, ${size} bytes)`);
  }
  return 0;
}

if (positionals.length !== 1) {
  console.error('usage: node generation.mjs PROMPT [--lora REPO[:WEIGHT_FILE][:SCALE]] [--width N --height N --steps N --guidance X --seed N --num-images N --out DIR]');
  process.exit(2);
}
main(positionals[0]).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ApiError ? `API error: ${err.message}` : err);
    process.exit(1);
  },
);
