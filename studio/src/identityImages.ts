import type { IdentityView } from '../../src/api/views/identity';
import type { AuthedImages } from './authedImages';
import { h } from './dom';

type Evaluation = NonNullable<IdentityView['evaluation']>;
type Render = Evaluation['renders'][number];

/** The photos the identity is learnt from, as thumbnails, each with the caption the VLM wrote for it. */
export function identityPhotoStrip(identity: IdentityView, images: AuthedImages): HTMLElement {
  return h(
    'ol',
    { class: 'previews identity-photos-shown', 'aria-label': 'Photos of the person' },
    ...identity.photos.map((photo, i) =>
      h(
        'li',
        {},
        h(
          'figure',
          {},
          images.img(photo.url, `Photo ${i + 1} of ${identity.name}`, `${photo.url}:${photo.key}`),
          h('figcaption', {}, `Photo ${i + 1}: `, photo.caption ?? h('span', { class: 'hint' }, 'not described yet')),
        ),
      ),
    ),
  );
}

function renderFigure(render: Render | undefined, label: string, images: AuthedImages): HTMLElement {
  if (!render) return h('figure', { class: 'render' }, h('figcaption', {}, `${label}: not rendered`));
  const distance = render.face_found && render.distance !== null ? `face distance ${render.distance.toFixed(3)}` : 'no face';
  return h(
    'figure',
    { class: 'render' },
    images.img(render.url, `${label}: ${render.prompt}`, `${render.url}:${render.key}`),
    h('figcaption', {}, `${label}: `, h('strong', { class: 'distance' }, distance)),
  );
}

/** The evaluation's renders, one row per held-out prompt: without the LoRA beside with it, each with its face distance. */
export function evaluationRenders(evaluation: Evaluation, images: AuthedImages): HTMLElement {
  const prompts = [...new Set(evaluation.renders.map((r) => r.prompt))];
  return h(
    'ol',
    { class: 'renders', 'aria-label': 'Held-out portraits, without and with the LoRA' },
    ...prompts.map((prompt) => {
      const of = (withLora: boolean) => evaluation.renders.find((r) => r.prompt === prompt && r.with_lora === withLora);
      return h(
        'li',
        { class: 'render-pair' },
        h('p', { class: 'prompt' }, prompt),
        h('div', { class: 'side-by-side' }, renderFigure(of(false), 'Without the LoRA', images), renderFigure(of(true), 'With the LoRA', images)),
      );
    }),
  );
}
