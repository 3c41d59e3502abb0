import { z } from 'zod';
import { PORTRAIT_VOCABULARY, PortraitParameters, RESOLUTIONS } from '../src/flows/contracts/portraitParameters';
import { GPU_QUEUES } from '../src/flows/queues';
import { REDIS_KEY_LAYOUT } from '../src/flows/redisKeys';
import { STEPS } from '../src/flows/steps/registry';

/**
 * The JSON Schemas of every queue payload, generated from the zod contracts. Step inputs are
 * described as the orchestrator sends them (defaults filled in); step results as the worker may
 * write them (defaults optional). The portrait vocabulary travels too: the Python prompt step words
 * its prompts from the same phrases, the Redis key layout both languages share, and which queue
 * carries which GPU step (the Python worker consumes them).
 */
export function contractSchemas(): Record<string, string> {
  const files: Record<string, unknown> = {
    'portrait-parameters.schema.json': z.toJSONSchema(PortraitParameters, { io: 'input' }),
  };
  for (const [step, contract] of Object.entries(STEPS)) {
    files[`${step}.input.schema.json`] = z.toJSONSchema(contract.input, { io: 'output' });
    files[`${step}.result.schema.json`] = z.toJSONSchema(contract.result, { io: 'input' });
  }
  const out = Object.fromEntries(
    Object.entries(files).map(([name, schema]) => [
      name,
      JSON.stringify({ $id: `https://apex-portraits.local/contracts/${name}`, ...(schema as object) }, null, 2) + '\n',
    ]),
  );
  out['redis-keys.json'] = JSON.stringify(REDIS_KEY_LAYOUT, null, 2) + '\n';
  out['gpu-queues.json'] = JSON.stringify(GPU_QUEUES, null, 2) + '\n';
  out['portrait-vocabulary.json'] = JSON.stringify({ fields: PORTRAIT_VOCABULARY, resolutions: RESOLUTIONS }, null, 2) + '\n';
  return out;
}
