import { ApiProblem, type Api } from './api';
import { fill, h } from './dom';

export type Access = 'open' | 'key_accepted' | 'key_needed';

/**
 * The API key entry, and what the API says about access: whether it runs open (no keys exist, so
 * every visitor shares one tenant's jobs) or needs a key, and whether the key given was accepted.
 */
export function accessPanel(api: Api, onChange: (access: Access) => void): HTMLElement {
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'apx_…', 'aria-describedby': 'access-status' });
  const status = h('p', { id: 'access-status', role: 'status' });
  const forget = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Forget key');
  const form = h(
    'form',
    { class: 'access', 'aria-label': 'API access' },
    h('label', { for: 'api-key' }, 'API key'),
    h('div', { class: 'inline' }, input, h('button', { type: 'submit' }, 'Use key'), forget),
    status,
  );

  const check = async () => {
    fill(status, 'Checking access…');
    let access: Access;
    try {
      // Without a key first: a 200 means the API is open to anyone who can reach it.
      await api.get('/parameters', { anonymous: true });
      access = 'open';
    } catch (err) {
      if (!(err instanceof ApiProblem) || err.status !== 401) return void fill(status, `Cannot reach the API: ${(err as Error).message}`);
      access = 'key_needed';
    }
    if (access === 'key_needed' && api.key) {
      try {
        await api.get('/parameters');
        access = 'key_accepted';
      } catch (err) {
        fill(status, h('strong', {}, 'That key was refused'), `: ${(err as Error).message}. Enter a valid key.`);
        forget.hidden = false;
        return onChange(access);
      }
    }
    forget.hidden = !api.key;
    input.value = '';
    if (access === 'open') {
      fill(
        status,
        h('strong', {}, 'This API runs open.'),
        ' No API keys exist yet, so nothing is checked: everyone who can reach it submits and sees the same jobs (tenant "local"). ',
        'An operator closes it by creating the first key (npm run keys -- create --tenant NAME).',
        api.key ? ' Your key is kept for this tab and sent, but not needed yet.' : '',
      );
    } else if (access === 'key_accepted') {
      fill(status, h('strong', {}, 'Key accepted'), ` (…${api.key.slice(-4)}). It is kept for this tab only and forgotten when the tab closes.`);
    } else {
      fill(status, h('strong', {}, 'This API needs an API key.'), ' Enter yours above; it is kept for this tab only.');
    }
    onChange(access);
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    api.key = input.value.trim();
    void check();
  });
  forget.addEventListener('click', () => {
    api.key = '';
    void check();
  });
  void check();
  return form;
}
