import { z } from 'zod';
import { GeneratedImage, PixelProvenance } from '../src/flows/contracts/generateStep';
import { STEP_ERRORS } from '../src/flows/contracts/stepErrors';
import { PORTRAIT_VOCABULARY, PortraitParameters, RESOLUTIONS } from '../src/flows/contracts/portraitParameters';
import { JOB_EVENT_LOG_LIMITS } from '../src/flows/jobEvents';
import { REDIS_KEY_LAYOUT } from '../src/flows/redisKeys';
import { GPU_QUEUES, STEPS, stepDefinition, type GpuQueue, type StepName, type Workflow } from '../src/flows/steps/registry';
import { PUBLIC_ADDRESS_EXAMPLES, SPECIAL_ADDRESS_BLOCKS } from '../src/flows/webhooks/publicAddresses';

const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
const contractFile = (step: StepName, kind: 'input' | 'result') => `${step}.${kind}.schema.json`;

/**
 * Titles for the parts of a contract whose property name would make an ambiguous type name in
 * Python (the generated TypedDicts are named after a title, else after the property): `images`
 * would give `Image`, which is PIL's, and `upscalers` `Upscaler`, the worker's upscaler class.
 */
const TITLES = new Map<unknown, string>([
  [GeneratedImage, 'GeneratedImage'],
  [PixelProvenance.shape.upscalers.unwrap().element, 'SuperResolutionPass'],
]);
const toJSONSchema = (schema: z.ZodType, io: 'input' | 'output') =>
  z.toJSONSchema(schema, {
    io,
    override: ({ zodSchema, jsonSchema }) => {
      const title = TITLES.get(zodSchema);
      if (title) jsonSchema.title = title;
    },
  });

/**
 * Everything both languages must agree on, generated from its TypeScript home (`npm run contracts`
 * writes it to contracts/, and a test fails while that is stale): the JSON Schema of every queue
 * payload, the step catalogue (which GPU queue carries which step, in which pool, under which
 * contract), the codes a failed step reports (src/flows/contracts/stepErrors.ts), the Redis layout
 * with the event-log limits, the portrait vocabulary the Python prompt step words its prompts from,
 * and the public-address blocks with the examples both test suites check.
 * Step inputs are described as the orchestrator sends them (defaults filled in); step results as the
 * worker may write them (defaults optional).
 */
export function contractSchemas(): Record<string, string> {
  const schemas: Record<string, unknown> = {
    'portrait-parameters.schema.json': toJSONSchema(PortraitParameters, 'input'),
  };
  for (const [step, contract] of Object.entries(STEPS) as [StepName, (typeof STEPS)[StepName]][]) {
    schemas[contractFile(step, 'input')] = toJSONSchema(contract.input, 'output');
    schemas[contractFile(step, 'result')] = toJSONSchema(contract.result, 'input');
  }
  const out = Object.fromEntries(
    Object.entries(schemas).map(([name, schema]) => [name, json({ $id: `https://apex-portraits.local/contracts/${name}`, ...(schema as object) })]),
  );
  out['steps.json'] = json(stepCatalogue());
  out['step-errors.json'] = json({ codes: STEP_ERRORS });
  out['redis-keys.json'] = json({ keys: REDIS_KEY_LAYOUT, jobEventLog: JOB_EVENT_LOG_LIMITS });
  out['portrait-vocabulary.json'] = json({ fields: PORTRAIT_VOCABULARY, resolutions: RESOLUTIONS });
  out['outbound-addresses.json'] = json({ blocks: SPECIAL_ADDRESS_BLOCKS, examples: PUBLIC_ADDRESS_EXAMPLES });
  return out;
}

/**
 * The GPU queues by name: the step each carries, the worker pool that serves it, the workflow it is
 * reserved for (absent: the step's own queue) and the schema files of its contract.
 */
function stepCatalogue() {
  return Object.fromEntries(
    (Object.entries(GPU_QUEUES) as [GpuQueue, StepName][]).map(([queue, step]) => {
      const { pool, workflowQueues = {} } = stepDefinition(step);
      const workflow = (Object.keys(workflowQueues) as Workflow[]).find((w) => workflowQueues[w] === queue);
      return [queue, { step, pool, ...(workflow ? { workflow } : {}), contract: { input: contractFile(step, 'input'), result: contractFile(step, 'result') } }];
    }),
  );
}
