import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { isPublicAddress, resolveOutboundTarget, UnsafeTarget, type Resolver } from '../src/flows/webhooks/outboundTarget';
import { PUBLIC_ADDRESS_EXAMPLES } from '../src/flows/webhooks/publicAddresses';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

// Public addresses, literal and behind names; an injected resolver answers, so no test leaves the machine.
// The examples are shared with the GPU worker's tests (contracts/outbound-addresses.json).
const MUST_ACCEPT = PUBLIC_ADDRESS_EXAMPLES.public;
const MUST_REFUSE = PUBLIC_ADDRESS_EXAMPLES.notPublic;

const names: Record<string, string> = { 'hooks.example.com': '93.184.215.14', 'v6.example.com': '2606:4700:4700::1111', 'rebind.example.com': '127.0.0.1', 'metadata.example.com': '169.254.169.254' };
const resolver: Resolver = async (host) => {
  const address = names[host];
  if (!address) throw new Error(`no test answer for ${host}`);
  return { address, family: address.includes(':') ? 6 : 4 };
};
const url = (address: string) => `https://${address.includes(':') ? `[${address}]` : address}/hook`;

describe('outbound target guard (SSRF)', () => {
  it.each(MUST_ACCEPT)('accepts the public address %s', async (address) => {
    expect(isPublicAddress(address)).toBe(true);
    await expect(resolveOutboundTarget(url(address), false, resolver)).resolves.toHaveProperty('address');
  });

  it.each(MUST_REFUSE)('refuses the non-public address %s', async (address) => {
    expect(isPublicAddress(address)).toBe(false);
    if (!address.includes('%')) await expect(resolveOutboundTarget(url(address), false, resolver)).rejects.toThrow(UnsafeTarget);
  });

  it.each([['hooks.example.com', '93.184.215.14'], ['v6.example.com', '2606:4700:4700::1111']])('accepts %s, a name resolving to %s', async (host, address) => {
    await expect(resolveOutboundTarget(`https://${host}/hook`, false, resolver)).resolves.toMatchObject({ address });
  });

  it.each(['rebind.example.com', 'metadata.example.com'])('refuses %s, a name resolving to a private address', async (host) => {
    await expect(resolveOutboundTarget(`https://${host}/hook`, false, resolver)).rejects.toThrow(/not a public address/);
  });

  it('lets a deployment that allows private targets reach them, and refuses other schemes and credentials whatever it allows', async () => {
    await expect(resolveOutboundTarget('http://127.0.0.1:8080/hook', true, resolver)).resolves.toMatchObject({ address: '127.0.0.1' });
    await expect(resolveOutboundTarget('ftp://8.8.8.8/hook', true, resolver)).rejects.toThrow(/http or https/);
    await expect(resolveOutboundTarget('https://user:pw@8.8.8.8/hook', true, resolver)).rejects.toThrow(/credentials/);
  });

  // The production bug: with private targets refused (the default), every public IPv4 webhook was refused.
  describe('at the API, with private targets refused', () => {
    let stack: Stack;
    beforeAll(async () => {
      // Nothing runs the jobs, so an accepted target is never contacted.
      stack = await startStack({
        orchestrator: false,
        gpu: false,
        config: { WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`, SECRETS_KEY: randomBytes(32).toString('base64'), AUTH_MODE: 'open' },
      });
    });
    afterAll(() => stack.close());

    const submitJob = async (webhookUrl: string) =>
      request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('webhook_url', webhookUrl);
    const submitGeneration = (endpoint: string) =>
      request(stack.app)
        .post('/generations')
        .send({ prompt: 'a lighthouse', destination: { bucket: 'my-renders', endpoint }, secrets: { s3: { access_key_id: 'AKIA', secret_access_key: 'shh' } } });

    it.each(['http://8.8.8.8/hook', 'https://1.1.1.1/hook', 'http://93.184.215.14:8080/hook', 'https://[2606:4700:4700::1111]/hook', 'https://[::ffff:8.8.8.8]/hook'])(
      'POST /jobs accepts the webhook %s',
      async (target) => {
        const res = await submitJob(target);
        expect(res.status).toBe(202);
      },
    );

    it.each(['http://127.0.0.1/hook', 'http://10.1.2.3/hook', 'http://[::1]/hook', 'http://[::127.0.0.1]/hook', 'http://[::ffff:0:127.0.0.1]/hook', 'http://[2002:7f00:1::]/hook', 'http://[fec0::1]/hook', 'http://[100::1]/hook'])(
      'POST /jobs refuses the webhook %s, naming webhook_url',
      async (target) => {
        const res = await submitJob(target);
        expect(res.status).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'invalid_webhook', field: 'webhook_url' });
        expect(res.body.error.message).toMatch(/not a public address/);
      },
    );

    it('POST /generations accepts a public destination endpoint and refuses a private one, naming destination.endpoint', async () => {
      for (const endpoint of ['https://8.8.8.8', 'http://1.1.1.1:9000', 'https://[2001:4860:4860::8888]']) {
        expect((await submitGeneration(endpoint)).status).toBe(202);
      }
      for (const endpoint of ['http://127.0.0.1:9000', 'http://169.254.169.254', 'http://[::ffff:127.0.0.1]']) {
        const res = await submitGeneration(endpoint);
        expect(res.status).toBe(400);
        expect(res.body.error.field).toBe('destination.endpoint');
      }
    });
  });
});
