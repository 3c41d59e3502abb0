import { objectStoreOrigin } from '../../src/api/routes/studio';
import { loadConfig } from '../../src/config';
import { ObjectStore } from '../../src/store/objectStore';

/**
 * The page's CSP allows images from objectStoreOrigin(); it must be the origin the S3 client really
 * signs URLs for, or a generation's images would be blocked. Presigning needs no server.
 */
describe("the CSP's object-store origin is the origin of the presigned URLs", () => {
  it.each([
    ['MinIO, path style (local default)', { S3_ENDPOINT: 'http://127.0.0.1:9000' }],
    ['a named endpoint, virtual-hosted style', { S3_ENDPOINT: 'https://objects.example.com:9443', S3_FORCE_PATH_STYLE: 'false' }],
    ['an IP endpoint, virtual-hosted asked (the client falls back to path style)', { S3_ENDPOINT: 'http://10.0.0.5:9000', S3_FORCE_PATH_STYLE: 'false' }],
    ['AWS, path style', { S3_REGION: 'eu-west-1' }],
    ['AWS, virtual-hosted style', { S3_REGION: 'eu-west-1', S3_FORCE_PATH_STYLE: 'false' }],
    ['AWS, virtual-hosted asked, a bucket with dots (path style)', { S3_BUCKET: 'portraits.example.com', S3_FORCE_PATH_STYLE: 'false' }],
  ])('%s', async (_case, env) => {
    const config = loadConfig({ S3_ACCESS_KEY_ID: 'id', S3_SECRET_ACCESS_KEY: 'secret', ...env });
    const objects = ObjectStore.fromConfig(config);
    const signed = new URL(await objects.presignedGetUrl('renders/0.png', 60));
    objects.client.destroy();
    expect(objectStoreOrigin(config)).toBe(signed.origin);
  });
});
