import type { Api } from './api';
import { fill, h } from './dom';

/** GET /parameters: each choice's values with the phrase the prompt builds on, sizes, defaults. */
type Vocabulary = Record<string, Record<string, string>> & {
  resolution: Record<string, { width: number; height: number }>;
  defaults: Record<string, string>;
};

const CHOICES = ['purpose', 'attire', 'background', 'vibe', 'lighting'] as const;

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

/**
 * A portrait's parameters, one picker each from the API's vocabulary (GET /parameters), its
 * defaults preselected: the fieldset, and what is chosen as POST /jobs takes it.
 */
export async function parameterChoices(api: Api, options: { signal?: AbortSignal } = {}): Promise<{ element: HTMLFieldSetElement; chosen: () => Record<string, string> }> {
  const vocabulary = await api.get<Vocabulary>('/parameters', options);
  const pickers = CHOICES.map((name) => choice(name, vocabulary[name], vocabulary.defaults[name], (value) => vocabulary[name][value]));
  const resolution = choice('resolution', Object.fromEntries(Object.keys(vocabulary.resolution).map((r) => [r, r])), vocabulary.defaults.resolution, (value) => {
    const { width, height } = vocabulary.resolution[value];
    return `${width}×${height} pixels (4:5 portrait)`;
  });
  const element = h('fieldset', {}, h('legend', {}, 'Parameters'), h('div', { class: 'choices' }, ...pickers, resolution));
  const chosen = () => Object.fromEntries([...element.querySelectorAll('select')].map((s) => [s.name, s.value]));
  return { element, chosen };
}
