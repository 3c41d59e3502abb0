import type { Api } from './api';
import { fill, h } from './dom';
import { submitOnce } from './formSubmission';
import { loraFieldset } from './loraFieldset';
import { photoInput, type UploadRules } from './photoInput';

/** GET /parameters: each choice's values with the phrase the prompt builds on, sizes, defaults. */
type Vocabulary = Record<string, Record<string, string>> & {
  resolution: Record<string, { width: number; height: number }>;
  defaults: Record<string, string>;
};

const CHOICES = ['purpose', 'attire', 'background', 'vibe', 'lighting'] as const;
const MAX_CANDIDATES = 4;

const words = (value: string) => value.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

/** A picker for one parameter, built from the API's vocabulary, with the chosen value's meaning under it. */
function choice(name: string, options: Record<string, string>, selected: string, describe: (value: string) => string): HTMLElement {
  const id = `parameter-${name}`;
  const meaning = h('p', { id: `${id}-meaning`, class: 'hint' });
  const select = h(
    'select',
    { id, name, 'data-field': `parameters.${name}`, 'aria-describedby': meaning.id },
    ...Object.keys(options).map((value) => h('option', { value, selected: value === selected }, words(value))),
  );
  const show = () => fill(meaning, describe(select.value));
  select.addEventListener('change', show);
  show();
  return h('div', { class: 'choice' }, h('label', { for: id }, words(name)), select, meaning);
}

/** A new portrait: the photos, the parameters, candidates per attempt and identity LoRAs. */
export async function portraitForm(api: Api, navigate: (hash: string) => void): Promise<HTMLElement> {
  const [vocabulary, rules] = await Promise.all([api.get<Vocabulary>('/parameters'), api.get<UploadRules>('/studio/upload-rules.json', { anonymous: true })]);
  const photo = photoInput(rules);
  const loras = loraFieldset('Identity LoRAs (optional, applied in every attempt)', 'hf_token');
  const pickers = CHOICES.map((name) => choice(name, vocabulary[name], vocabulary.defaults[name], (value) => vocabulary[name][value]));
  const resolution = choice('resolution', Object.fromEntries(Object.keys(vocabulary.resolution).map((r) => [r, r])), vocabulary.defaults.resolution, (value) => {
    const { width, height } = vocabulary.resolution[value];
    return `${width}×${height} pixels (4:5 portrait)`;
  });
  const candidates = h(
    'select',
    { id: 'candidates', name: 'candidates', 'data-field': 'candidates', 'aria-describedby': 'candidates-meaning' },
    ...Array.from({ length: MAX_CANDIDATES }, (_, i) => h('option', { value: i + 1 }, String(i + 1))),
  );
  const form = h(
    'form',
    { class: 'portrait-form', 'aria-labelledby': 'portrait-title' },
    photo.element,
    h('fieldset', {}, h('legend', {}, 'Parameters'), h('div', { class: 'choices' }, ...pickers, resolution)),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Candidates'),
      h('label', { for: 'candidates' }, 'Images per attempt'),
      candidates,
      h('p', { id: 'candidates-meaning', class: 'hint' }, 'Each attempt renders this many images in one call; the checks judge each and the attempt keeps the best.'),
    ),
    loras.element,
    h('button', { type: 'submit', class: 'primary' }, 'Create portrait'),
  );
  const problem = submitOnce(form, async (idempotencyKey) => {
    const files = photo.photos();
    if (files.length === 0) throw new Error('choose photos the checks above accept first.');
    const body = new FormData();
    // In the order shown: the first is the one a single-image model and the prompt step use.
    for (const file of files) body.append('image_file', file, file.name);
    const chosen = Object.fromEntries([...form.querySelectorAll<HTMLSelectElement>('.choices select')].map((s) => [s.name, s.value]));
    body.append('parameters', JSON.stringify(chosen));
    body.append('candidates', candidates.value);
    if (loras.loras().length > 0) body.append('loras', JSON.stringify(loras.loras()));
    if (loras.token()) body.append('hf_token', loras.token());
    const created = await api.post<{ job_id: string }>('/jobs', { form: body, headers: { 'Idempotency-Key': idempotencyKey } });
    navigate(`#/jobs/${created.job_id}`);
  });
  form.append(problem);
  return h('section', { 'aria-labelledby': 'portrait-title' }, h('h2', { id: 'portrait-title', tabindex: -1 }, 'New portrait'), form);
}
