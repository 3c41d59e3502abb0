import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { createApp } from '../src/api/app';
import { referencePhoto } from './support/fixtures';
import { captureLogs, dumpMongo, dumpRedis } from './support/secretScan';
import { startStack, type Stack } from './support/stack';

/** POST /jobs with identity LoRAs and a private repo's token, as the custom-faces seed does it. */
describe('identity LoRAs on portrait jobs', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      config: { MAX_ATTEMPTS: '1', SECRETS_KEY: randomBytes(32).toString('base64') },
      // vibe=calm is rejected, so the job can be retried.
      gpu: { validate: (input) => ({ passed: input.parameters.vibe !== 'calm' || input.attempt > 1, score: 0.5, checks: [], feedback: 'again' }) },
    });
  });
  afterAll(() => stack.close());

  const submit = async (fields: Record<string, string>) => {
    let req = request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg');
    for (const [name, value] of Object.entries(fields)) req = req.field(name, value);
    return req;
  };
  const face = { repo: 'acme/face-of-jane', weight_name: 'jane.safetensors', scale: 0.9 };

  it('applies the LoRAs in every attempt, with the token sealed: nowhere in clear, kept for a retry', async () => {
    const token = `hf_${randomBytes(16).toString('hex')}`;
    const logs = captureLogs();
    let jobId: string;
    try {
      const res = await submit({ loras: JSON.stringify([face, { repo: 'acme/style' }]), hf_token: token, parameters: JSON.stringify({ vibe: 'calm' }) });
      expect(res.status).toBe(202);
      jobId = res.body.job_id;
      expect((await stack.waitForJob(jobId)).status).toBe('failed_validation');
      expect((await request(stack.app).post(`/jobs/${jobId}/retry`)).status).toBe(202);
      expect((await stack.waitForJob(jobId)).status).toBe('completed');
    } finally {
      logs.stop();
    }
    const loras = [face, { repo: 'acme/style', scale: 1 }];
    const generates = stack.gpu!.callsFor(jobId, 'generate');
    expect(generates).toHaveLength(2); // attempt 1, and attempt 2 of the retry cycle
    for (const call of generates) {
      expect(call.input.loras).toEqual(loras);
      expect(call.input.secrets).toMatch(/^v1\./);
      expect(call.input.referenceImageKey).toMatch(new RegExp(`^jobs/${jobId}/reference\\.`));
    }
    const view = await request(stack.app).get(`/jobs/${jobId}`);
    expect(view.body.loras).toEqual(loras);
    const everywhere = {
      redis: await dumpRedis(stack.redis, stack.config.QUEUE_PREFIX),
      mongodb: await dumpMongo(),
      logs: logs.lines.join(''),
      response: JSON.stringify(view.body),
    };
    for (const [where, text] of Object.entries(everywhere)) expect({ where, leaked: text.includes(token) }).toEqual({ where, leaked: false });
  });

  it.each([
    ['[{"repo":"../a"}]', 'loras.0.repo', 'invalid_loras'],
    ['[{"repo":"acme/face","weight_name":"face.bin"}]', 'loras.0.weight_name', 'invalid_loras'],
    ['[{"repo":"acme/face","scale":9}]', 'loras.0.scale', 'invalid_loras'],
    ['[{"repo":"acme/face","token":"x"}]', 'loras.0.token', 'invalid_loras'],
    [JSON.stringify(Array(9).fill({ repo: 'acme/face' })), 'loras', 'invalid_loras'],
    ['{"repo":"acme/face"}', 'loras', 'invalid_loras'],
    ['[{"repo":', 'loras', 'invalid_json'],
  ])('refuses loras=%s naming %s', async (loras, field, code) => {
    const res = await submit({ loras });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code, field });
  });

  it.each(['[]', '[{"repo":"acme/face"}]', JSON.stringify([face]), JSON.stringify(Array(8).fill({ repo: 'a/b', scale: -1 }))])('accepts loras=%s', async (loras) => {
    expect((await submit({ loras })).status).toBe(202);
  });

  it('refuses a token longer than any Hugging Face token, naming hf_token', async () => {
    const res = await submit({ hf_token: `hf_${'x'.repeat(600)}` });
    expect([res.status, res.body.error.code, res.body.error.field]).toEqual([400, 'invalid_hf_token', 'hf_token']);
  });

  it('refuses a token when the deployment cannot seal it, naming hf_token', async () => {
    const { config, objects, queues, redis } = stack;
    const app = createApp({ config: { ...config, SECRETS_KEY: undefined }, objects, queues, redis });
    const res = await request(app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('hf_token', 'hf_abc');
    expect([res.status, res.body.error.code, res.body.error.field]).toEqual([400, 'secrets_disabled', 'hf_token']);
  });
});
