import { TERMINAL_STATUSES } from '../../src/store/statuses';
import type { LoraSpec } from '../../src/flows/contracts/generateStep';
import type { Api } from './api';
import { fill, formatTime, h, statusBadge } from './dom';
import { followEvents } from './eventStream';
import { showProblem, submitOnce } from './formSubmission';
import { loraFieldset } from './loraFieldset';

type GenerationView = {
  generation_id: string;
  status: string;
  request: { prompt: string; width: number; height: number; steps?: number; guidance?: number; num_images: number; loras: LoraSpec[] };
  seed: number | null;
  images: { key: string; width: number; height: number; url?: string; bucket?: string }[];
  timings: Record<string, number> | null;
  error: { message?: string } | string | null;
  created_at: string | null;
};

/** How many of the caller's latest generations the page lists under the form. */
const LATEST = 10;

function numberInput(id: string, label: string, attrs: Record<string, string | number | boolean>, hint?: string): HTMLElement {
  return h(
    'div',
    { class: 'choice' },
    h('label', { for: id }, label),
    h('input', { id, name: id.replace('generation-', ''), type: 'number', 'data-field': id.replace('generation-', ''), ...attrs, ...(hint ? { 'aria-describedby': `${id}-hint` } : {}) }),
    hint ? h('p', { id: `${id}-hint`, class: 'hint' }, hint) : null,
  );
}

/** Plain text-to-image: prompt, size, steps, guidance, seed, images and LoRAs, then the results. */
export function generationsPage(api: Api, navigate: (hash: string) => void, signal: AbortSignal): HTMLElement {
  const prompt = h('textarea', { id: 'generation-prompt', name: 'prompt', required: true, rows: 3, maxlength: 4000, 'data-field': 'prompt' });
  const loras = loraFieldset('LoRAs (optional)', 'secrets.hf_token');
  const side = { min: 256, max: 2048, step: 16, required: true };
  const form = h(
    'form',
    { class: 'generation-form' },
    h('label', { for: 'generation-prompt' }, 'Prompt'),
    prompt,
    h(
      'div',
      { class: 'choices' },
      numberInput('generation-width', 'Width (px)', { ...side, value: 1024 }, '256 to 2048, a multiple of 16'),
      numberInput('generation-height', 'Height (px)', { ...side, value: 1024 }, '256 to 2048, a multiple of 16'),
      numberInput('generation-steps', 'Steps', { min: 1, max: 100, placeholder: 'server default' }),
      numberInput('generation-guidance', 'Guidance', { min: 0, max: 30, step: 0.1, placeholder: 'server default' }),
      numberInput('generation-seed', 'Seed', { min: 0, max: 2 ** 32 - 1, placeholder: 'random' }, 'the same seed and request draw the same image'),
      numberInput('generation-num_images', 'Images', { min: 1, max: 4, value: 1, required: true }),
    ),
    loras.element,
    h('button', { type: 'submit', class: 'primary' }, 'Generate'),
  );
  const problem = submitOnce(form, async (idempotencyKey) => {
    const number = (name: string) => {
      const value = form.querySelector<HTMLInputElement>(`[name="${name}"]`)!.value;
      return value === '' ? undefined : Number(value);
    };
    const body = {
      prompt: prompt.value,
      width: number('width'),
      height: number('height'),
      steps: number('steps'),
      guidance: number('guidance'),
      seed: number('seed'),
      num_images: number('num_images'),
      loras: loras.loras(),
      ...(loras.token() ? { secrets: { hf_token: loras.token() } } : {}),
    };
    const created = await api.post<GenerationView>('/generations', { json: body, headers: { 'Idempotency-Key': idempotencyKey } });
    navigate(`#/generations/${created.generation_id}`);
  });
  form.append(problem);
  const latest = h('ul', { class: 'generation-list', 'aria-labelledby': 'latest-generations-title' });
  const section = h(
    'section',
    { 'aria-labelledby': 'generations-title' },
    h('h2', { id: 'generations-title', tabindex: -1 }, 'New generation'),
    form,
    h('h3', { id: 'latest-generations-title' }, 'Your latest generations'),
    latest,
  );
  api
    .get<{ generations: GenerationView[] }>(`/generations?limit=${LATEST}`, { signal })
    .then(({ generations }) =>
      fill(
        latest,
        ...(generations.length
          ? generations.map((g) => h('li', {}, h('a', { href: `#/generations/${g.generation_id}` }, g.request.prompt.length > 80 ? `${g.request.prompt.slice(0, 79)}…` : g.request.prompt), ' ', statusBadge(g.status), ` ${formatTime(g.created_at)}`))
          : [h('li', {}, 'None yet.')]),
      ),
    )
    .catch((err) => !signal.aborted && fill(latest, h('li', { class: 'problem', role: 'alert' }, `Could not load your generations: ${err instanceof Error ? err.message : String(err)}`)));
  return section;
}

/** One generation, followed until it ends; its images straight from their presigned URLs. */
export function generationPage(api: Api, id: string, signal: AbortSignal): HTMLElement {
  const status = h('span', { id: 'generation-status' });
  const body = h('div', { 'aria-live': 'polite' });
  const problem = h('p', { class: 'problem', role: 'alert' });
  const cancel = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Cancel generation');
  const section = h(
    'section',
    { 'aria-labelledby': 'generation-title' },
    h('h2', { id: 'generation-title', tabindex: -1 }, 'Generation ', h('code', {}, id)),
    h('p', { role: 'status' }, 'Status: ', status),
    h('div', { class: 'actions' }, cancel),
    problem,
    body,
  );
  const render = (g: GenerationView) => {
    fill(status, statusBadge(g.status));
    cancel.disabled = TERMINAL_STATUSES.has(g.status);
    const r = g.request;
    const error = typeof g.error === 'string' ? g.error : g.error?.message;
    fill(
      body,
      h('p', { class: 'prompt' }, r.prompt),
      h('p', { class: 'hint' }, `${r.width}×${r.height}, ${r.steps ?? 'default'} steps, guidance ${r.guidance ?? 'default'}, seed ${g.seed ?? 'not drawn yet'}, ${r.num_images} image${r.num_images === 1 ? '' : 's'}${r.loras.length ? `, LoRAs ${r.loras.map((l) => `${l.repo} ×${l.scale}`).join(', ')}` : ''}. Created ${formatTime(g.created_at)}.`),
      error ? h('p', { class: 'problem' }, `Failed: ${error}`) : null,
      h(
        'div',
        { class: 'gallery' },
        ...g.images.map((image, i) =>
          image.url
            ? h('figure', {}, h('img', { src: image.url, alt: `Generated image ${i + 1}`, width: image.width, height: image.height }), h('figcaption', {}, h('a', { href: image.url, target: '_blank', rel: 'noopener' }, `Open image ${i + 1} (${image.width}×${image.height})`)))
            : h('p', {}, `Image ${i + 1} was written to your bucket ${image.bucket}: ${image.key}`),
        ),
      ),
      g.timings ? h('p', { class: 'hint' }, `Timings: ${Object.entries(g.timings).map(([k, v]) => `${k.replace(/Seconds$/, '')} ${v.toFixed(2)} s`).join(', ')}`) : null,
    );
  };
  const refresh = async () => {
    try {
      render(await api.get<GenerationView>(`/generations/${id}`, { signal }));
    } catch (err) {
      if (!signal.aborted) showProblem(section, problem, err);
    }
  };
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      await api.post(`/generations/${id}/cancel`);
    } catch (err) {
      showProblem(section, problem, err);
    }
  });
  void refresh()
    // Denoising progress is not shown here: only a status change is worth reading the generation again.
    .then(() => followEvents(api, `/generations/${id}/events`, (event) => event.type !== 'progress' && void refresh(), signal))
    .catch((err) => showProblem(section, problem, err))
    .then(refresh);
  return section;
}
