import type { AuthedImages } from './authedImages';
import { h, statusBadge } from './dom';
import type { AttemptView } from '../../src/api/views/job';

/** An attempt's steps, in the order they run (the page lists them so). */
export const ATTEMPT_STEPS = ['prompt', 'generate', 'validate'] as const satisfies readonly (keyof AttemptView['steps'])[];

type Verdict = NonNullable<AttemptView['verdict']>;
type Check = Verdict['checks'][number];

function shown(value: Check['value'] | undefined): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(3);
  return String(value);
}

/** Every check of one verdict: what was measured, against what, and whether it passed (in words, not only colour). */
function checksTable(caption: string, verdict: Pick<Verdict, 'checks'>): HTMLTableElement {
  return h(
    'table',
    { class: 'checks' },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Check'), h('th', { scope: 'col' }, 'Value'), h('th', { scope: 'col' }, 'Threshold'), h('th', { scope: 'col' }, 'Result'))),
    h(
      'tbody',
      {},
      ...verdict.checks.map((c) =>
        h(
          'tr',
          { class: c.passed ? 'pass' : 'fail' },
          h('th', { scope: 'row' }, c.name, c.detail ? h('span', { class: 'detail' }, c.detail) : null),
          h('td', {}, shown(c.value)),
          h('td', {}, shown(c.threshold)),
          h('td', {}, c.passed ? '✓ pass' : '✗ fail'),
        ),
      ),
    ),
  );
}

function stepLine(attempt: AttemptView): string {
  return ATTEMPT_STEPS.filter((s) => attempt.steps[s])
    .map((s) => {
      const step = attempt.steps[s]!;
      const state = step.status === 'queued' ? 'in progress' : step.status;
      return `${s}: ${state}${step.duration_ms !== null ? ` in ${(step.duration_ms / 1000).toFixed(1)} s` : ''}${step.tries && step.tries > 1 ? ` (${step.tries} tries)` : ''}`;
    })
    .join(' · ');
}

/** One attempt: its image, the instruction it was rendered from, every check and the VLM's feedback. */
export function attemptCard(jobId: string, attempt: AttemptView, images: AuthedImages): HTMLElement {
  const verdict = attempt.verdict;
  const title = `Attempt ${attempt.number}`;
  const candidates = verdict?.candidates ?? [];
  const chosen = verdict?.best ?? 0;
  return h(
    'li',
    { class: 'attempt', id: `attempt-${attempt.number}` },
    h('h4', {}, `${title} `, statusBadge(attempt.status), verdict ? ` score ${verdict.score.toFixed(2)}` : ''),
    h('p', { class: 'hint' }, `Seed ${attempt.seed}. ${stepLine(attempt)}`),
    attempt.prompt ? h('details', {}, h('summary', {}, 'Instruction the VLM wrote'), h('p', { class: 'prompt' }, attempt.prompt)) : null,
    attempt.image_url
      ? h(
          'figure',
          {},
          images.img(attempt.image_url, `${title}'s image`, `${jobId}:${attempt.number}:${attempt.images[chosen]?.key ?? ''}`),
          h('figcaption', {}, candidates.length > 1 ? `The candidate this attempt kept (${chosen + 1} of ${candidates.length})` : `${attempt.images[0]?.width}×${attempt.images[0]?.height}`),
        )
      : null,
    verdict ? checksTable(`Checks of attempt ${attempt.number}: ${verdict.passed ? 'passed' : 'rejected'}`, verdict) : null,
    verdict?.feedback ? h('p', { class: 'feedback' }, h('strong', {}, 'VLM feedback: '), verdict.feedback) : null,
    candidates.length > 1
      ? h(
          'details',
          {},
          h('summary', {}, `Every candidate's checks (${candidates.length})`),
          ...candidates.map((c, i) => checksTable(`Candidate ${i + 1}${i === chosen ? ' (kept)' : ''}: score ${c.score.toFixed(2)}, ${c.passed ? 'passed' : 'rejected'}`, c)),
        )
      : null,
  );
}
