import type { IdentityView } from '../../src/api/views/identity';
import type { Api } from './api';
import { fill, formatTime, h, statusBadge } from './dom';
import { submitOnce } from './formSubmission';
import { identityPhotos } from './identityPhotos';
import type { UploadRules } from './photoInput';

type IdentityList = { identities: IdentityView[]; next_cursor: string | null };

/** How many identities a page of the list shows. */
const PAGE = 20;

/**
 * Identities: a person learnt from several photos. The form takes a name and the photos, each
 * face-checked before the upload, which is offered only once all of them passed; under it, the
 * caller's identities, newest first, each opening its own view.
 */
export async function identitiesPage(api: Api, navigate: (hash: string) => void, signal: AbortSignal): Promise<HTMLElement> {
  const rules = await api.get<UploadRules>('/studio/upload-rules.json', { anonymous: true, signal });
  const upload = h('button', { type: 'submit', class: 'primary', disabled: true }, 'Upload and learn this person');
  const photos = identityPhotos(api, rules, (ready) => (upload.disabled = !ready), signal);
  const name = h('input', { id: 'identity-name', name: 'name', required: true, maxlength: 100, autocomplete: 'off', 'data-field': 'name', 'aria-describedby': 'identity-name-hint' });
  const form = h(
    'form',
    { class: 'identity-form', 'aria-labelledby': 'identity-form-title' },
    h('label', { for: 'identity-name' }, 'Name'),
    name,
    h('p', { id: 'identity-name-hint', class: 'hint' }, 'A label for you, such as the person’s name; it is not shown to the models.'),
    photos.element,
    upload,
  );
  const problem = submitOnce(form, async (idempotencyKey) => {
    if (!photos.ready()) throw new Error(`choose ${rules.identity_photos.min} to ${rules.identity_photos.max} photos that all pass the face check first.`);
    const body = new FormData();
    body.append('name', name.value);
    for (const file of photos.photos()) body.append('photos', file, file.name);
    const created = await api.post<{ identity_id: string }>('/identities', { form: body, headers: { 'Idempotency-Key': idempotencyKey } });
    navigate(`#/identities/${created.identity_id}`);
  });
  form.append(problem);

  const list = h('ul', { class: 'identity-list', 'aria-labelledby': 'identities-title' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Show more');
  let cursor: string | null = null;
  const load = async () => {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (cursor) query.set('cursor', cursor);
    try {
      const page = await api.get<IdentityList>(`/identities?${query}`, { signal });
      if (!cursor && page.identities.length === 0) fill(list, h('li', {}, 'None yet.'));
      list.append(
        ...page.identities.map((identity) =>
          h('li', { 'data-identity': identity.identity_id }, h('a', { href: `#/identities/${identity.identity_id}` }, identity.name), ' ', statusBadge(identity.status), ` ${identity.photos.length} photos, ${formatTime(identity.created_at)}`),
        ),
      );
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (err) {
      if (!signal.aborted) list.append(h('li', { class: 'problem', role: 'alert' }, `Could not load your identities: ${err instanceof Error ? err.message : String(err)}`));
    }
  };
  more.addEventListener('click', () => void load());
  void load();

  return h(
    'section',
    { 'aria-labelledby': 'identities-page-title' },
    h('h2', { id: 'identities-page-title', tabindex: -1 }, 'Identities'),
    h('p', {}, 'Teach the studio a person from several photos: it learns their likeness (a LoRA trained on the photos) and then portrays them with it, checking every portrait against all of their photos.'),
    h('h3', { id: 'identity-form-title' }, 'New identity'),
    form,
    h('h3', { id: 'identities-title' }, 'Your identities'),
    list,
    more,
  );
}
