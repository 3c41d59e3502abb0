import { fill, formatBytes, h } from './dom';

/** GET /studio/upload-rules.json: what POST /jobs accepts as its image_file parts, and how many photos POST /identities takes. */
export type UploadRules = { types: string[]; max_bytes: number; max_pixels: number; min_side: number; max_photos: number; identity_photos: { min: number; max: number } };

export type Checked = { ok: true; file: File; url: string; width: number; height: number } | { ok: false; reason: string };

/** The accepted types in words (JPEG, PNG, WebP). */
export const typeNames = (rules: UploadRules) => rules.types.map((t) => (t === 'image/webp' ? 'WebP' : t.replace('image/', '').toUpperCase())).join(', ');

/** What the server takes as one photo, in one sentence. */
export const photoRules = (rules: UploadRules) =>
  `${typeNames(rules)}; at most ${formatBytes(rules.max_bytes)} and ${Math.round(rules.max_pixels / 1e6)} megapixels; at least ${rules.min_side} px on each side.`;

/** The server's checks on one photo (type, bytes, pixels, shortest side); a photo that passes keeps its object URL for the preview. */
export function checkPhoto(file: File, rules: UploadRules, kinds: string): Promise<Checked> {
  if (!rules.types.includes(file.type)) return Promise.resolve({ ok: false, reason: `it is ${file.type || 'not an image'}; the API takes ${kinds}.` });
  if (file.size > rules.max_bytes) return Promise.resolve({ ok: false, reason: `it has ${formatBytes(file.size)}; the limit is ${formatBytes(rules.max_bytes)}.` });
  const url = URL.createObjectURL(file);
  const refuse = (reason: string): Checked => (URL.revokeObjectURL(url), { ok: false, reason });
  return new Promise((resolve) => {
    const image = new Image();
    image.onload = () => {
      const { naturalWidth: width, naturalHeight: height } = image;
      if (width * height > rules.max_pixels) return resolve(refuse(`it has ${width}×${height} pixels; the limit is ${rules.max_pixels} pixels.`));
      if (Math.min(width, height) < rules.min_side) return resolve(refuse(`it is ${width}×${height}; each side must be at least ${rules.min_side} px.`));
      resolve({ ok: true, file, url, width, height });
    };
    image.onerror = () => resolve(refuse('it could not be read as an image.'));
    image.src = url;
  });
}

/**
 * The photo picker: 1 to max_photos photos of the same person in one multiple file input, the
 * server's rules stated next to it, a preview of each in the order they are sent, and the same
 * checks the server makes applied to each before anything is uploaded (a refused one is named by
 * its position). The server still checks the content; this only saves a person a long upload that
 * would be refused.
 */
export function photoInput(rules: UploadRules): { element: HTMLElement; photos: () => File[] } {
  const kinds = typeNames(rules);
  const ruleText = photoRules(rules);
  const input = h('input', {
    id: 'photo',
    name: 'image_file',
    type: 'file',
    multiple: true,
    accept: rules.types.join(','),
    required: true,
    'data-field': 'image_file',
    'aria-describedby': 'photo-help photo-rules photo-check',
  });
  const check = h('p', { id: 'photo-check', role: 'status' });
  const previews = h('ol', { class: 'previews', 'aria-label': 'Chosen photos, in the order they are sent' });
  let accepted: Checked[] = [];
  let choosing = 0; // a newer choice wins over an older one still being checked

  const forget = () => {
    for (const photo of accepted) if (photo.ok) URL.revokeObjectURL(photo.url);
    accepted = [];
    fill(previews);
  };
  const refuse = (which: string, reason: string) => {
    forget();
    input.setCustomValidity(`${which} ${reason}`);
    input.setAttribute('aria-invalid', 'true');
    fill(check, h('strong', {}, `${which} cannot be used: `), reason);
  };
  input.addEventListener('change', async () => {
    const files = [...(input.files ?? [])];
    const choice = ++choosing;
    input.setCustomValidity('');
    input.removeAttribute('aria-invalid');
    forget();
    fill(check);
    const which = (index: number) => (files.length === 1 ? 'This photo' : `Photo ${index + 1} of ${files.length} (${files[index].name})`);
    if (files.length === 0) return; // `required` asks for one
    if (files.length > rules.max_photos) return refuse(which(rules.max_photos), `it is one too many; choose 1 to ${rules.max_photos} photos.`);
    const checked = await Promise.all(files.map((file) => checkPhoto(file, rules, kinds)));
    const release = () => checked.forEach((c) => c.ok && URL.revokeObjectURL(c.url));
    if (choice !== choosing) return release();
    const refused = checked.findIndex((c) => !c.ok);
    const first = checked[refused];
    if (first && !first.ok) {
      release();
      return refuse(which(refused), first.reason);
    }
    accepted = checked;
    fill(check, files.length === 1 ? '1 photo chosen.' : `${files.length} photos chosen; they are sent in the order shown.`);
    fill(
      previews,
      ...checked.map((photo, i) => {
        if (!photo.ok) return null;
        const alt = files.length === 1 ? 'Preview of the chosen photo' : `Preview of photo ${i + 1}`;
        return h(
          'li',
          {},
          h(
            'figure',
            {},
            h('img', { class: 'preview', src: photo.url, alt }),
            h(
              'figcaption',
              {},
              `${files.length === 1 ? '' : `Photo ${i + 1}: `}${photo.file.name}: ${photo.width}×${photo.height}, ${formatBytes(photo.file.size)}.`,
              i === 0 && files.length > 1 ? h('strong', { class: 'detail' }, 'The first: a model that takes one photo renders from this one.') : null,
            ),
          ),
        );
      }),
    );
  });

  const element = h(
    'div',
    { class: 'photo' },
    h('label', { for: 'photo' }, 'Your photos'),
    h('p', { id: 'photo-help', class: 'hint' }, `Choose 1 to ${rules.max_photos} photos of the same person: several help the portrait keep the likeness, and the first is the one a model that takes a single photo uses.`),
    h('p', { id: 'photo-rules', class: 'hint' }, `Each photo: ${ruleText}`),
    input,
    check,
    previews,
  );
  return { element, photos: () => accepted.flatMap((c) => (c.ok ? [c.file] : [])) };
}
