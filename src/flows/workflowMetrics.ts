import type { ChainableCommander, Redis } from 'ioredis';
import { metricsKey } from './redisKeys';
import type { StepOutcome } from './steps/outcomes';
import type { StepName } from './steps/registry';

type MetricSpec = { help: string; type: 'histogram' | 'counter'; buckets?: number[] };

/**
 * Workflow metrics observed by the orchestrator processes (which serve no HTTP) and exposed by
 * every API process's /metrics: they are aggregated in Redis hashes, one per metric, so any number
 * of orchestrators add to the same series. An observation joins the hand-off that records the
 * step's outcome (one MULTI, a few HINCRBYs: the bucket it falls in, count and sum; the render
 * accumulates the buckets). A transition replayed after a crash counts again (at-least-once, like
 * the SSE events).
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
  apex_erasures_total: {
    help: 'Resources erased, by kind (job, generation, batch, job_inputs: a job whose photos were erased) and trigger (request, retention, tenant, replay)',
    type: 'counter',
  },
} satisfies Record<string, MetricSpec>;

type MetricName = keyof typeof METRICS;
type Labels = Record<string, string>;

const hashKey = (prefix: string, name: MetricName) => metricsKey(prefix, name);
const labelText = (labels: Labels) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/[^A-Za-z0-9_.-]/g, '_')}"`)
    .join(',');
/** The hash field of the one bucket an observation falls in (not cumulative: the render adds them up). */
const BUCKET = 'in:';

export class WorkflowMetrics {
  constructor(private readonly prefix: string) {}

  /** A GPU step's outcome, queued on the hand-off that folds it. */
  stepFinished(tx: ChainableCommander, step: StepName, outcome: StepOutcome): void {
    if (outcome.status !== 'timed_out') {
      if (outcome.startedAt && outcome.finishedAt) {
        this.observe(tx, 'apex_step_duration_seconds', { step, outcome: outcome.status }, (outcome.finishedAt - outcome.startedAt) / 1000);
      }
      if (outcome.tries) this.observe(tx, 'apex_step_tries', { step }, outcome.tries);
    }
    if (outcome.status === 'completed') {
      const value = outcome.value as { timings?: Record<string, unknown>; passed?: unknown };
      if (step === 'generate') {
        for (const [name, seconds] of Object.entries(value?.timings ?? {})) {
          if (name.endsWith('Seconds') && typeof seconds === 'number') this.observe(tx, 'apex_gpu_generate_phase_seconds', { phase: name.slice(0, -7) }, seconds);
        }
      }
      if (step === 'validate') tx.hincrby(hashKey(this.prefix, 'apex_validations_total'), `${labelText({ result: value?.passed === true ? 'passed' : 'rejected' })}|count`, 1);
    }
  }

  portraitFinished(tx: ChainableCommander, status: string, attempts: number): void {
    this.observe(tx, 'apex_portrait_attempts', { status }, attempts);
  }

  /** Erasures, counted on their own (an erasure is no workflow transition); every process adds to the same series. */
  async erased(redis: Redis, kind: string, trigger: string, count = 1): Promise<void> {
    if (count > 0) await redis.hincrby(hashKey(this.prefix, 'apex_erasures_total'), `${labelText({ kind, trigger })}|count`, count);
  }

  private observe(tx: ChainableCommander, name: MetricName, labels: Labels, value: number): void {
    const key = hashKey(this.prefix, name);
    const series = labelText(labels);
    const bucket = (METRICS[name] as MetricSpec).buckets!.find((le) => value <= le);
    if (bucket !== undefined) tx.hincrby(key, `${series}|${BUCKET}${bucket}`, 1);
    tx.hincrby(key, `${series}|count`, 1).hincrbyfloat(key, `${series}|sum`, value);
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
        if (name !== 'apex_validations_total') continue;
        judged += count;
        if (series.includes('result="passed"')) passed += count;
        continue;
      }
      const sep = series ? ',' : '';
      let cumulative = 0;
      for (const le of spec.buckets!) {
        cumulative += Number(parts[`${BUCKET}${le}`] ?? 0);
        lines.push(`${name}_bucket{${series}${sep}le="${le}"} ${cumulative}`);
      }
      lines.push(`${name}_bucket{${series}${sep}le="+Inf"} ${count}`, `${name}_sum{${series}} ${Number(parts.sum ?? 0)}`, `${name}_count{${series}} ${count}`);
    }
  }
  lines.push('# HELP apex_validation_pass_ratio Share of validation verdicts that passed (NaN before the first)', '# TYPE apex_validation_pass_ratio gauge');
  lines.push(`apex_validation_pass_ratio ${judged ? passed / judged : 'NaN'}`);
  return lines.join('\n') + '\n';
}
