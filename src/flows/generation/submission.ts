import type { Queue } from 'bullmq';
import { randomInt } from 'node:crypto';
import type { Config } from '../../config';
import { GenerationModel, type GenerationDocument } from '../../store/generationModel';
import { isDuplicateKey } from '../../store/mongo';
import { currentTraceCarrier } from '../../telemetry';
import { outputSize, type GenerationRequest, type GenerationJobData } from '../contracts/generation';
import { generationJobId, generationObjectsPrefix } from '../ids';
import { orchestratorJobOptions, type ParentJob } from '../queues';
import { sealSecrets, secretsBinding } from '../secrets';
import type { WebhookSpec } from '../webhooks/events';

type Secrets = NonNullable<GenerationRequest['secrets']>;

/**
 * POST /generations: the Generation document (without secrets), then its orchestrator job, whose
 * generate-step payload carries the secrets sealed for this generation only. Returns the document
 * as it was created (the orchestrator may move it on at once).
 */
export async function submitGeneration(
  deps: { config: Config; queue: Queue<GenerationJobData> },
  submission: { id: string; tenant: string; request: Omit<GenerationRequest, 'secrets'>; secrets?: Secrets; webhook?: WebhookSpec; parent?: ParentJob },
): Promise<GenerationDocument> {
  const { id, tenant, request, secrets, webhook, parent } = submission;
  let created: GenerationDocument;
  try {
    created = (await GenerationModel.create({ _id: id, tenant, status: 'pending', request, seed: request.seed ?? randomInt(0, 2 ** 32 - 1) })).toObject() as GenerationDocument;
  } catch (err) {
    // A replayed batch fan-out: the document exists; its job is (re-)added below, a no-op if there.
    if (!isDuplicateKey(err)) throw err;
    created = (await GenerationModel.findById(id).lean<GenerationDocument>())!;
  }
  const { seed } = created;
  const input = {
    jobId: id,
    attempt: 1,
    prompt: request.prompt,
    ...(request.negative_prompt ? { negativePrompt: request.negative_prompt } : {}),
    seed,
    ...outputSize(request),
    ...(request.upscale ? { upscale: request.upscale } : {}),
    numImages: request.num_images,
    ...(request.steps ? { steps: request.steps } : {}),
    ...(request.guidance !== undefined ? { guidance: request.guidance } : {}),
    outputFormat: request.output_format,
    loras: request.loras,
    outputPrefix: generationObjectsPrefix(id).slice(0, -1),
    ...(request.destination ? { destination: request.destination } : {}),
    ...(secrets ? { secrets: sealSecrets(deps.config.SECRETS_KEY!, secretsBinding(id, request.destination), secrets) } : {}),
  };
  await deps.queue.add('generation', { generationId: id, tenant, webhook, input, trace: currentTraceCarrier() }, orchestratorJobOptions(generationJobId(id), deps.config.STEP_RETENTION_S, parent));
  return created;
}
