import { PortraitState } from '../src/flows/contracts/portraitState';
import { applyStepOutcome, buildStepInput, markStepQueued, planNextStep, seedFor, type NextStep } from '../src/flows/portrait/stateMachine';
import { STEPS } from '../src/flows/steps/registry';

const jobId = '65a1b2c3d4e5f60718293a4b';
const initial = PortraitState.parse({ jobId, parameters: { resolution: '2k' }, referenceImageKey: `jobs/${jobId}/reference.jpg`, maxAttempts: 2 });

type StepNext = Extract<NextStep, { kind: 'step' }>;

/** Runs the state machine with the given step results, as the orchestrator would. */
function drive(results: (next: StepNext) => unknown) {
  let state = initial;
  const seen: string[] = [];
  for (let i = 0; i < 20; i++) {
    const next = planNextStep(state);
    if (next.kind === 'done') return { state, seen, status: next.status };
    seen.push(`${next.step}${next.attempt ?? ''}`);
    state = markStepQueued(state, next, 1000);
    expect(STEPS[next.step].input.safeParse(buildStepInput(state, next)).success).toBe(true);
    state = applyStepOutcome(state, next, { status: 'completed', value: results(next), startedAt: 1001, finishedAt: 1002, tries: 1 });
  }
  throw new Error('state machine did not finish');
}

const image = (next: StepNext) => ({ images: [{ key: `jobs/${jobId}/attempts/${next.attempt}/0.png`, width: 1632, height: 2048, contentType: 'image/png' }], seed: 1 });
const verdict = (passed: boolean) => ({ passed, score: passed ? 0.9 : 0.2, checks: [], feedback: passed ? '' : 'smile more' });

describe('portrait state machine', () => {
  it('runs prompt, generate, validate per attempt and stops at the first pass', () => {
    const run = drive((next) => (next.step === 'prompt' ? { prompt: 'p' } : next.step === 'generate' ? image(next) : verdict(next.attempt === 2)));
    expect(run.status).toBe('completed');
    expect(run.seen).toEqual(['prompt1', 'generate1', 'validate1', 'prompt2', 'generate2', 'validate2']);
  });

  it('asks for a report after maxAttempts rejections and ends failed_validation', () => {
    const run = drive((next) =>
      next.step === 'prompt' ? { prompt: 'p' } : next.step === 'generate' ? image(next) : next.step === 'validate' ? verdict(false) : { summary: 's', failedChecks: [], suggestions: [] },
    );
    expect(run.status).toBe('failed_validation');
    expect(run.seen.at(-1)).toBe('report');
    expect(run.state.attempts.map((a) => a.status)).toEqual(['rejected', 'rejected']);
  });

  it('passes the previous attempt’s prompt and feedback to the next prompt step', () => {
    let state = initial;
    for (const [next, value] of [
      [{ kind: 'step', step: 'prompt', attempt: 1 }, { prompt: 'first' }],
      [{ kind: 'step', step: 'generate', attempt: 1 }, image({ kind: 'step', step: 'generate', attempt: 1 })],
      [{ kind: 'step', step: 'validate', attempt: 1 }, verdict(false)],
    ] as [StepNext, unknown][]) {
      state = applyStepOutcome(markStepQueued(state, next, 0), next, { status: 'completed', value });
    }
    const next = planNextStep(state) as StepNext;
    expect(next).toEqual({ kind: 'step', step: 'prompt', attempt: 2 });
    expect(buildStepInput(markStepQueued(state, next, 0), next)).toMatchObject({ previous: { prompt: 'first', feedback: 'smile more' } });
  });

  it('uses a seed derived from the job and attempt, stable across replays', () => {
    expect(seedFor(jobId, 1)).toBe(seedFor(jobId, 1));
    expect(seedFor(jobId, 1)).not.toBe(seedFor(jobId, 2));
  });
});
