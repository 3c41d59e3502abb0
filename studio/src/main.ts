import { accessPanel, type Access } from './accessPanel';
import { Api } from './api';
import { fill, h } from './dom';
import { generationPage, generationsPage } from './generationsPage';
import { historyPage } from './historyPage';
import { identitiesPage } from './identitiesPage';
import { identityPage } from './identityPage';
import { jobPage } from './jobPage';
import { portraitForm } from './portraitForm';

/**
 * The studio: one page, its views addressed by the URL's fragment (#/portrait, #/jobs/<id>,
 * #/history, #/generations, #/generations/<id>, #/identities, #/identities/<id>) so the back button and links work. Each view gets
 * an AbortSignal that ends its event streams when another view replaces it.
 */
const api = new Api();
const main = document.getElementById('main')!;
let access: Access | undefined;
let current: AbortController | undefined;

const navigate = (hash: string) => {
  if (location.hash === hash) void show();
  else location.hash = hash;
};

async function view(path: string, signal: AbortSignal): Promise<HTMLElement> {
  const [, section, id] = path.split('/');
  if (section === 'jobs' && id) return jobPage(api, id, signal);
  if (section === 'history') return historyPage(api, signal);
  if (section === 'generations' && id) return generationPage(api, id, signal);
  if (section === 'generations') return generationsPage(api, navigate, signal);
  if (section === 'identities' && id) return identityPage(api, id, navigate, signal);
  if (section === 'identities') return identitiesPage(api, navigate, signal);
  return portraitForm(api, navigate);
}

async function show(): Promise<void> {
  current?.abort();
  const controller = (current = new AbortController());
  const path = location.hash.replace(/^#/, '') || '/portrait';
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a')) {
    if (path.startsWith(link.hash.slice(1))) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (access === 'key_needed') {
    return fill(main, h('section', { class: 'notice' }, h('h2', { tabindex: -1 }, 'An API key is needed'), h('p', {}, 'Enter your API key above to use the studio.')));
  }
  try {
    const element = await view(path, controller.signal);
    if (controller.signal.aborted) return;
    fill(main, element);
  } catch (err) {
    if (controller.signal.aborted) return;
    fill(main, h('section', { class: 'notice' }, h('h2', { tabindex: -1 }, 'Cannot show this page'), h('p', { role: 'alert' }, (err as Error).message)));
  }
  // Keyboard and screen-reader users land on the new view's heading.
  main.querySelector<HTMLElement>('h2')?.focus({ preventScroll: false });
}

document.getElementById('access')!.append(
  accessPanel(api, (next) => {
    access = next;
    void show();
  }),
);
window.addEventListener('hashchange', () => void show());
