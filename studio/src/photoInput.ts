import { fill, formatBytes, h } from './dom';

/** GET /studio/upload-rules.json: what POST /jobs accepts as image_file. */
export type UploadRules = { types: string[]; max_bytes: number; max_pixels: number; min_side: number };

/**
 * The photo picker: the server's rules stated next to it, a preview, and the same checks the server
 * makes (type, bytes, pixels, shortest side) before anything is uploaded. The server still checks
 * the content; this only saves a person a long upload that would be refused.
 */
export function photoInput(rules: UploadRules): { element: HTMLElement; photo: () => File | undefined } {
  const kinds = rules.types.map((t) => (t === 'image/webp' ? 'WebP' : t.replace('image/', '').toUpperCase())).join(', ');
  const ruleText = `${kinds}; at most ${formatBytes(rules.max_bytes)} and ${Math.round(rules.max_pixels / 1e6)} megapixels; at least ${rules.min_side} px on each side.`;
  const input = h('input', { id: 'photo', name: 'image_file', type: 'file', accept: rules.types.join(','), required: true, 'data-field': 'image_file', 'aria-describedby': 'photo-rules photo-check' });
  const preview = h('img', { class: 'preview', alt: 'Preview of the chosen photo', hidden: true });
  const check = h('p', { id: 'photo-check', role: 'status' });
  let accepted: File | undefined;

  const refuse = (reason: string) => {
    accepted = undefined;
    preview.hidden = true;
    input.setCustomValidity(reason);
    input.setAttribute('aria-invalid', 'true');
    fill(check, h('strong', {}, 'This photo cannot be used: '), reason);
  };
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    input.setCustomValidity('');
    input.removeAttribute('aria-invalid');
    fill(check);
    if (preview.src) URL.revokeObjectURL(preview.src);
    if (!file) return refuse('choose a photo.');
    if (!rules.types.includes(file.type)) return refuse(`it is ${file.type || 'not an image'}; the API takes ${kinds}.`);
    if (file.size > rules.max_bytes) return refuse(`it has ${formatBytes(file.size)}; the limit is ${formatBytes(rules.max_bytes)}.`);
    preview.onload = () => {
      const { naturalWidth: width, naturalHeight: height } = preview;
      if (width * height > rules.max_pixels) return refuse(`it has ${width}×${height} pixels; the limit is ${rules.max_pixels} pixels.`);
      if (Math.min(width, height) < rules.min_side) return refuse(`it is ${width}×${height}; each side must be at least ${rules.min_side} px.`);
      accepted = file;
      preview.hidden = false;
      fill(check, `${file.name}: ${width}×${height}, ${formatBytes(file.size)}.`);
    };
    preview.onerror = () => refuse('it could not be read as an image.');
    preview.src = URL.createObjectURL(file);
  });

  const element = h(
    'div',
    { class: 'photo' },
    h('label', { for: 'photo' }, 'Your photo'),
    h('p', { id: 'photo-rules', class: 'hint' }, ruleText),
    input,
    check,
    preview,
  );
  return { element, photo: () => accepted };
}
