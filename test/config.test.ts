import { ConfigError, loadConfig } from '../src/config';

describe('config', () => {
  it('applies defaults for a bare environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ PORT: 8001, MAX_ATTEMPTS: 3, QUEUE_PREFIX: 'apex' });
  });

  it('fails fast with a message naming every bad variable', () => {
    expect(() => loadConfig({ MAX_ATTEMPTS: 'three', REDIS_URL: 'not a url' })).toThrow(ConfigError);
    expect(() => loadConfig({ MAX_ATTEMPTS: 'three', REDIS_URL: 'not a url' })).toThrow(/MAX_ATTEMPTS[\s\S]*REDIS_URL|REDIS_URL[\s\S]*MAX_ATTEMPTS/);
  });
});
