import { randomBytes } from 'node:crypto';
import { openSecrets, sealSecrets, secretsBinding, type Destination } from '../src/flows/secrets';

const key = randomBytes(32).toString('base64');
const destination: Destination = { bucket: 'bucket-a', endpoint: 'https://s3.example.com', prefix: 'renders/', region: 'eu-west-1' };
const keys = { s3: { access_key_id: 'AKIA', secret_access_key: 'shh' } };

describe('sealed per-request secrets', () => {
  it('binds to the job and its destination with the bytes the Python worker builds (shared test vector)', () => {
    expect(secretsBinding('job1', destination)).toBe('["job1","bucket-a","https://s3.example.com","renders/","eu-west-1"]');
    expect(secretsBinding('job1', { bucket: 'bucket-a' })).toBe('["job1","bucket-a","","",""]');
    expect(secretsBinding('job1')).toBe('job1');
  });

  it('opens for the destination it was sealed for', () => {
    const envelope = sealSecrets(key, secretsBinding('job1', destination), keys);
    expect(openSecrets(key, secretsBinding('job1', { ...destination }), envelope)).toEqual(keys);
  });

  it.each([
    ['another endpoint', { ...destination, endpoint: 'http://127.0.0.1:9000' }],
    ['another bucket', { ...destination, bucket: 'bucket-b' }],
    ['another prefix', { ...destination, prefix: 'stolen/' }],
    ['another region', { ...destination, region: 'us-east-1' }],
    ['no destination', undefined],
  ])('refuses to open once the destination is changed: %s', (_what, edited) => {
    const envelope = sealSecrets(key, secretsBinding('job1', destination), keys);
    expect(() => openSecrets(key, secretsBinding('job1', edited), envelope)).toThrow();
    expect(() => openSecrets(key, secretsBinding('job2', destination), envelope)).toThrow();
  });
});
