import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { EnvSchema } from '../src/config';
import { GPU_QUEUES } from '../src/flows/queues';

/**
 * What ties the deployment files to the code (scripts/check-deploy.sh checks their syntax and
 * schema): every variable they set is one the processes read, every command names a real role, and
 * KEDA reads the queue depths the API reports for the queues each pool serves.
 */
const ROOT = join(__dirname, '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const k8s = (file: string) => parseAllDocuments(read(`deploy/k8s/${file}`)).map((d) => d.toJSON());

const OTHER_CONSUMERS = /^(APEX_GPU_[A-Z_]+|HF_TOKEN|VLLM_API_KEY|MINIO_ROOT_(USER|PASSWORD))$/;
const known = (name: string) => name in EnvSchema.shape || OTHER_CONSUMERS.test(name);

describe('deployment files', () => {
  const compose = parse(read('docker-compose.yml'));
  const kustomization = parse(read('deploy/k8s/kustomization.yaml'));
  const manifests = (kustomization.resources as string[]).flatMap(k8s);

  it('set only variables that some process reads', () => {
    const envExample = read('.env.example').split('\n').filter((l) => /^[A-Z]/.test(l)).map((l) => l.split('=')[0]);
    const composeEnv = Object.values(compose.services as Record<string, { environment?: Record<string, string> }>).flatMap((s) => Object.keys(s.environment ?? {}));
    const configMap = manifests.find((m) => m.kind === 'ConfigMap').data as Record<string, string>;
    const unknown = [...envExample, ...composeEnv, ...Object.keys(configMap)].filter((n) => !known(n));
    expect(unknown).toEqual([]);
    // A TypeScript process must start on the ConfigMap's values alone (secrets aside).
    expect(() => EnvSchema.parse(Object.fromEntries(Object.entries(configMap).filter(([k]) => k in EnvSchema.shape)))).not.toThrow();
  });

  it('start real roles', () => {
    const commands = [
      ...Object.values(compose.services as Record<string, { command?: string[] }>).map((s) => s.command ?? []),
      ...manifests.filter((m) => m.kind === 'Deployment').map((m) => m.spec.template.spec.containers[0].command as string[]),
    ].filter((c) => c.includes('--role'));
    const roles = commands.map((c) => c[c.indexOf('--role') + 1]);
    expect(new Set(roles)).toEqual(new Set(['orchestrator', 'notifier', 'all', 'diffusion', 'training']));
    // Between them the GPU pools serve every GPU queue: portraits, generations and training each have their own.
    const served = commands.filter((c) => c.includes('--queues')).flatMap((c) => c[c.indexOf('--queues') + 1].split(','));
    expect(new Set(served)).toEqual(new Set(Object.keys(GPU_QUEUES)));
  });

  it('list every manifest in the kustomization, and KEDA scales each GPU pool on the depths of the queues it serves', () => {
    for (const file of kustomization.resources) expect(existsSync(join(ROOT, 'deploy/k8s', file))).toBe(true);
    const deployments = manifests.filter((m) => m.kind === 'Deployment');
    const apiService = manifests.find((m) => m.kind === 'Service' && m.metadata.name === 'api');
    const operator = manifests.find((m) => m.kind === 'TriggerAuthentication');
    const scaledOn: Record<string, string[]> = {};
    for (const scaled of manifests.filter((m) => m.kind === 'ScaledObject')) {
      const target = deployments.find((d) => d.metadata.name === scaled.spec.scaleTargetRef.name);
      const command: string[] = target.spec.template.spec.containers[0].command;
      const served = command[command.indexOf('--queues') + 1].split(',');
      type Trigger = { type: string; metadata: { url: string; valueLocation: string; authMode: string }; authenticationRef: { name: string } };
      for (const trigger of scaled.spec.triggers as Trigger[]) {
        // Read from the API's Service, with the operator's credentials (test/queueDepths.test.ts: what the route counts).
        expect(trigger).toMatchObject({ type: 'metrics-api', metadata: { url: `http://${apiService.metadata.name}/admin/queue-depths`, authMode: 'basic' }, authenticationRef: { name: operator.metadata.name } });
        expect(served).toContain(trigger.metadata.valueLocation);
      }
      scaledOn[target.metadata.name] = (scaled.spec.triggers as Trigger[]).map((t) => t.metadata.valueLocation);
    }
    expect(scaledOn).toEqual({ 'gpu-worker': ['portrait-generate'], 'gpu-generations': ['generate'], 'gpu-training': ['train_identity', 'prepare_identity', 'evaluate_identity'] });
    expect(operator.spec.secretTargetRef.map((r: { key: string }) => r.key)).toEqual(['ADMIN_TOKEN', 'ADMIN_TOKEN']);
  });
});
