import type { z } from 'zod';
import type { PhotoCheckView } from '../../src/api/views/identity';
import { ApiProblem, type Api } from './api';
import { fill, formatBytes, h } from './dom';
import { checkPhoto, photoRules, typeNames, type UploadRules } from './photoInput';

/** Face checks in flight at once: the upload gate gives one tenant two places, more would only wait there. */
const CHECKS_AT_ONCE = 2;

/** `unchecked`: the face check did not answer (no GPU worker, the network); the photo may be checked again. */
type Verdict = { state: 'checking' } | { state: 'accepted' } | { state: 'refused' | 'unchecked'; reason: string };
type Photo = { file: File; url?: string; verdict: Verdict; started: boolean; element: HTMLLIElement };

/**
 * The photos an identity is learnt from: each chosen photo gets the page's own checks (the server's
 * type, byte and pixel rules) and then the API's face check (POST /identities/photo-check, the
 * check POST /identities applies, keeping nothing), and shows its verdict beside its preview before
 * anything is uploaded. A photo can be left out; `ready()` holds once min to max photos all passed.
 */
export function identityPhotos(api: Api, rules: UploadRules, onChange: (ready: boolean) => void, signal: AbortSignal): { element: HTMLElement; photos: () => File[]; ready: () => boolean } {
  const { min, max } = rules.identity_photos;
  const kinds = typeNames(rules);
  const input = h('input', {
    id: 'identity-photos',
    name: 'photos',
    type: 'file',
    multiple: true,
    accept: rules.types.join(','),
    'data-field': 'photos',
    'aria-describedby': 'identity-photos-help identity-photos-rules identity-photos-state',
  });
  const state = h('p', { id: 'identity-photos-state', role: 'status' });
  const list = h('ol', { class: 'previews identity-photos', 'aria-label': 'Chosen photos and their face checks' });
  let photos: Photo[] = [];
  let choosing = 0; // a newer choice wins over checks of an older one still running

  const ready = () => photos.length >= min && photos.length <= max && photos.every((p) => p.verdict.state === 'accepted');
  const summarize = () => {
    const refused = photos.map((p, i) => ({ p, i })).filter(({ p }) => p.verdict.state === 'refused' || p.verdict.state === 'unchecked');
    const checking = photos.filter((p) => p.verdict.state === 'checking').length;
    const count = photos.length;
    if (refused.length > 0 || count > max) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
    if (count === 0) fill(state, `No photos chosen yet: choose ${min} to ${max}.`);
    else if (count > max) fill(state, h('strong', {}, `${count} photos chosen: `), `at most ${max}; remove ${count - max} and the rest are checked.`);
    else if (checking > 0) fill(state, `Checking faces: ${count - checking} of ${count} photos checked.`);
    else if (refused.length > 0) {
      const { p, i } = refused[0];
      const reason = 'reason' in p.verdict ? p.verdict.reason : '';
      const unchecked = p.verdict.state === 'unchecked';
      fill(
        state,
        h('strong', {}, `Photo ${i + 1} (${p.file.name}) ${unchecked ? 'was not checked' : 'cannot be used'}: `),
        /[.!?]$/.test(reason) ? reason : `${reason}.`,
        refused.length > 1 ? ` ${refused.length - 1} more cannot be used either.` : '',
        unchecked ? ' Check it again, or remove it' : ' Remove it or choose other photos',
        '; nothing is uploaded until every photo passes.',
      );
    } else if (count < min) fill(state, `${count} photo${count === 1 ? '' : 's'} passed; ${min - count} more needed (${min} to ${max}).`);
    else fill(state, `All ${count} photos show one face: ready to upload.`);
    onChange(ready());
  };

  const verdictText = ({ verdict, started }: Photo) => {
    if (verdict.state === 'checking') return started ? 'checking the face…' : 'not checked yet';
    if (verdict.state === 'accepted') return '✓ one face found';
    return verdict.state === 'unchecked' ? `? not checked: ${verdict.reason}` : `✗ ${verdict.reason}`;
  };

  const draw = (photo: Photo, index: number) => {
    const remove = h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove photo ${index + 1} (${photo.file.name})` }, 'Remove');
    remove.addEventListener('click', () => {
      if (photo.url) URL.revokeObjectURL(photo.url);
      photos = photos.filter((p) => p !== photo);
      photos.forEach(draw);
      fill(list, ...photos.map((p) => p.element));
      summarize();
      input.focus();
      void checkWaiting();
    });
    const again = h('button', { type: 'button', class: 'secondary', 'aria-label': `Check photo ${index + 1} (${photo.file.name}) again` }, 'Check again');
    again.addEventListener('click', () => {
      photo.verdict = { state: 'checking' };
      draw(photo, photos.indexOf(photo));
      summarize();
      void check(photo, choosing);
    });
    fill(
      photo.element,
      h(
        'figure',
        {},
        photo.url ? h('img', { class: 'preview', src: photo.url, alt: `Preview of photo ${index + 1}` }) : null,
        h('figcaption', {}, `Photo ${index + 1}: ${photo.file.name}, ${formatBytes(photo.file.size)}. `, h('strong', { class: `detail verdict verdict-${photo.verdict.state}` }, verdictText(photo))),
      ),
      photo.verdict.state === 'unchecked' ? again : null,
      remove,
    );
  };

  /** The page's checks, then the API's face check; the verdict is drawn when it arrives. */
  const check = async (photo: Photo, choice: number) => {
    const local = await checkPhoto(photo.file, rules, kinds);
    if (local.ok) {
      if (photo.url) URL.revokeObjectURL(photo.url); // checked again
      photo.url = local.url;
    }
    let verdict: Verdict;
    if (!local.ok) verdict = { state: 'refused', reason: local.reason };
    else {
      const body = new FormData();
      body.append('photo', photo.file, photo.file.name);
      try {
        const answer = await api.post<z.output<typeof PhotoCheckView>>('/identities/photo-check', { form: body, signal });
        verdict = answer.accepted ? { state: 'accepted' } : { state: 'refused', reason: answer.reason ?? 'refused by the face check' };
      } catch (err) {
        // A refusal of the photo itself (not an image the API reads) is final; no answer is not.
        const final = err instanceof ApiProblem && err.status >= 400 && err.status < 500 && err.status !== 429;
        verdict = { state: final ? 'refused' : 'unchecked', reason: (err as Error).message };
      }
    }
    if (choice !== choosing || !photos.includes(photo)) {
      if (photo.url) URL.revokeObjectURL(photo.url);
      return;
    }
    photo.verdict = verdict;
    draw(photo, photos.indexOf(photo));
    summarize();
  };

  /** Checks the photos not checked yet, a few at a time; too many to upload are not worth checking until some are left out. */
  const checkWaiting = async () => {
    if (photos.length > max) return;
    const choice = choosing;
    const queue = photos.filter((p) => !p.started);
    for (const photo of queue) photo.started = true;
    await Promise.all(
      Array.from({ length: CHECKS_AT_ONCE }, async () => {
        for (let photo = queue.shift(); photo && choice === choosing; photo = queue.shift()) await check(photo, choice);
      }),
    );
  };

  input.addEventListener('change', () => {
    ++choosing;
    for (const photo of photos) if (photo.url) URL.revokeObjectURL(photo.url);
    photos = [...(input.files ?? [])].map((file) => ({ file, verdict: { state: 'checking' }, started: false, element: h('li', { class: 'identity-photo' }) }));
    photos.forEach(draw);
    fill(list, ...photos.map((p) => p.element));
    summarize();
    void checkWaiting();
  });
  summarize();
  // The previews' object URLs go with the view.
  signal.addEventListener('abort', () => {
    ++choosing;
    for (const photo of photos) if (photo.url) URL.revokeObjectURL(photo.url);
  });

  const element = h(
    'div',
    { class: 'photo' },
    h('label', { for: 'identity-photos' }, 'Photos of the person'),
    h('p', { id: 'identity-photos-help', class: 'hint' }, `Choose ${min} to ${max} photos of the same person, one face in each, clearly visible; different days, light and angles teach the likeness best. Each is checked for a face as soon as it is chosen; nothing is uploaded until all pass.`),
    h('p', { id: 'identity-photos-rules', class: 'hint' }, `Each photo: ${photoRules(rules)}`),
    input,
    state,
    list,
  );
  return { element, photos: () => photos.map((p) => p.file), ready };
}
