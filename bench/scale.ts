/**
 * npm run bench:scale [-- --jobs N] [-- --processes 1,2,3]
 *
 * Throughput of the portrait engine with 1, 2 and 3 orchestrator processes (instant GPU-step
 * doubles in this process, the same services), printed as jobs/s and each count's ratio to one
 * process, with what explains the curve: how busy the machine's cores were, the orchestrators' CPU
 * per job, and the Redis cost per job. Each run first warms its processes up (JIT, connections)
 * with WARMUP jobs it does not time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { configEnv, loadConfig, type Config } from '../src/config';
import { runBench, withBenchServices } from './benchServices';
import { cpuMsByProgram, machineCpu, processCpuMs } from './cpuTime';
import { CONCURRENCY } from './instantGpu';
import { portraitBench } from './portraitJobs';
import { measureServers, perJob } from './serverCounters';

const ROOT = join(__dirname, '..');
const WARMUP = 50;

function startOrchestrator(config: Config): Promise<ChildProcess> {
  const env = { ...process.env, ...configEnv(config), LOG_LEVEL: 'info' };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/workers/main.ts', '--role', 'orchestrator'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('worker started') && resolve(child));
    child.once('exit', (code) => reject(new Error(`orchestrator exited with ${code}`)));
  });
}

async function run(base: Config, processes: number, jobs: number) {
  const config = loadConfig({ ...configEnv(base), QUEUE_PREFIX: `scale${processes}x${Date.now()}`, ORCHESTRATOR_CONCURRENCY: String(CONCURRENCY) });
  const bench = await portraitBench(config, WARMUP + jobs);
  const orchestrators = await Promise.all(Array.from({ length: processes }, () => startOrchestrator(config)));
  // Polled (a few commands every 50 ms): the orchestrators are other processes.
  const completed = async (count: number) => {
    while ((await bench.portraitQueue.getCompletedCount()) < count) await new Promise((r) => setTimeout(r, 50));
  };
  await Promise.all(Array.from({ length: WARMUP }, (_, i) => bench.enqueue(i)));
  await completed(WARMUP);

  const cost = await measureServers(bench.redis);
  const machineBefore = machineCpu();
  const programsBefore = cpuMsByProgram();
  const orchestratorCpuBefore = orchestrators.map((c) => processCpuMs(c.pid!));
  const started = performance.now();
  await Promise.all(Array.from({ length: jobs }, (_, i) => bench.enqueue(WARMUP + i)));
  await completed(WARMUP + jobs);
  const seconds = (performance.now() - started) / 1000;
  const machine = machineCpu();
  const programs = cpuMsByProgram();
  const orchestratorCpuMs = orchestrators.reduce((sum, c, i) => sum + processCpuMs(c.pid!) - orchestratorCpuBefore[i], 0);
  const spent = await cost.stop();
  await Promise.all(orchestrators.map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')))));
  await bench.close();
  const machineBusy = (machine.busyMs - machineBefore.busyMs) / (machine.totalMs - machineBefore.totalMs);
  // The MongoDB stand-in's share: FerretDB and PostgreSQL's processes (comm names are cut at 15 characters).
  const spentBy = (prefix: string) => [...programs].filter(([name]) => name.startsWith(prefix)).reduce((sum, [name, ms]) => sum + ms - (programsBefore.get(name) ?? 0), 0);
  const standInCpuMsPerJob = { ferretdb: spentBy('ferretdb') / jobs, postgres: spentBy('postgres') / jobs };
  return { processes, seconds, jobsPerSecond: jobs / seconds, cost: spent, machineBusy, orchestratorCpuMsPerJob: orchestratorCpuMs / jobs, standInCpuMsPerJob };
}

async function main() {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '600' }, processes: { type: 'string', default: '1,2,3' } } });
  const jobs = Number(values.jobs);
  await withBenchServices('scale', async (config) => {
    const runs = [];
    for (const processes of values.processes.split(',').map(Number)) runs.push(await run(config, processes, jobs));
    console.log(`\nscale benchmark: ${jobs} jobs queued at once (after ${WARMUP} untimed to warm up), instant GPU doubles, concurrency ${CONCURRENCY} per orchestrator process\n`);
    for (const r of runs) {
      const ratio = (r.jobsPerSecond / runs[0].jobsPerSecond).toFixed(2);
      console.log(`${r.processes} orchestrator process(es): ${r.jobsPerSecond.toFixed(1)} jobs/s (${r.seconds.toFixed(2)} s), ratio to ${runs[0].processes}: ${ratio}`);
      console.log(`  machine cores busy ${(100 * r.machineBusy).toFixed(0)}%; CPU per job: orchestrators ${r.orchestratorCpuMsPerJob.toFixed(2)} ms, FerretDB ${r.standInCpuMsPerJob.ferretdb.toFixed(2)} ms, PostgreSQL ${r.standInCpuMsPerJob.postgres.toFixed(2)} ms`);
      console.log(`  ${perJob(r.cost, jobs, { mongo: false })} (this process: the GPU doubles)`);
    }
  });
}

runBench(main);
