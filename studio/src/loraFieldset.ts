import type { LoraSpec } from '../../src/flows/contracts/generateStep';
import { h } from './dom';


const MAX_LORAS = 8;
let rowIds = 0;

/**
 * LoRAs from Hugging Face repos, `[{repo, weight_name?, scale}]` as the API takes them, plus the
 * token of a private repo. Inputs carry `data-field` with the API's field name (loras.0.repo), so an
 * error the API names lands on the right input.
 */
export function loraFieldset(legend: string, tokenField: string): { element: HTMLElement; loras: () => LoraSpec[]; token: () => string } {
  const rows = h('ol', { class: 'lora-rows' });
  const add = h('button', { type: 'button', class: 'secondary' }, 'Add LoRA');
  const token = h('input', { id: `${tokenField}-token`, type: 'password', autocomplete: 'off', 'data-field': tokenField });
  const renumber = () => {
    [...rows.children].forEach((row, i) => {
      for (const input of row.querySelectorAll<HTMLInputElement>('input')) input.dataset.field = `loras.${i}.${input.name}`;
    });
    add.disabled = rows.children.length >= MAX_LORAS;
  };
  add.addEventListener('click', () => {
    const id = `lora-${++rowIds}`;
    const repo = h('input', { id: `${id}-repo`, name: 'repo', required: true, placeholder: 'owner/name', autocomplete: 'off', spellcheck: 'false' });
    const row = h(
      'li',
      { class: 'lora-row' },
      h('label', { for: `${id}-repo` }, 'Repo', repo),
      h('label', { for: `${id}-weight` }, 'Weight file (optional)', h('input', { id: `${id}-weight`, name: 'weight_name', placeholder: 'lora.safetensors', autocomplete: 'off', spellcheck: 'false' })),
      h('label', { for: `${id}-scale` }, 'Scale', h('input', { id: `${id}-scale`, name: 'scale', type: 'number', min: -4, max: 4, step: 0.05, value: 1 })),
      h('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove this LoRA', onclick: () => (row.remove(), renumber(), add.focus()) }, 'Remove'),
    );
    rows.append(row);
    renumber();
    repo.focus();
  });
  const element = h(
    'fieldset',
    {},
    h('legend', {}, legend),
    rows,
    add,
    h('label', { for: token.id }, 'Hugging Face token (only for private LoRA repos; sealed by the server, never shown again)', token),
  );
  const loras = () =>
    [...rows.children].map((row) => {
      const value = (name: string) => (row.querySelector<HTMLInputElement>(`input[name="${name}"]`)?.value ?? '').trim();
      return { repo: value('repo'), ...(value('weight_name') ? { weight_name: value('weight_name') } : {}), scale: Number(value('scale') || 1) };
    });
  return { element, loras, token: () => token.value.trim() };
}
