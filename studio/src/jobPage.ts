import { RETRYABLE_STATUSES, TERMINAL_STATUSES } from '../../src/store/statuses';
import type { Api } from './api';
import { ATTEMPT_STEPS, attemptCard } from './attemptCard';
import { AuthedImages } from './authedImages';
import { coalescedRefresh } from './coalescedRefresh';
import { fill, formatTime, h, statusBadge } from './dom';
import { followEvents, type StreamEvent } from './eventStream';
import { showProblem } from './formSubmission';
import type { AttemptView, JobReportView, JobView } from '../../src/api/views/job';

/** Where the job is now, in words: the running attempt and step, or the report being written. */
function currentStep(job: JobView): string {
  if (TERMINAL_STATUSES.has(job.status)) return job.finished_at ? `Finished ${formatTime(job.finished_at)}.` : '';
  if (job.status === 'pending') return 'Queued: waiting for its first step to start.';
  if (job.report?.step.status === 'queued') return 'Every attempt was rejected: the VLM is writing the failure report.';
  const attempt: AttemptView | undefined = job.attempts.at(-1);
  if (!attempt) return 'Waiting for the first step to start.';
  const open = ATTEMPT_STEPS.find((s) => attempt.steps[s]?.status === 'queued');
  // A step's start is recorded only when it finishes, so an open step is "in progress": queued or running.
  if (!open) return `Attempt ${attempt.number}: between steps.`;
  return `Attempt ${attempt.number}: ${open} step in progress.`;
}

/** A link that saves an image already fetched with the key (a blob: URL) under a name that says what it is. */
function downloadLink(image: { url: string; type: string }, name: string, text: string): HTMLAnchorElement {
  return h('a', { href: image.url, download: `${name}.${image.type.split('/')[1] || 'png'}`, class: 'button' }, text);
}

/**
 * One portrait job, live: its event stream drives the page (each step event re-reads the job, each
 * progress event moves the denoising bar) until the terminal status, then the result with a download,
 * or the failure report, or the error. Cancel and retry act on it.
 */
export function jobPage(api: Api, jobId: string, signal: AbortSignal): HTMLElement {
  const images = new AuthedImages(api);
  signal.addEventListener('abort', () => images.release());
  const status = h('span', { id: 'job-status' });
  const now = h('p', { id: 'job-now' });
  const denoise = h('progress', { id: 'denoise', max: 1, value: 0, 'aria-describedby': 'denoise-text' });
  const denoiseText = h('span', { id: 'denoise-text' }, 'not started');
  const progress = h('div', { class: 'progress' }, h('label', { for: 'denoise' }, 'Denoising'), denoise, denoiseText);
  const cancel = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Cancel job');
  const retry = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Retry with new attempts');
  const problem = h('p', { class: 'problem', role: 'alert' });
  const outcome = h('section', { class: 'outcome', 'aria-live': 'polite' });
  const attempts = h('ol', { class: 'attempts' });
  const details = h('dl', { class: 'job-details' });
  const rendered = new Map<number, { json: string; element: HTMLElement }>();
  let shownOutcome = '';
  let lastEventId = '';
  let latest: JobView | undefined;

  const renderOutcome = async (job: JobView) => {
    const key = `${job.status}:${job.cycle}`;
    if (key === shownOutcome) return;
    shownOutcome = key;
    if (job.status === 'completed' && job.result?.url) {
      const portrait = await images.load(job.result.url);
      fill(
        outcome,
        h('h3', {}, 'Your portrait'),
        h('img', { src: portrait.url, alt: 'The finished portrait', class: 'result' }),
        h('p', {}, `Attempt ${job.result.attempt} passed with score ${job.result.score.toFixed(2)}. `, downloadLink(portrait, `portrait-${job.job_id}`, 'Download the portrait')),
      );
    } else if (job.status === 'failed_validation') {
      const { report } = await api.get<JobReportView>(`/jobs/${job.job_id}/report`);
      // The same cache key as the attempt's card (attemptCard.ts), so the image is fetched once.
      const best = job.result ? await images.load(`/jobs/${job.job_id}/attempts/${job.result.attempt}/image`, `${job.job_id}:${job.result.attempt}:${job.result.image_key}`) : undefined;
      fill(
        outcome,
        h('h3', {}, 'No attempt passed the checks'),
        h('p', {}, report.summary),
        h('h4', {}, 'Checks that failed'),
        h('ul', {}, ...report.failedChecks.map((c) => h('li', {}, `${c.name}: failed in ${c.count} image${c.count === 1 ? '' : 's'}`))),
        report.suggestions.length ? h('h4', {}, 'Suggestions') : null,
        report.suggestions.length ? h('ul', {}, ...report.suggestions.map((s) => h('li', {}, s))) : null,
        best && job.result ? h('p', {}, downloadLink(best, `portrait-${job.job_id}-attempt-${job.result.attempt}`, `Download the best attempt's image (attempt ${job.result.attempt})`)) : null,
      );
    } else if (job.status === 'failed') {
      const e = job.error;
      fill(outcome, h('h3', {}, 'The job failed'), h('p', {}, e ? `${e.message}${e.step ? ` (step ${e.step}${e.attempt ? `, attempt ${e.attempt}` : ''})` : ''} [${e.code}]` : 'No error was recorded.'));
    } else if (job.status === 'cancelled') {
      fill(outcome, h('h3', {}, 'Cancelled'), h('p', {}, 'The job was stopped. Images made before the cancel are kept below.'));
    } else {
      fill(outcome);
    }
  };

  const render = async (job: JobView) => {
    latest = job;
    fill(status, statusBadge(job.status));
    fill(now, currentStep(job));
    cancel.disabled = TERMINAL_STATUSES.has(job.status);
    progress.hidden = TERMINAL_STATUSES.has(job.status);
    retry.hidden = !(RETRYABLE_STATUSES as readonly string[]).includes(job.status);
    fill(
      details,
      h('dt', {}, 'Created'), h('dd', {}, formatTime(job.created_at)),
      h('dt', {}, 'Reference photos'), h('dd', {}, String(job.reference_count)),
      job.identity_id ? h('dt', {}, 'Identity') : null, job.identity_id ? h('dd', {}, h('a', { href: `#/identities/${job.identity_id}` }, job.identity_id)) : null,
      h('dt', {}, 'Parameters'), h('dd', {}, Object.entries(job.parameters).map(([k, v]) => `${k}: ${v}`).join(', ')),
      h('dt', {}, 'Candidates per attempt'), h('dd', {}, String(job.candidates)),
      h('dt', {}, 'Identity LoRAs'), h('dd', {}, job.loras.length ? job.loras.map((l) => `${l.repo}${l.weight_name ? `/${l.weight_name}` : ''} ×${l.scale}`).join(', ') : 'none'),
      h('dt', {}, 'Cycle'), h('dd', {}, String(job.cycle), ...job.history.map((c) => ` (cycle ${c.cycle} ended ${c.status})`)),
    );
    // Only attempts that changed are redrawn, so an opened <details> or a loaded image stays put.
    for (const attempt of job.attempts) {
      const json = JSON.stringify(attempt);
      const before = rendered.get(attempt.number);
      if (before?.json === json) continue;
      const element = attemptCard(job.job_id, attempt, images);
      if (before) before.element.replaceWith(element);
      else attempts.append(element);
      rendered.set(attempt.number, { json, element });
    }
    await renderOutcome(job);
  };

  const refresh = coalescedRefresh(async () => {
    try {
      await render(await api.get<JobView>(`/jobs/${jobId}`, { signal }));
    } catch (err) {
      if (!signal.aborted) showProblem(outcome, problem, err);
    }
  }, signal);

  const onEvent = (event: StreamEvent) => {
    lastEventId = event.id || lastEventId;
    if (event.type === 'progress') {
      const { denoise_step: step, denoise_total: total, attempt } = event.data as { denoise_step: number; denoise_total: number; attempt: number };
      denoise.max = total;
      denoise.value = step;
      fill(denoiseText, `attempt ${attempt}: ${step} of ${total} denoising steps`);
    } else {
      if (event.type === 'step' && event.data.step === 'generate' && event.data.status === 'queued') {
        denoise.value = 0;
        fill(denoiseText, `attempt ${String(event.data.attempt)}: waiting for the generate step`);
      }
      void refresh();
    }
  };

  // A retried job's log holds the earlier cycle's terminal status too: the stream stops there, so
  // it is followed again from that event for as long as the job itself is not finished.
  const follow = async () => {
    do {
      try {
        lastEventId = await followEvents(api, `/jobs/${jobId}/events`, onEvent, signal, lastEventId);
      } catch (err) {
        return showProblem(outcome, problem, err);
      }
      await refresh();
    } while (!signal.aborted && latest && !TERMINAL_STATUSES.has(latest.status));
  };

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      await api.post(`/jobs/${jobId}/cancel`);
      fill(now, 'Cancelling: the job ends once its current step has stopped.');
    } catch (err) {
      showProblem(outcome, problem, err);
      await refresh();
    }
  });
  retry.addEventListener('click', async () => {
    retry.hidden = true;
    try {
      await api.post(`/jobs/${jobId}/retry`);
      fill(problem);
      shownOutcome = '';
      fill(outcome);
      void follow();
      await refresh();
      cancel.focus();
    } catch (err) {
      showProblem(outcome, problem, err);
      await refresh();
    }
  });

  void refresh().then(follow);
  return h(
    'section',
    { 'aria-labelledby': 'job-title', class: 'job' },
    h('h2', { id: 'job-title', tabindex: -1 }, 'Portrait ', h('code', {}, jobId)),
    h(
      'div',
      { class: 'live' },
      h('p', { role: 'status' }, 'Status: ', status),
      now,
      progress,
      h('div', { class: 'actions' }, cancel, retry),
      problem,
    ),
    outcome,
    h('h3', {}, 'Attempts'),
    attempts,
    h('h3', {}, 'Request'),
    details,
  );
}
