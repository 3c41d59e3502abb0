import type { Redis } from 'ioredis';
import { logger } from '../logger';
import { metricsKey } from './redisKeys';
import type { StepOutcome } from './steps/outcomes';
import type { StepName } from './steps/registry';

type MetricSpec = { help: string; type: 'histogram' | 'counter'; buckets?: number[] };

/**
 * Workflow metrics observed by the orchestrator processes (which serve no HTTP) and exposed by
 * every API process's /metrics: they are aggregated in Redis hashes, one per metric, so any number
 * of orchestrators add to the same series. Observations happen when an orchestrator folds a step's
 * outcome; a fold replayed after a crash counts again (at-least-once, like the SSE events).
 */
const METRICS = {
  apex_step_duration_seconds: {
    help: 'GPU step run time (its last try, start to finish) by step and outcome',
    type: 'histogram',
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
  },
  apex_gpu_generate_phase_seconds: {
    help: 'Timings the GPU worker reports for each generate step, by phase (queueWait, loraLoad, denoise, upload)',
    type: 'histogram',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
  },
  apex_step_tries: { help: 'Tries a GPU step needed (BullMQ attempts), by step', type: 'histogram', buckets: [1, 2, 3, 5, 10, 20] },
  apex_portrait_attempts: { help: 'Attempts a finished portrait job used, by final status', type: 'histogram', buckets: [1, 2, 3, 4, 5, 6, 8, 10] },
  apex_validations_total: { help: 'Validation verdicts by result (passed or rejected)', type: 'counter' },
} satisfies Record<string, MetricSpec>;

type MetricName = keyof typeof METRICS;
type Labels = Record<string, string>;

const hashKey = (prefix: string, name: MetricName) => metricsKey(prefix, name);
const labelText = (labels: Labels) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/[^A-Za-z0-9_.-]/g, '_')}"`)
    .join(',');

export class WorkflowMetrics {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** A GPU step's outcome, as the orchestrator folds it. */
  async stepFinished(step: StepName, outcome: StepOutcome): Promise<void> {
    const writes: Promise<void>[] = [];
    if (outcome.status !== 'timed_out') {
      if (outcome.startedAt && outcome.finishedAt) {
        writes.push(this.observe('apex_step_duration_seconds', { step, outcome: outcome.status }, (outcome.finishedAt - outcome.startedAt) / 1000));
      }
      if (outcome.tries) writes.push(this.observe('apex_step_tries', { step }, outcome.tries));
    }
    if (outcome.status === 'completed') {
      const value = outcome.value as { timings?: Record<string, unknown>; passed?: unknown };
      if (step === 'generate') {
        for (const [name, seconds] of Object.entries(value?.timings ?? {})) {
          if (name.endsWith('Seconds') && typeof seconds === 'number') writes.push(this.observe('apex_gpu_generate_phase_seconds', { phase: name.slice(0, -7) }, seconds));
        }
      }
      if (step === 'validate') writes.push(this.count('apex_validations_total', { result: value?.passed === true ? 'passed' : 'rejected' }));
    }
    await Promise.all(writes);
  }

  portraitFinished(status: string, attempts: number): Promise<void> {
    return this.observe('apex_portrait_attempts', { status }, attempts);
  }

  private observe(name: MetricName, labels: Labels, value: number): Promise<void> {
    const key = hashKey(this.prefix, name);
    const series = labelText(labels);
    const multi = this.redis.multi();
    for (const le of (METRICS[name] as MetricSpec).buckets!) if (value <= le) multi.hincrby(key, `${series}|${le}`, 1);
    multi.hincrby(key, `${series}|count`, 1).hincrbyfloat(key, `${series}|sum`, value);
    return this.run(multi.exec(), name);
  }

  private count(name: MetricName, labels: Labels): Promise<void> {
    return this.run(this.redis.hincrby(hashKey(this.prefix, name), `${labelText(labels)}|count`, 1), name);
  }

  /** A metric lost to a Redis blip is not worth failing (and replaying) a workflow transition for. */
  private run(write: Promise<unknown>, name: string): Promise<void> {
    return write.then(
      () => undefined,
      (err) => void logger.warn('metric not recorded', { metric: name, error: String(err) }),
    );
  }
}

/** The aggregated workflow metrics in Prometheus text format, plus the validation pass ratio. */
export async function renderWorkflowMetrics(redis: Redis, prefix: string): Promise<string> {
  const lines: string[] = [];
  let passed = 0;
  let judged = 0;
  for (const [name, spec] of Object.entries(METRICS) as [MetricName, MetricSpec][]) {
    const fields = await redis.hgetall(hashKey(prefix, name));
    const bySeries = new Map<string, Record<string, string>>();
    for (const [field, value] of Object.entries(fields)) {
      const [series, part] = [field.slice(0, field.lastIndexOf('|')), field.slice(field.lastIndexOf('|') + 1)];
      bySeries.set(series, { ...bySeries.get(series), [part]: value });
    }
    lines.push(`# HELP ${name} ${spec.help}`, `# TYPE ${name} ${spec.type}`);
    for (const [series, parts] of bySeries) {
      const count = Number(parts.count ?? 0);
      if (spec.type === 'counter') {
        lines.push(`${name}{${series}} ${count}`);
        judged += count;
        if (series.includes('result="passed"')) passed += count;
        continue;
      }
      const sep = series ? ',' : '';
      for (const le of spec.buckets!) lines.push(`${name}_bucket{${series}${sep}le="${le}"} ${Number(parts[String(le)] ?? 0)}`);
      lines.push(`${name}_bucket{${series}${sep}le="+Inf"} ${count}`, `${name}_sum{${series}} ${Number(parts.sum ?? 0)}`, `${name}_count{${series}} ${count}`);
    }
  }
  lines.push('# HELP apex_validation_pass_ratio Share of validation verdicts that passed (NaN before the first)', '# TYPE apex_validation_pass_ratio gauge');
  lines.push(`apex_validation_pass_ratio ${judged ? passed / judged : 'NaN'}`);
  return lines.join('\n') + '\n';
}
