import { ConfigError, configEnv, loadConfig } from '../src/config';

describe('config', () => {
  it('applies defaults for a bare environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ PORT: 8001, MAX_ATTEMPTS: 3, QUEUE_PREFIX: 'apex' });
  });

  it('fails fast with a message naming every bad variable', () => {
    expect(() => loadConfig({ MAX_ATTEMPTS: 'three', REDIS_URL: 'not a url' })).toThrow(ConfigError);
    expect(() => loadConfig({ MAX_ATTEMPTS: 'three', REDIS_URL: 'not a url' })).toThrow(/MAX_ATTEMPTS[\s\S]*REDIS_URL|REDIS_URL[\s\S]*MAX_ATTEMPTS/);
  });

  it('treats an empty OTLP endpoint (as an env file writes it) as tracing off, and refuses a bad one', () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }).OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  });

  it.each([
    ['', {}],
    ['{}', {}],
    ['{"acme": {"weight": 2}}', { acme: { weight: 2 } }],
    ['{"acme": {"inFlight": 50, "budgetUnits": 0}, "globex": {"budgetUnits": 5000000}}', { acme: { inFlight: 50, budgetUnits: 0 }, globex: { budgetUnits: 5000000 } }],
  ])('accepts the per-tenant limits TENANT_LIMITS=%s', (value, parsed) => {
    expect(loadConfig({ TENANT_LIMITS: value }).TENANT_LIMITS).toEqual(parsed);
  });

  it("configEnv gives a child process's environment that loads back as the same config, JSON and list settings included", () => {
    const config = loadConfig({ TENANT_LIMITS: '{"acme": {"weight": 2, "budgetUnits": 0}}', TRUST_PROXY: 'loopback, 10.0.0.0/8', GPU_BUDGET_UNITS: '5' });
    expect(loadConfig(configEnv(config))).toEqual(config);
  });

  it.each([
    ['acme=2', /must be JSON/],
    ['{"acme": {"weight": 0}}', /TENANT_LIMITS/],
    ['{"acme": {"weight": 2.5}}', /TENANT_LIMITS/],
    ['{"acme": {"inFlight": -1}}', /TENANT_LIMITS/],
    ['{"acme": {"budget": 100}}', /TENANT_LIMITS/],
    ['{"acme": 2}', /TENANT_LIMITS/],
    ['[1]', /TENANT_LIMITS/],
  ])('refuses TENANT_LIMITS=%s naming the variable', (value, message) => {
    expect(() => loadConfig({ TENANT_LIMITS: value })).toThrow(message);
    expect(() => loadConfig({ TENANT_LIMITS: value })).toThrow(/TENANT_LIMITS/);
  });
});
