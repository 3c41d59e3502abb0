import { ApiProblem } from './api';
import { fill, h } from './dom';

/**
 * What every form of the page does when it is sent: one Idempotency-Key per draft (a double click,
 * or a resend after a lost answer, names the same request, so the API makes one job; the key is
 * renewed once the form changes or the request went through), the button disabled while it is in
 * flight, and the API's problem shown, with the field it names marked and focused.
 */
export function submitOnce(form: HTMLFormElement, send: (idempotencyKey: string) => Promise<void>): HTMLElement {
  const problem = h('p', { class: 'problem', role: 'alert' });
  let key = crypto.randomUUID();
  const renew = () => (key = crypto.randomUUID());
  form.addEventListener('input', renew);
  form.addEventListener('change', renew);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    if (button.disabled) return;
    button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    fill(problem);
    for (const marked of form.querySelectorAll('[aria-invalid]')) marked.removeAttribute('aria-invalid');
    try {
      await send(key);
      renew();
    } catch (err) {
      showProblem(form, problem, err);
    } finally {
      button.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  return problem;
}

export function showProblem(form: HTMLElement, box: HTMLElement, err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  const field = err instanceof ApiProblem ? err.field : undefined;
  fill(box, h('strong', {}, 'Not sent: '), message, field && !message.includes(field) ? ` (${field})` : '');
  const input = field ? form.querySelector<HTMLElement>(`[data-field="${CSS.escape(field)}"]`) : null;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
}
