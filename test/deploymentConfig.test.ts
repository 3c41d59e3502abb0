import { DEFAULT_PORTS, deploymentConfig } from '../scripts/deployment';

describe("a local deployment's configuration", () => {
  it('puts its data in APEX_HOME, else under XDG_DATA_HOME, else ~/.local/share', () => {
    expect(deploymentConfig({ APEX_HOME: '/srv/apex' })).toMatchObject({ home: '/srv/apex', dataDir: '/srv/apex/data' });
    expect(deploymentConfig({ XDG_DATA_HOME: '/data' }).home).toBe('/data/apex-portraits');
    expect(deploymentConfig({}).home).toMatch(/\/\.local\/share\/apex-portraits$/);
  });

  it.each([
    ['PORT', '8080', 'api', 8080],
    ['APEX_REDIS_PORT', '1', 'redis', 1],
    ['APEX_POSTGRES_PORT', '65535', 'postgres', 65535],
    ['APEX_MONGO_PORT', '27017', 'mongodb', 27017],
    ['APEX_S3_PORT', '', 's3', DEFAULT_PORTS.s3],
  ] as const)('accepts %s=%p', (variable, value, name, port) => {
    expect(deploymentConfig({ [variable]: value }).ports[name]).toBe(port);
  });

  it.each([
    ['PORT', 'http'],
    ['APEX_REDIS_PORT', '0'],
    ['APEX_POSTGRES_PORT', '65536'],
    ['APEX_MONGO_PORT', '27017.5'],
    ['APEX_S3_CONSOLE_PORT', '-1'],
  ])('refuses %s=%p, naming the variable', (variable, value) => {
    expect(() => deploymentConfig({ [variable]: value })).toThrow(new RegExp(`^${variable} must be a port number`));
  });
});
