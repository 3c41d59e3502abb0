import type { Api } from './api';
import { h } from './dom';
import { submitOnce } from './formSubmission';
import { loraFieldset } from './loraFieldset';
import { parameterChoices } from './parameterChoices';
import { photoInput, type UploadRules } from './photoInput';

const MAX_CANDIDATES = 4;

/** A new portrait: the photos, the parameters, candidates per attempt and identity LoRAs. */
export async function portraitForm(api: Api, navigate: (hash: string) => void): Promise<HTMLElement> {
  const [parameters, rules] = await Promise.all([parameterChoices(api), api.get<UploadRules>('/studio/upload-rules.json', { anonymous: true })]);
  const photo = photoInput(rules);
  const loras = loraFieldset('Identity LoRAs (optional, applied in every attempt)', 'hf_token');
  const candidates = h(
    'select',
    { id: 'candidates', name: 'candidates', 'data-field': 'candidates', 'aria-describedby': 'candidates-meaning' },
    ...Array.from({ length: MAX_CANDIDATES }, (_, i) => h('option', { value: i + 1 }, String(i + 1))),
  );
  const form = h(
    'form',
    { class: 'portrait-form', 'aria-labelledby': 'portrait-title' },
    photo.element,
    parameters.element,
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
    body.append('parameters', JSON.stringify(parameters.chosen()));
    body.append('candidates', candidates.value);
    if (loras.loras().length > 0) body.append('loras', JSON.stringify(loras.loras()));
    if (loras.token()) body.append('hf_token', loras.token());
    const created = await api.post<{ job_id: string }>('/jobs', { form: body, headers: { 'Idempotency-Key': idempotencyKey } });
    navigate(`#/jobs/${created.job_id}`);
  });
  form.append(problem);
  return h('section', { 'aria-labelledby': 'portrait-title' }, h('h2', { id: 'portrait-title', tabindex: -1 }, 'New portrait'), form);
}
