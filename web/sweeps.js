// Atlas dashboard, sweeps: #/projects/<p>/sweeps lists a project's
// hyperparameter sweeps; #/projects/<p>/sweeps/<id> shows one sweep's trials
// side by side (params and final metrics as columns), sortable by any
// column, with the best trial marked (by the sweep's metric and goal, or a
// metric chosen here). Loaded before app.js, whose helpers (h, api, live) it calls.
'use strict';

function sweepLink(p, id) { return h('a', { href: `#/projects/${enc(p)}/sweeps/${enc(id)}` }, id); }

function viewSweeps(seq, project) {
  document.title = 'Sweeps · ' + project + ' · Atlas';
  const body = h('tbody');
  show(h('p', {}, h('a', { href: '#/projects/' + enc(project) }, '← ' + project)),
       h('h1', {}, 'Sweeps of ', project),
       h('div', { class: 'table-wrap' }, h('table', { id: 'sweeps' },
         h('thead', {}, h('tr', {}, ['Sweep', 'User', 'Trials', 'Queued', 'Running', 'Completed', 'Failed', 'Cap', 'Metric', 'Created']
           .map(t => h('th', { scope: 'col' }, t)))), body)));
  live(async () => {
    const sweeps = await api('GET', `/api/v2beta/projects/${enc(project)}/sweeps`).catch(showError);
    if (!sweeps || seq !== viewSeq) return;
    if (!sweeps.length) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: 10, class: 'muted' }, 'No sweeps yet. Submit one with `foundations submit --sweep sweep.yaml`.')));
      return;
    }
    body.replaceChildren(...sweeps.map(s => h('tr', { 'data-sweep': s.sweep_id },
      h('td', {}, sweepLink(project, s.sweep_id)), h('td', {}, s.user),
      ['trials', 'queued', 'running', 'completed', 'failed'].map(k => h('td', { class: 'num' }, s[k])),
      h('td', { class: 'num' }, s.max_concurrent || '—'),
      h('td', {}, s.metric ? `${s.goal} ${s.metric}` : '—'),
      h('td', {}, fmtTime(new Date(s.created * 1000).toISOString())))));
  }, (kind, e) => kind === 'job' && e.project === project);
}

function viewSweep(seq, project, sweepId) {
  document.title = sweepId + ' · Atlas';
  const state = { sort: null, desc: false, metric: null, goal: null };
  const table = h('table', { id: 'trials' });
  const facts = h('p', { class: 'muted', id: 'sweep-facts', 'aria-live': 'polite' });
  const metricSel = h('select', { id: 'best-metric', onchange: () => { state.metric = metricSel.value; render(); } });
  const goalSel = h('select', { id: 'best-goal', onchange: () => { state.goal = goalSel.value; render(); } },
    ['minimize', 'maximize'].map(g => h('option', { value: g }, g)));
  let last = null;
  show(h('p', {}, h('a', { href: `#/projects/${enc(project)}/sweeps` }, '← Sweeps of ' + project)),
       h('h1', {}, 'Sweep ', sweepId), facts,
       h('div', { class: 'toolbar' },
         h('label', { for: 'best-metric' }, 'Best by', metricSel),
         h('label', { for: 'best-goal' }, 'Goal', goalSel)),
       h('div', { class: 'table-wrap' }, table));

  // The value a column sorts by: numbers before text, missing last.
  const cell = (t, col) => col === 'status' ? t.status : col === 'job_id' ? t.job_id
    : col === 'duration' ? t.duration_s : col.startsWith('param:') ? t.params[col.slice(6)] : t.metrics[col.slice(7)];
  function compare(a, b) {
    const rank = v => v === undefined || v === null ? 2 : typeof v === 'number' ? 0 : 1;
    if (rank(a) !== rank(b)) return rank(a) - rank(b);
    if (rank(a) === 2) return 0;
    if (typeof a === 'number') return a - b;
    return JSON.stringify(a).localeCompare(JSON.stringify(b));
  }
  function bestOf(trials) {
    if (!state.metric) return null;
    let best = null;
    for (const t of trials) {
      const v = t.metrics[state.metric];
      if (typeof v !== 'number') continue;
      if (!best || (state.goal === 'maximize' ? v > best.v : v < best.v)) best = { id: t.job_id, v };
    }
    return best && best.id;
  }
  function render() {
    if (!last) return;
    const s = last;
    if (state.metric === null) state.metric = s.metric || s.metric_names[0] || '';
    if (state.goal === null) state.goal = s.goal || 'minimize';
    metricSel.replaceChildren(h('option', { value: '' }, '—'),
      ...s.metric_names.map(m => h('option', { value: m, selected: m === state.metric }, m)));
    goalSel.value = state.goal;
    const best = bestOf(s.trials);
    facts.textContent = `${s.trial_count} trials: ${s.queued} queued, ${s.running} running, ${s.completed} completed, ${s.failed} failed`
      + (s.max_concurrent ? ` · at most ${s.max_concurrent} at once` : '')
      + (best ? ` · best: ${best}` : '');
    const trials = s.trials.slice();
    if (state.sort) {
      trials.sort((a, b) => compare(cell(a, state.sort), cell(b, state.sort)));
      if (state.desc) trials.reverse();
    }
    const th = (label, col, cls) => h('th', { scope: 'col', class: cls,
      'aria-sort': state.sort === col ? (state.desc ? 'descending' : 'ascending') : undefined },
      h('button', { class: 'sort', type: 'button', 'aria-label': `Sort by ${label}`, 'data-col': col,
        onclick: () => { state.desc = state.sort === col && !state.desc; state.sort = col; render(); } },
        label + (state.sort !== col ? '' : state.desc ? ' ▼' : ' ▲')));
    const head = h('tr', {}, h('th', { scope: 'col' }, 'Best'), th('Status', 'status'), th('Job ID', 'job_id'),
      th('Duration', 'duration'), s.param_names.map(p => th(p, 'param:' + p, 'group-param')),
      s.metric_names.map(m => th(m, 'metric:' + m, 'group-metric')));
    const rows = trials.map(t => h('tr', { 'data-job': t.job_id, class: t.job_id === best ? 'best' : undefined },
      h('td', {}, t.job_id === best ? h('span', { class: 'best-mark', title: `best ${state.metric}` }, '★ best') : ''),
      h('td', {}, badge(t.status)), h('td', {}, jobLink(project, t.job_id)),
      h('td', { class: 'num' }, fmtDuration(t.duration_s)),
      s.param_names.map(p => h('td', { class: typeof t.params[p] === 'number' ? 'num' : '', 'data-param': p }, fmtValue(t.params[p]))),
      s.metric_names.map(m => h('td', { class: typeof t.metrics[m] === 'number' ? 'num' : '', 'data-metric': m }, fmtValue(t.metrics[m])))));
    keepFocus(table, () => table.replaceChildren(h('thead', {}, head), h('tbody', {}, rows)));
  }
  async function refresh() {
    const data = await api('GET', `/api/v2beta/projects/${enc(project)}/sweeps/${enc(sweepId)}`).catch(showError);
    if (!data || seq !== viewSeq) return;
    last = data;
    render();
  }
  live(refresh, (kind, e) => kind === 'job' && e.project === project);
}
