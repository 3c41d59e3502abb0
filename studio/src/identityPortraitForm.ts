import type { Api } from './api';
import { h } from './dom';
import { submitOnce } from './formSubmission';
import { parameterChoices } from './parameterChoices';

/** A portrait of a ready identity: the same parameter pickers as a new portrait, then POST /jobs with identity_id. */
export async function identityPortraitForm(api: Api, identityId: string, navigate: (hash: string) => void, signal: AbortSignal): Promise<HTMLFormElement> {
  const parameters = await parameterChoices(api, { signal });
  const form = h('form', { class: 'portrait-form', 'aria-label': 'Portrait of this identity' }, parameters.element, h('button', { type: 'submit', class: 'primary' }, 'Create portrait'));
  const problem = submitOnce(form, async (idempotencyKey) => {
    const body = new FormData();
    body.append('identity_id', identityId);
    body.append('parameters', JSON.stringify(parameters.chosen()));
    const created = await api.post<{ job_id: string }>('/jobs', { form: body, headers: { 'Idempotency-Key': idempotencyKey } });
    navigate(`#/jobs/${created.job_id}`);
  });
  form.append(problem);
  return form;
}
