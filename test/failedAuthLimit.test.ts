/**
 * Failed authentication is limited per client address, in Redis (every API process counts
 * together): wrong API keys and wrong operator credentials share one count, and past it the address
 * gets 429 with Retry-After before its credentials are looked at, for a minute from its first
 * failure, however many tries arrive at once. Right credentials under the limit, requests without
 * credentials and other addresses are served as before. The window is the count's TTL in Redis,
 * which the tests shorten instead of waiting: nothing here depends on the wall clock.
 */
import request from 'supertest';
import { createApp } from '../src/api/app';
import { addressBucket } from '../src/api/failedAuthLimit';
import { loadConfig } from '../src/config';
import { failedAuthKey } from '../src/flows/redisKeys';
import { createApiKey } from '../src/store/apiKeyModel';
import { configEnv, startStack, type Stack } from './support/stack';

const ADMIN_TOKEN = 'ops-token-0123456789abcdef';
const LIMIT = 5;
const WRONG_KEY = 'Bearer apx_0000000000000000_wrongwrongwrongwrongwrongwrongwrongwron';

describe('the failed-authentication limit', () => {
  let stack: Stack;
  let key: string;
  let otherProcess: ReturnType<typeof createApp>;
  let next = 0;
  /** A fresh client address per use (the API trusts X-Forwarded-For from loopback, as behind a local proxy). */
  const address = () => `198.51.100.${++next}`;

  beforeAll(async () => {
    stack = await startStack({
      gpu: false,
      orchestrator: false,
      config: { AUTH_MODE: 'required', ADMIN_TOKEN, FAILED_AUTH_PER_MINUTE: String(LIMIT), RATE_LIMIT_PER_MINUTE: '100000' },
    });
    key = `Bearer ${(await createApiKey('acme')).key}`;
    // A second API process on the same Redis and MongoDB.
    otherProcess = createApp({ config: stack.config, objects: stack.objects, queues: stack.queues, redis: stack.redis });
  });
  afterAll(() => stack.close());

  const get = (from: string, path: string, authorization?: string, app = stack.app) => {
    const req = request(app).get(path).set('X-Forwarded-For', from);
    return authorization === undefined ? req : req.set('Authorization', authorization);
  };
  const operator = (password: string) => `Basic ${Buffer.from(`ops:${password}`).toString('base64')}`;
  const failures: Record<string, (from: string) => Promise<unknown>> = {
    'wrong API keys': (from) => get(from, '/jobs', WRONG_KEY).expect(401),
    'malformed API keys': (from) => get(from, '/jobs', 'Bearer not-a-key').expect(401),
    'wrong operator passwords on /metrics': (from) => get(from, '/metrics', operator('wrong-password-0123456789')).expect(401),
    'wrong operator tokens on /admin/queues': (from) => get(from, '/admin/queues', 'Bearer wrong-password-0123456789').expect(401),
  };
  const failTimes = async (from: string, n: number, kinds = Object.values(failures)) => {
    for (let i = 0; i < n; i++) await kinds[i % kinds.length](from);
  };
  const expect429 = (res: request.Response) => {
    expect([res.status, res.body.error?.code, res.body.error?.field]).toEqual([429, 'too_many_failed_auth', 'authorization']);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
  };

  describe('refuses, with 429 and Retry-After, once an address has failed FAILED_AUTH_PER_MINUTE times', () => {
    it.each(Object.keys(failures))('after %s: every further try, the right API key and the right operator token too', async (kind) => {
      const from = address();
      await failTimes(from, LIMIT, [failures[kind]]);
      expect429(await get(from, '/jobs', WRONG_KEY));
      expect429(await get(from, '/jobs', key)); // else guessing would go on, the answers telling right from wrong
      expect429(await get(from, '/metrics', operator(ADMIN_TOKEN)));
      expect429(await get(from, '/admin/queues', `Bearer ${ADMIN_TOKEN}`));
      expect429(await get(from, '/admin/queues/api/queues', operator(ADMIN_TOKEN)));
    });

    it('counts tenant keys and operator credentials together', async () => {
      const from = address();
      await failTimes(from, LIMIT); // every kind in turn
      expect429(await get(from, '/metrics', operator('again-wrong-0123456789')));
    });

    it('counts across API processes', async () => {
      const from = address();
      await failTimes(from, LIMIT - 1);
      await get(from, '/jobs', WRONG_KEY, otherProcess).expect(401);
      expect429(await get(from, '/jobs', key));
      expect429(await get(from, '/jobs', key, otherProcess));
    });

    it('counts an IPv6 /64 as one address', async () => {
      for (let i = 1; i <= LIMIT; i++) await get(`2001:db8:77:1::${i.toString(16)}`, '/jobs', WRONG_KEY).expect(401);
      expect429(await get('2001:db8:77:1:ffff:ffff:ffff:fffe', '/jobs', key));
    });

    it('keeps the count in Redis for a minute from the first failure', async () => {
      const from = address();
      await failTimes(from, 1);
      const keys = await stack.redis.keys(failedAuthKey(stack.config.QUEUE_PREFIX, from));
      expect(keys).toHaveLength(1);
      const ttl = await stack.redis.pttl(keys[0]);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(61_000);
    });
  });

  describe('counts tries that arrive at once, and a window from the first failure', () => {
    const countOf = (from: string) => failedAuthKey(stack.config.QUEUE_PREFIX, from);
    const statuses = (responses: request.Response[]) => {
      const counts: Record<number, number> = {};
      for (const r of responses) counts[r.status] = (counts[r.status] ?? 0) + 1;
      return counts;
    };

    it('lets FAILED_AUTH_PER_MINUTE of a burst of concurrent wrong credentials be looked up, across processes; the rest get 429', async () => {
      const from = address();
      const burst = await Promise.all(
        Array.from({ length: 6 * LIMIT }, (_, i) =>
          i % 3 === 2 ? get(from, '/admin/queues', 'Bearer wrong-password-0123456789') : get(from, '/jobs', WRONG_KEY, i % 2 ? otherProcess : stack.app),
        ),
      );
      expect(statuses(burst)).toEqual({ 401: LIMIT, 429: 5 * LIMIT });
      for (const res of burst.filter((r) => r.status === 429)) expect429(res);
    });

    it('serves a burst of concurrent right credentials whole, however many more than the limit (they wait for one another, not refused)', async () => {
      const from = address();
      await failTimes(from, LIMIT - 1);
      const burst = await Promise.all(
        Array.from({ length: 4 * LIMIT }, (_, i) => (i % 2 ? get(from, '/jobs', key, otherProcess) : get(from, '/metrics', operator(ADMIN_TOKEN)))),
      );
      expect(statuses(burst)).toEqual({ 200: 4 * LIMIT });
      expect(await stack.redis.hget(countOf(from), 'failed')).toBe(String(LIMIT - 1)); // given back, the failures kept
    });

    it("runs the window from the address's first failure: Retry-After is what is left of it", async () => {
      const from = address();
      await failTimes(from, 1);
      expect(await stack.redis.pexpire(countOf(from), 10_900)).toBe(1); // as if 49.1 s had passed since that failure
      await failTimes(from, LIMIT - 1);
      const res = await get(from, '/jobs', key);
      expect429(res);
      const left = await stack.redis.pttl(countOf(from));
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(Math.ceil(left / 1000));
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(11);
    });

    it('starts the address afresh once its window has passed', async () => {
      const from = address();
      await failTimes(from, LIMIT);
      expect429(await get(from, '/jobs', key));
      await stack.redis.pexpire(countOf(from), 1); // the minute is over
      await new Promise((resolve) => setTimeout(resolve, 10));
      await get(from, '/jobs', key).expect(200);
      await failTimes(from, LIMIT - 1); // a whole new allowance
      await get(from, '/jobs', key).expect(200);
    });

    it('does not start afresh when a wall-clock minute turns (that gave twice the limit around each turn)', async () => {
      const from = address();
      const turn = Math.ceil(Date.now() / 60_000) * 60_000;
      const now = jest.spyOn(Date, 'now').mockReturnValue(turn - 100);
      try {
        await failTimes(from, LIMIT);
        now.mockReturnValue(turn + 100);
        expect429(await get(from, '/jobs', WRONG_KEY));
      } finally {
        now.mockRestore();
      }
    });
  });

  describe('serves', () => {
    it('the right API key and operator token after fewer failures than the limit', async () => {
      const from = address();
      await failTimes(from, LIMIT - 1);
      await get(from, '/jobs', key).expect(200);
      await get(from, '/metrics', operator(ADMIN_TOKEN)).expect(200);
      await get(from, '/admin/queues', `Bearer ${ADMIN_TOKEN}`).expect(200);
    });

    it('any number of successful requests, which do not count', async () => {
      const from = address();
      for (let i = 0; i < 3 * LIMIT; i++) await get(from, i % 2 ? '/jobs' : '/metrics', i % 2 ? key : operator(ADMIN_TOKEN)).expect(200);
      await failTimes(from, LIMIT - 1);
      await get(from, '/jobs', key).expect(200);
    });

    it('requests without credentials, which neither count nor are refused here (a browser asks for the dashboard first without any)', async () => {
      const from = address();
      for (let i = 0; i < 3 * LIMIT; i++) {
        const res = await get(from, i % 2 ? '/jobs' : '/admin/queues');
        expect(res.status).toBe(401);
      }
      await get(from, '/jobs', key).expect(200);
      await get(from, '/admin/queues', operator(ADMIN_TOKEN)).expect(200);
    });

    it('other addresses while one is refused: their right credentials, and their wrong ones get 401, not 429', async () => {
      const blocked = address();
      await failTimes(blocked, LIMIT);
      expect429(await get(blocked, '/jobs', key));
      for (const other of [address(), '198.51.101.1', '2001:db8:77:2::1', '127.0.0.1']) {
        await get(other, '/jobs', WRONG_KEY).expect(401);
        await get(other, '/jobs', key).expect(200);
        await get(other, '/metrics', operator(ADMIN_TOKEN)).expect(200);
      }
    });

    it('the unauthenticated routes of a refused address', async () => {
      const from = address();
      await failTimes(from, LIMIT);
      await get(from, '/health').expect(200);
      await get(from, '/openapi.json').expect(200);
    });
  });

  describe('takes the client address from X-Forwarded-For only when the proxy sending it is trusted (TRUST_PROXY)', () => {
    /** An API process with this TRUST_PROXY; requests reach it from 127.0.0.1. */
    const behind = (trustProxy: string) =>
      createApp({ config: loadConfig({ ...configEnv(stack.config), TRUST_PROXY: trustProxy }), objects: stack.objects, queues: stack.queues, redis: stack.redis });

    it.each([['loopback'], ['127.0.0.1'], ['127.0.0.0/8, ::1'], ['loopback, uniquelocal'], ['1']])(
      'with TRUST_PROXY=%s, believes the loopback proxy: one forwarded address refused leaves the next served',
      async (trustProxy) => {
        const app = behind(trustProxy);
        const [refused, served] = [address(), address()];
        for (let i = 0; i < LIMIT; i++) await get(refused, '/jobs', WRONG_KEY, app).expect(401);
        expect429(await get(refused, '/jobs', key, app));
        await get(served, '/jobs', key, app).expect(200);
      },
    );

    it.each([['uniquelocal'], ['10.0.0.0/8'], ['0']])('with TRUST_PROXY=%s, ignores what a loopback sender forwards: its forwarded addresses share one count', async (trustProxy) => {
      const app = behind(trustProxy);
      const loopbackCount = failedAuthKey(stack.config.QUEUE_PREFIX, '127.0.0.1');
      await stack.redis.del(loopbackCount);
      for (let i = 0; i < LIMIT; i++) await get(address(), '/jobs', WRONG_KEY, app).expect(401);
      expect429(await get(address(), '/jobs', key, app));
      await stack.redis.del(loopbackCount);
    });

    it.each([['true'], ['everyone'], ['10.0.0.0/33'], ['::/129'], ['10.0.0.1/8/8'], ['loopback/8'], ['-1'], ['']])('refuses TRUST_PROXY=%j at start, naming it', (trustProxy) => {
      expect(() => loadConfig({ TRUST_PROXY: trustProxy })).toThrow(/TRUST_PROXY/);
    });

    it.each([
      ['loopback', ['loopback']],
      ['loopback, linklocal, uniquelocal', ['loopback', 'linklocal', 'uniquelocal']],
      ['10.0.0.0/8,fd00::/8', ['10.0.0.0/8', 'fd00::/8']],
      ['203.0.113.9', ['203.0.113.9']],
      ['2', 2],
    ])('takes TRUST_PROXY=%j', (trustProxy, parsed) => {
      expect(loadConfig({ TRUST_PROXY: trustProxy }).TRUST_PROXY).toEqual(parsed);
    });

    it('is loopback unless set', () => {
      expect(loadConfig({}).TRUST_PROXY).toEqual(['loopback']);
    });
  });

  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['2001:0db8:0001:0002::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
  ])('counts %s as %s', (ip, bucket) => {
    expect(addressBucket(ip)).toBe(bucket);
  });
});
