/**
 * Operator credentials are compared as fixed-length digests: a secret with as many characters as
 * ADMIN_TOKEN but other bytes (non-ASCII) is a plain 401 like any wrong one, not a 500 that tells
 * the token's length apart from every other length.
 */
import request from 'supertest';
import { createApp } from '../src/api/app';
import { startStack, type Stack } from './support/stack';

const ADMIN_TOKEN = 'ops-token-0123456789abcdef';
const UNICODE_TOKEN = 'pässwörd:with:colons-ü€-0123';
const ROUTES = ['/metrics', '/admin/queues'];

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

describe('operator credentials', () => {
  let stack: Stack;
  let unicodeApp: ReturnType<typeof createApp>;
  beforeAll(async () => {
    // Many wrong tries from one address here: the failed-auth limit is tested in failedAuthLimit.test.ts.
    stack = await startStack({ gpu: false, orchestrator: false, config: { ADMIN_TOKEN, FAILED_AUTH_PER_MINUTE: '100000' } });
    unicodeApp = createApp({ config: { ...stack.config, ADMIN_TOKEN: UNICODE_TOKEN }, objects: stack.objects, queues: stack.queues, redis: stack.redis });
  });
  afterAll(() => stack.close());

  const sameLength = (char: string) => char.repeat(ADMIN_TOKEN.length);
  const refused: [string, string | undefined][] = [
    ["Basic, 'é' as many times as the token has characters", basic('ops', sameLength('é'))],
    ["Bearer, 'é' as many times as the token has characters", `Bearer ${sameLength('é')}`],
    ["Basic, '€' (3 bytes each) as many times", basic('ops', sameLength('€'))],
    ["Basic, '🙂' (a surrogate pair) half as many times", basic('ops', '🙂'.repeat(ADMIN_TOKEN.length / 2))],
    ['Basic, the token with its last character changed', basic('ops', `${ADMIN_TOKEN.slice(0, -1)}g`)],
    ["Basic, the token with 'é' for its last character", basic('ops', `${ADMIN_TOKEN.slice(0, -1)}é`)],
    ['Basic, the token and one character more', basic('ops', `${ADMIN_TOKEN}x`)],
    ['Basic, the token less its last character', basic('ops', ADMIN_TOKEN.slice(0, -1))],
    ['Basic, the token as the user name', basic(ADMIN_TOKEN, '')],
    ['Basic, no colon', `Basic ${Buffer.from(ADMIN_TOKEN).toString('base64')}`],
    ['Bearer, the token upper-cased', `Bearer ${ADMIN_TOKEN.toUpperCase()}`],
    ['Bearer, nothing', 'Bearer '],
    ['another scheme', `Token ${ADMIN_TOKEN}`],
    ['no Authorization header', undefined],
  ];
  for (const route of ROUTES) {
    it.each(refused)(`${route} answers 401 admin_unauthorized to %s`, async (_what, authorization) => {
      const req = request(stack.app).get(route);
      const res = await (authorization === undefined ? req : req.set('Authorization', authorization));
      expect([res.status, res.body.error?.code, res.body.error?.field]).toEqual([401, 'admin_unauthorized', 'authorization']);
      expect(res.headers['www-authenticate']).toBe('Basic realm="apex-admin"');
    });
  }

  const accepted: [string, string][] = [
    ['Basic with a user name', basic('ops', ADMIN_TOKEN)],
    ['Basic with an empty user name', basic('', ADMIN_TOKEN)],
    ['Basic with a non-ASCII user name', basic('opérateur', ADMIN_TOKEN)],
    ['Bearer', `Bearer ${ADMIN_TOKEN}`],
    ['lower-case schemes', `basic ${Buffer.from(`ops:${ADMIN_TOKEN}`).toString('base64')}`],
    ['lower-case bearer', `bearer ${ADMIN_TOKEN}`],
  ];
  for (const route of ROUTES) {
    it.each(accepted)(`${route} answers 200 to the right token: %s`, async (_what, authorization) => {
      expect((await request(stack.app).get(route).set('Authorization', authorization)).status).toBe(200);
    });
  }

  it('takes a token with non-ASCII characters and colons, and refuses one as long with other characters', async () => {
    for (const route of ROUTES) {
      expect((await request(unicodeApp).get(route).set('Authorization', basic('ops', UNICODE_TOKEN))).status).toBe(200);
      const sameChars = basic('ops', 'a'.repeat([...UNICODE_TOKEN].length));
      const sameBytes = basic('ops', 'a'.repeat(Buffer.byteLength(UNICODE_TOKEN)));
      for (const wrong of [sameChars, sameBytes, basic('ops', UNICODE_TOKEN.normalize('NFD'))]) {
        expect([route, (await request(unicodeApp).get(route).set('Authorization', wrong)).status]).toEqual([route, 401]);
      }
    }
  });
});
