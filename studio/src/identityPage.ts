import type { IdentityView } from '../../src/api/views/identity';
import { TERMINAL_STATUSES } from '../../src/store/statuses';
import type { Api } from './api';
import { AuthedImages } from './authedImages';
import { coalescedRefresh } from './coalescedRefresh';
import { fill, formatTime, h, statusBadge } from './dom';
import { followEvents, type StreamEvent } from './eventStream';
import { showProblem } from './formSubmission';
import { evaluationRenders, identityPhotoStrip } from './identityImages';
import { identityPortraitForm } from './identityPortraitForm';
import { lossCurve } from './lossCurve';

/** What each stage of learning a person is doing, in words. */
const STAGES: Record<IdentityView['status'], string> = {
  pending: 'Queued: waiting for the first step to start.',
  preparing: 'Preparing: each photo is turned upright, framed around the face and described.',
  training: 'Training: a LoRA is learning the person from the photos.',
  evaluating: 'Evaluating: portraits are rendered with and without the LoRA and compared with the photos.',
  ready: 'Ready: portraits of this identity use its photos and its LoRA.',
  failed: 'Failed: see the error below.',
  cancelled: 'Cancelled: training was stopped.',
};

function timeLeft(seconds: number): string {
  if (seconds < 1) return 'less than a second left';
  if (seconds < 90) return `about ${seconds} s left`;
  if (seconds < 90 * 60) return `about ${Math.round(seconds / 60)} min left`;
  return `about ${(seconds / 3600).toFixed(1)} h left`;
}

/** The evaluation, and the one sentence that says what it means. */
function evaluationOf(identity: IdentityView): HTMLElement | null {
  const e = identity.evaluation;
  if (!e) return null;
  const number = (d: number | null) => (d === null ? 'no face found' : d.toFixed(3));
  const renders = (withLora: boolean) => e.renders.filter((r) => r.with_lora === withLora).length;
  const [withLora, without] = [e.median_distance_with_lora, e.median_distance_without_lora];
  const verdict =
    withLora === null
      ? 'No render with the LoRA showed a face, so its likeness could not be measured: training did not give a usable likeness.'
      : without === null || withLora < without
        ? 'Portraits made with the trained LoRA are closer to the person’s photos than without it: training helped.'
        : 'Portraits made with the trained LoRA are not closer to the person’s photos than without it: training did not help the likeness.';
  return h(
    'section',
    { class: 'evaluation', 'aria-labelledby': 'evaluation-title' },
    h('h3', { id: 'evaluation-title' }, 'Evaluation'),
    h(
      'table',
      {},
      h('caption', {}, 'Face distance of held-out portraits to the person’s photos (median; lower is closer)'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Rendered'), h('th', { scope: 'col' }, 'Median distance'), h('th', { scope: 'col' }, 'Renders with a face'))),
      h(
        'tbody',
        {},
        h('tr', { id: 'evaluation-with' }, h('th', { scope: 'row' }, 'With the trained LoRA'), h('td', {}, number(withLora)), h('td', {}, `${e.renders_with_face.with_lora} of ${renders(true)}`)),
        h('tr', { id: 'evaluation-without' }, h('th', { scope: 'row' }, 'Without it'), h('td', {}, number(without)), h('td', {}, `${e.renders_with_face.without_lora} of ${renders(false)}`)),
      ),
    ),
    h('p', { id: 'evaluation-verdict' }, h('strong', {}, verdict), ' A distance is how far a portrait’s face is from the person’s faces (0 is the same face); the portrait gate accepts up to its threshold (0.6 unless the deployment sets another).'),
  );
}

/**
 * One identity, live: its event stream drives the view (each status re-reads it; each training
 * report moves the step counter and adds a point to the loss curve, and re-reads it for the ETA)
 * until it ends; then its evaluation. A portrait of it opens the job view; delete asks first.
 */
export function identityPage(api: Api, id: string, navigate: (hash: string) => void, signal: AbortSignal): HTMLElement {
  const images = new AuthedImages(api);
  signal.addEventListener('abort', () => images.release());
  const title = h('span', {}, '');
  const status = h('span', { id: 'identity-status' });
  const now = h('p', { id: 'identity-now' });
  const bar = h('progress', { id: 'training', max: 1, value: 0, 'aria-describedby': 'training-text' });
  const barText = h('span', { id: 'training-text' }, 'not started');
  const eta = h('span', { id: 'training-eta' });
  const curve = lossCurve();
  const training = h('div', { class: 'training', hidden: true }, h('div', { class: 'progress' }, h('label', { for: 'training' }, 'Training'), bar, barText, eta), curve.element);
  const portrait = h('button', { type: 'button', class: 'primary', disabled: true, 'aria-expanded': 'false', 'aria-controls': 'identity-portrait' }, 'Portrait of this identity');
  const portraitBox = h('div', { id: 'identity-portrait', hidden: true });
  const cancel = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Cancel training');
  const remove = h('button', { type: 'button', class: 'secondary danger' }, 'Delete identity');
  const confirmText = h('p', { id: 'delete-question' });
  const confirmDelete = h('button', { type: 'button', class: 'danger', 'aria-describedby': 'delete-question' }, 'Yes, delete for good');
  const keep = h('button', { type: 'button', class: 'secondary' }, 'Keep it');
  const confirm = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm deletion', hidden: true }, confirmText, h('div', { class: 'actions' }, confirmDelete, keep));
  const problem = h('p', { class: 'problem', role: 'alert' });
  const evaluation = h('div', { 'aria-live': 'polite' });
  const details = h('dl', { class: 'job-details' });
  const photos = h('div', {});
  const renders = h('div', {});
  let latest: IdentityView | undefined;
  let shownImages = '';
  let reported = 0;

  const render = (identity: IdentityView) => {
    latest = identity;
    fill(title, identity.name);
    fill(status, statusBadge(identity.status));
    fill(now, STAGES[identity.status]);
    const done = TERMINAL_STATUSES.has(identity.status);
    cancel.disabled = done;
    cancel.hidden = done;
    portrait.disabled = identity.status !== 'ready';
    training.hidden = reported === 0 && identity.status !== 'training';
    const p = identity.progress;
    if (p) {
      bar.max = p.total;
      bar.value = p.step;
      fill(barText, `step ${p.step} of ${p.total}`);
      fill(eta, p.eta_seconds === null ? '' : `(${timeLeft(p.eta_seconds)})`);
    } else if (identity.lora) {
      bar.max = identity.lora.steps_done || 1;
      bar.value = identity.lora.steps_done;
      fill(barText, `all ${identity.lora.steps_done} steps done${identity.lora.resumed_from_step ? ` (resumed from step ${identity.lora.resumed_from_step})` : ''}, average loss ${identity.lora.loss_average.toPrecision(3)}`);
      fill(eta);
    }
    fill(evaluation, evaluationOf(identity));
    // Redrawn only when they change (a caption written, the evaluation done), not on every report.
    const imagesNow = JSON.stringify([identity.photos, identity.evaluation?.renders]);
    if (imagesNow !== shownImages) {
      shownImages = imagesNow;
      fill(photos, identityPhotoStrip(identity, images));
      if (identity.evaluation) fill(renders, h('h4', {}, 'Held-out portraits: without and with the LoRA'), evaluationRenders(identity.evaluation, images));
      else fill(renders);
    }
    const t = identity.training;
    fill(
      details,
      h('dt', {}, 'Created'), h('dd', {}, formatTime(identity.created_at)),
      h('dt', {}, 'Photos'), h('dd', {}, String(identity.photos.length)),
      h('dt', {}, 'Trigger word'), h('dd', {}, h('code', {}, identity.trigger_token)),
      h('dt', {}, 'Training'), h('dd', {}, `${t.steps} steps, rank ${t.rank}, learning rate ${t.learning_rate}, ${t.resolution}×${t.resolution} px`),
      identity.error ? h('dt', {}, 'Error') : null,
      identity.error ? h('dd', { class: 'problem' }, `${identity.error.message} [${identity.error.code}]`) : null,
    );
  };

  const refresh = coalescedRefresh(async () => {
    try {
      render(await api.get<IdentityView>(`/identities/${id}`, { signal }));
    } catch (err) {
      if (!signal.aborted) showProblem(evaluation, problem, err);
    }
  }, signal);

  const onEvent = (event: StreamEvent) => {
    if (event.type === 'progress' && typeof event.data.train_step === 'number' && typeof event.data.loss === 'number') {
      const { train_step: step, train_total: total, loss } = event.data as { train_step: number; train_total: number; loss: number };
      reported += 1;
      training.hidden = false;
      bar.max = total;
      bar.value = step;
      fill(barText, `step ${step} of ${total}`);
      curve.add(step, total, loss);
    }
    // The ETA comes from the API's view (the pace of the recent reports); a status changes the rest.
    if (event.type === 'status' || event.type === 'progress') void refresh();
  };

  // The portrait's parameters are chosen first: the form opens under the button, its pickers read once.
  let portraitForm: Promise<void> | undefined;
  portrait.addEventListener('click', () => {
    const open = portraitBox.hidden;
    portraitBox.hidden = !open;
    portrait.setAttribute('aria-expanded', String(open));
    if (!open || portraitForm) return;
    fill(problem);
    portraitForm = identityPortraitForm(api, id, navigate, signal).then(
      (form) => {
        fill(portraitBox, form);
        form.querySelector('select')?.focus();
      },
      (err) => {
        portraitForm = undefined;
        if (!signal.aborted) showProblem(evaluation, problem, err);
        portraitBox.hidden = true;
        portrait.setAttribute('aria-expanded', 'false');
      },
    );
  });
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      await api.post(`/identities/${id}/cancel`);
      fill(now, 'Cancelling: training stops after its current step.');
    } catch (err) {
      showProblem(evaluation, problem, err);
      await refresh();
    }
  });
  remove.addEventListener('click', () => {
    fill(confirmText, `Delete “${latest?.name ?? id}”? Its photos, their captions and face data, and the trained LoRA are erased for good${latest && !TERMINAL_STATUSES.has(latest.status) ? ', and its training is stopped' : ''}. Portraits already made of it stay.`);
    confirm.hidden = false;
    remove.disabled = true;
    keep.focus();
  });
  keep.addEventListener('click', () => {
    confirm.hidden = true;
    remove.disabled = false;
    remove.focus();
  });
  confirmDelete.addEventListener('click', async () => {
    confirmDelete.disabled = true;
    try {
      await api.fetch('DELETE', `/identities/${id}`);
      navigate('#/identities');
    } catch (err) {
      confirmDelete.disabled = false;
      showProblem(evaluation, problem, err);
    }
  });

  void refresh()
    .then(() => followEvents(api, `/identities/${id}/events`, onEvent, signal))
    .catch((err) => showProblem(evaluation, problem, err))
    .then(refresh);

  return h(
    'section',
    { 'aria-labelledby': 'identity-title', class: 'identity' },
    h('h2', { id: 'identity-title', tabindex: -1 }, 'Identity ', title),
    h(
      'div',
      { class: 'live' },
      h('p', { role: 'status' }, 'Status: ', status),
      now,
      training,
      h('div', { class: 'actions' }, portrait, cancel, remove),
      portraitBox,
      confirm,
      problem,
    ),
    evaluation,
    renders,
    h('h3', {}, 'Photos'),
    photos,
    h('h3', {}, 'Details'),
    details,
  );
}
