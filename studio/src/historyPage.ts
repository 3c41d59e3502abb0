import type { JobList } from '../../src/api/views/job';
import { JOB_STATUSES } from '../../src/store/statuses';
import type { Api } from './api';
import { fill, formatTime, h, statusBadge } from './dom';
import { showProblem } from './formSubmission';

const PAGE_SIZES = [5, 10, 25, 50];

/**
 * The caller's portrait jobs, newest first, filtered by status and paged with the API's cursor
 * (`next_cursor` continues after the last job shown; the cursors of earlier pages are kept to go back).
 */
export function historyPage(api: Api, signal: AbortSignal): HTMLElement {
  const status = h('select', { id: 'history-status', name: 'status' }, h('option', { value: '' }, 'Any status'), ...JOB_STATUSES.map((s) => h('option', { value: s }, s.replace(/_/g, ' '))));
  const size = h('select', { id: 'history-size', name: 'limit' }, ...PAGE_SIZES.map((n) => h('option', { value: n, selected: n === 10 }, String(n))));
  const rows = h('tbody');
  const position = h('p', { id: 'history-position', role: 'status' });
  const newer = h('button', { type: 'button', class: 'secondary', disabled: true }, '← Newer');
  const older = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Older →');
  const problem = h('p', { class: 'problem', role: 'alert' });
  // cursors[i] opens page i; page 0 has none.
  let cursors: (string | undefined)[] = [undefined];
  let page = 0;
  let next: string | null = null;

  let loads = 0;
  const load = async () => {
    // Only the latest request draws: a slower answer to an earlier filter must not overwrite it.
    const seq = ++loads;
    const query = new URLSearchParams({ limit: size.value });
    if (status.value) query.set('status', status.value);
    if (cursors[page]) query.set('cursor', cursors[page]!);
    fill(problem);
    try {
      const { jobs, next_cursor } = await api.get<JobList>(`/jobs?${query}`, { signal });
      if (seq !== loads) return;
      next = next_cursor;
      fill(
        rows,
        ...jobs.map((job) =>
          h(
            'tr',
            {},
            h('td', {}, h('a', { href: `#/jobs/${job.job_id}` }, formatTime(job.created_at))),
            h('td', {}, statusBadge(job.status)),
            h('td', {}, `${job.parameters.purpose ?? ''}, ${job.parameters.attire ?? ''}, ${job.parameters.background ?? ''}`),
            h('td', {}, String(job.attempts.length)),
          ),
        ),
      );
      if (jobs.length === 0) fill(rows, h('tr', {}, h('td', { colspan: 4 }, page === 0 ? 'No jobs yet.' : 'No more jobs.')));
      fill(position, `Page ${page + 1}: ${jobs.length} job${jobs.length === 1 ? '' : 's'}${next ? ', more after these' : ''}.`);
      newer.disabled = page === 0;
      older.disabled = !next;
    } catch (err) {
      if (!signal.aborted) showProblem(status, problem, err);
    }
  };
  const restart = () => {
    cursors = [undefined];
    page = 0;
    void load();
  };
  status.addEventListener('change', restart);
  size.addEventListener('change', restart);
  older.addEventListener('click', () => {
    cursors[++page] = next ?? undefined;
    void load();
  });
  newer.addEventListener('click', () => {
    page -= 1;
    void load();
  });
  void load();

  return h(
    'section',
    { 'aria-labelledby': 'history-title' },
    h('h2', { id: 'history-title', tabindex: -1 }, 'History'),
    h('div', { class: 'filters' }, h('label', { for: 'history-status' }, 'Status', status), h('label', { for: 'history-size' }, 'Per page', size)),
    h(
      'table',
      { class: 'history' },
      h('caption', {}, 'Your portrait jobs, newest first'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Purpose, attire, background'), h('th', { scope: 'col' }, 'Attempts'))),
      rows,
    ),
    position,
    h('div', { class: 'actions' }, newer, older),
    problem,
  );
}
