// Atlas dashboard: plain JS, no framework, no network beyond this server.
// Views: #/ projects, #/projects/<p> job table, #/projects/<p>/jobs/<id> one job, #/cluster
// nodes and queue, #/usage (usage.js), #/projects/<p>/sweeps[/<id>] (sweeps.js); events in live.js. In -p mode a login form first.
'use strict';

const TOKEN_KEY = 'atlas.token';
const REFRESH_KEY = 'atlas.refresh';
const POLL_MS = 2000;
const PAGE_ROWS = 50; // rows of a project's job table per page
let authMode = false;
let timers = [];          // cleared on every view change
let aborts = [];          // streams (log follow) to cancel on view change
let viewSeq = 0;          // ignores answers for a view that was left

// ---- DOM helpers --------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const main = () => document.getElementById('main');
function show(...nodes) { main().replaceChildren(...nodes); }
function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text; t.classList.add('show');
  setTimeout(() => t.classList.remove('show'), 2500);
}
// Re-renders `container` without losing the keyboard focus: the focused
// button or link is found again by its label afterwards.
function keepFocus(container, update) {
  const a = document.activeElement;
  const label = a && container.contains(a) ? (a.getAttribute('aria-label') || a.textContent) : null;
  update();
  if (label === null) return;
  const again = [...container.querySelectorAll('button, a')].find(e => (e.getAttribute('aria-label') || e.textContent) === label);
  if (again) again.focus();
}
const enc = encodeURIComponent;

// ---- API ----------------------------------------------------------------------------
class ApiError extends Error { constructor(status, msg) { super(msg); this.status = status; } }

function authHeaders() {
  const t = sessionStorage.getItem(TOKEN_KEY);
  return t ? { Authorization: 'Bearer ' + t } : {};
}

async function api(method, path, body) {
  const headers = authHeaders();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && authMode) { logoutLocal(); throw new ApiError(401, 'please log in'); }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || (data && data.message) || text || res.statusText);
  return data;
}

// ---- formatting ---------------------------------------------------------------------
function fmtTime(iso) {
  if (!iso) return '—';
  // A number: seconds (creation_time); a text without a zone is UTC (the original's start_time).
  const zoned = typeof iso !== 'string' || /(Z|[+-]\d\d:?\d\d)$/.test(iso);
  const d = new Date(typeof iso === 'number' ? iso * 1000 : zoned ? iso : iso + 'Z');
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
function fmtDuration(s) {
  if (!s) return '—';
  s = Math.round(s);
  const hh = Math.floor(s / 3600), mm = Math.floor(s / 60) % 60, ss = s % 60;
  return hh ? `${hh}h ${mm}m ${ss}s` : mm ? `${mm}m ${ss}s` : `${ss}s`;
}
function fmtValue(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(+v.toPrecision(6));
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
// A listing metric's cell: a list when it was logged several times (the last shown, the count in the title).
function metricCell(v) {
  const list = Array.isArray(v), last = list ? v[v.length - 1] : v;
  return h('td', { class: typeof last === 'number' ? 'num' : '', ...(list ? { title: `${v.length} values logged; the last shown` } : {}) }, fmtValue(last));
}
function badge(status) { return h('span', { class: 'badge ' + status }, status); }
function jobLink(p, id, text) { return h('a', { href: `#/projects/${enc(p)}/jobs/${enc(id)}` }, text || id); }

// ---- views --------------------------------------------------------------------------
async function viewProjects(seq) {
  document.title = 'Projects · Atlas';
  const body = h('tbody');
  show(h('h1', {}, 'Projects'),
       h('div', { class: 'table-wrap' }, h('table', {},
         h('thead', {}, h('tr', {}, ['Project', 'Owner', 'Jobs', 'Active', 'Created', 'Last activity'].map(t => h('th', { scope: 'col' }, t)))),
         body)));
  live(async () => {
    const projects = await api('GET', '/api/v2beta/projects').catch(showError);
    if (!projects || seq !== viewSeq) return;
    if (!projects.length) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No jobs yet. Submit one with `foundations submit`.')));
      return;
    }
    body.replaceChildren(...projects.map(p => h('tr', {},
      h('td', {}, h('a', { href: '#/projects/' + enc(p.name) }, p.name)),
      h('td', {}, p.owner), h('td', { class: 'num' }, p.jobs), h('td', { class: 'num' }, p.active_jobs),
      h('td', {}, fmtTime(p.created_at)), h('td', {}, fmtTime(p.last_activity)))));
  }, kind => kind === 'job');
}

function viewProject(seq, project) {
  document.title = project + ' · Atlas';
  // One page of rows at a time (the server pages: cursor, total, version);
  // a poll sends the version it has and gets "unchanged" while nothing was written.
  const state = { sort: '-creation_time', status: '', text: '', cursor: '', back: [] };
  const table = h('table', { id: 'jobs' });
  const count = h('span', { class: 'muted', 'aria-live': 'polite' });
  const firstPage = () => { state.cursor = ''; state.back = []; last = null; };
  const statusSel = h('select', { id: 'f-status', onchange: () => { state.status = statusSel.value; firstPage(); refresh(); } },
    ['', 'queued', 'pending', 'running', 'completed', 'failed'].map(s => h('option', { value: s }, s || 'any')));
  const textIn = h('input', { id: 'f-text', type: 'search', placeholder: 'id, user, tag, value', oninput: () => { state.text = textIn.value.toLowerCase(); render(); } });
  let last = null;
  const panel = projectPanel(project); // project.js
  const selection = jobSelection(project, () => refresh()); // compare.js
  const pageInfo = h('span', { id: 'page-info', class: 'muted' });
  const prevBtn = h('button', { id: 'page-prev', type: 'button', disabled: true,
    onclick: () => { state.cursor = state.back.pop() || ''; last = null; refresh(); } }, '← Newer');
  const nextBtn = h('button', { id: 'page-next', type: 'button', disabled: true,
    onclick: () => { if (!last || !last.next_cursor) return; state.back.push(state.cursor); state.cursor = last.next_cursor; last = null; refresh(); } }, 'Older →');
  show(h('p', {}, h('a', { href: '#/' }, '← Projects')),
       h('h1', {}, 'Project ', project), panel.node,
       h('p', {}, h('a', { href: `#/projects/${enc(project)}/sweeps`, id: 'sweeps-link' }, 'Sweeps')),
       h('div', { class: 'toolbar' },
         h('label', { for: 'f-status' }, 'Status', statusSel),
         h('label', { for: 'f-text' }, 'Filter', textIn), count),
       selection.toolbar, h('div', { class: 'table-wrap' }, table),
       h('div', { class: 'toolbar pager' }, prevBtn, pageInfo, nextBtn));

  function sortButton(label, field) {
    const active = state.sort === field || state.sort === '-' + field;
    const arrow = !active ? '' : state.sort.startsWith('-') ? ' ▼' : ' ▲';
    return h('button', { class: 'sort', type: 'button', 'aria-label': `Sort by ${label}`,
      onclick: () => { state.sort = state.sort === '-' + field ? field : '-' + field; firstPage(); refresh(); } }, label + arrow);
  }
  function render() {
    if (!last) return;
    const params = last.parameters.map(p => p.name), metrics = last.output_metric_names.map(m => m.name);
    const jobs = last.jobs.filter(j => !state.text || [j.job_id, j.user, j.status,
      ...Object.entries(j.tags).flat(), ...j.job_parameters.map(p => fmtValue(p.value)),
      ...j.output_metrics.map(m => fmtValue(m.value))].join(' ').toLowerCase().includes(state.text));
    // An order no index keeps reads the project's newest jobs only: say so.
    const partial = last.scanned_jobs < last.project_jobs
      ? ` (this order covers the newest ${last.scanned_jobs} of ${last.project_jobs})` : '';
    count.textContent = (state.text ? `${jobs.length} of ${last.jobs.length} jobs on this page` : `${last.total} jobs`) + partial;
    const first = state.back.length * PAGE_ROWS;
    pageInfo.textContent = last.jobs.length ? `${first + 1}–${first + last.jobs.length} of ${last.total}` : '';
    prevBtn.disabled = !state.back.length;
    nextBtn.disabled = !last.next_cursor;
    const sortKey = state.sort.replace(/^-/, '');
    const th = (label, field, cls) => h('th', { scope: 'col', class: cls,
      'aria-sort': sortKey === field ? (state.sort.startsWith('-') ? 'descending' : 'ascending') : undefined }, sortButton(label, field));
    const head = h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Select')), th('Status', 'status'), th('Job ID', 'job_id'), th('User', 'user'),
      th('Launched', 'creation_time'), th('Duration', 'duration'), h('th', { scope: 'col' }, 'Sweep'), h('th', { scope: 'col' }, 'Tags'),
      params.map(p => th(p, 'param:' + p, 'group-param')), metrics.map(m => th(m, 'metric:' + m, 'group-metric')));
    const rows = jobs.map(j => {
      const pv = Object.fromEntries(j.job_parameters.map(p => [p.name, p.value]));
      const mv = Object.fromEntries(j.output_metrics.map(m => [m.name, m.value]));
      return h('tr', { 'data-job': j.job_id }, selection.cell(j),
        h('td', {}, badge(j.status)), h('td', {}, jobLink(project, j.job_id)), h('td', {}, j.user),
        h('td', {}, fmtTime(j.creation_time)), h('td', { class: 'num' }, fmtDuration(j.duration_s)),
        h('td', {}, j.sweep_id ? sweepLink(project, j.sweep_id) : ''),
        h('td', {}, Object.entries(j.tags).map(([k, v]) => h('span', { class: 'tag' }, v ? `${k}: ${v}` : k))),
        params.map(p => h('td', { class: typeof pv[p] === 'number' ? 'num' : '' }, fmtValue(pv[p]))),
        metrics.map(m => metricCell(mv[m])));
    });
    keepFocus(table, () => table.replaceChildren(h('thead', {}, head), h('tbody', {}, rows.length ? rows :
      h('tr', {}, h('td', { colspan: 8 + params.length + metrics.length, class: 'muted' }, 'No matching jobs.')))));
  }
  async function refresh() {
    const asked = currentQuery();
    const since = last ? `&since=${last.version}` : '';
    const data = await api('GET', `/api/v2beta/projects/${enc(project)}/job_listing?${asked}${since}`).catch(showError);
    if (!data || seq !== viewSeq || data.unchanged) return;
    if (asked !== currentQuery()) return; // the page moved on meanwhile
    // The overview chart changes only when jobs end (or are deleted).
    const ended = data.jobs.filter(j => ['completed', 'failed'].includes(j.status)).length;
    if (last && ended !== last.jobs.filter(j => ['completed', 'failed'].includes(j.status)).length) panel.refresh();
    last = data;
    selection.prune(data.jobs);
    render();
  }
  function currentQuery() {
    const q = new URLSearchParams({ sort: state.sort, limit: PAGE_ROWS });
    if (state.status) q.set('status', state.status);
    if (state.cursor) q.set('cursor', state.cursor);
    return q.toString();
  }
  live(refresh, (kind, e) => kind === 'job' && e.project === project);
}

// An SVG chart's frame for `points` ([[x, y], ...], numeric y): axes with their
// end values. Returns { root, svg, sx, sy }: the <svg>, an element maker and
// the scales (no axes nor scales without points).
function chartFrame(W, H, points, xLabel, ariaLabel) {
  const L = 52, R = 12, T = 12, B = 28;
  const svg = (tag, attrs) => { const e = document.createElementNS('http://www.w3.org/2000/svg', tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': ariaLabel });
  if (!points.length) return { root, svg };
  const range = (k) => points.reduce(([lo, hi], p) => [Math.min(lo, p[k]), Math.max(hi, p[k])], [Infinity, -Infinity]);
  let [x0, x1] = range(0), [y0, y1] = range(1);
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  root.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }), svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  const label = (x, y, text, anchor) => { const t = svg('text', { x, y, 'text-anchor': anchor }); t.textContent = text; root.append(t); };
  label(L - 6, T + 4, fmtValue(y1), 'end'); label(L - 6, H - B, fmtValue(y0), 'end');
  label(L, H - 8, String(x0), 'start'); label(W - R, H - 8, String(x1), 'end'); label((L + W - R) / 2, H - 8, xLabel, 'middle');
  return { root, svg, sx, sy };
}

// A polyline's points attribute, at most ~2000 of them so that the path stays small.
function polylinePoints(nums, sx, sy) {
  const step = Math.max(1, Math.floor(nums.length / 2000));
  return nums.filter((p, i) => i % step === 0 || i === nums.length - 1).map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
}

function lineChart(name, points, xLabel = 'step') {
  const nums = points.filter(p => typeof p[1] === 'number');
  const { root, svg, sx, sy } = chartFrame(420, 200, nums, xLabel,
    `${name}: ${nums.length} points, last ${nums.length ? fmtValue(nums[nums.length - 1][1]) : 'none'}`);
  if (!nums.length) return root;
  root.append(svg('polyline', { class: 'line', points: polylinePoints(nums, sx, sy) }));
  if (nums.length <= 100) // a dot per point, so that a single one shows too
    for (const p of nums) root.append(svg('circle', { class: 'dot', cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: 2.5 }));
  return root;
}

async function blobUrl(uri) {
  const res = await fetch(uri, { headers: authHeaders() });
  if (!res.ok) throw new ApiError(res.status, 'cannot fetch ' + uri);
  return URL.createObjectURL(await res.blob());
}

function followLogs(seq, id, pre) {
  // Streams /api/v1/jobs/<id>/logs?follow=1 (chunked, ends with the job).
  const ctl = new AbortController();
  aborts.push(ctl);
  (async () => {
    try {
      const res = await fetch(`/api/v1/jobs/${enc(id)}/logs?follow=1`, { headers: authHeaders(), signal: ctl.signal });
      if (!res.ok) throw new ApiError(res.status, await res.text());
      const reader = res.body.getReader(), dec = new TextDecoder();
      pre.textContent = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done || seq !== viewSeq) break;
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.textContent += dec.decode(value, { stream: true });
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      }
      pre.dataset.done = '1';
    } catch (e) {
      if (e.name !== 'AbortError') pre.textContent += `\n[log unavailable: ${e.message}]`;
    }
  })();
}

function viewJob(seq, project, id) {
  document.title = id + ' · Atlas';
  const head = h('div'), facts = h('div', { class: 'panel' }), tags = h('div'), params = h('div'),
        charts = h('div', { class: 'grid', id: 'charts' }), artifacts = h('div', { class: 'artifacts' }),
        pre = h('pre', { class: 'log', id: 'log', tabindex: '0', 'aria-label': 'Job log' }, 'Loading log…');
  const keyIn = h('input', { id: 'tag-key', required: true }), valIn = h('input', { id: 'tag-value' });
  const tagForm = h('form', { class: 'toolbar', onsubmit: async ev => {
      ev.preventDefault();
      try {
        await api('POST', `/api/v2beta/projects/${enc(project)}/job_listing/${enc(id)}/tags`, { tag: { key: keyIn.value, value: valIn.value } });
        keyIn.value = valIn.value = ''; toast('Tag added'); refresh();
      } catch (e) { showError(e); }
    } },
    h('label', { for: 'tag-key' }, 'Tag', keyIn), h('label', { for: 'tag-value' }, 'Value (optional)', valIn),
    h('button', { type: 'submit' }, 'Add tag'));
  show(h('p', {}, h('a', { href: '#/projects/' + enc(project) }, '← ' + project)), head, facts,
       h('h2', {}, 'Metrics'), charts, h('h2', {}, 'Parameters'), params,
       h('h2', {}, 'Tags'), tags, tagForm, h('h2', {}, 'Artifacts'), artifacts, h('h2', {}, 'Logs'), pre);
  followLogs(seq, id, pre);
  let shownArtifacts = '', shownSeries = '';
  async function refresh() {
    const j = await api('GET', `/api/v2beta/projects/${enc(project)}/job_listing/${enc(id)}`).catch(showError);
    if (!j || seq !== viewSeq) return;
    head.replaceChildren(h('h1', {}, badge(j.status), ' Job ', j.job_id));
    facts.replaceChildren(h('dl', { class: 'facts' }, [['User', j.user], ['Project', j.project],
      ['Launched', fmtTime(j.creation_time)], ['Started', fmtTime(j.start_time)],
      ['Finished', fmtTime(j.completed_time)], ['Duration', fmtDuration(j.duration_s)],
      ['Node / slot', j.slot || '—'], ['Exit code', j.return_code ?? '—'], ...(j.reason ? [['Reason', j.reason]] : [])]
      .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
    const seriesKey = JSON.stringify(Object.entries(j.series).map(([k, v]) => [k, v.length]));
    if (seriesKey !== shownSeries) {
      shownSeries = seriesKey;
      const entries = Object.entries(j.series);
      charts.replaceChildren(...(entries.length ? entries.map(([name, pts]) => {
        const numeric = pts.some(p => typeof p[1] === 'number');
        return h('figure', { class: 'chart', 'data-metric': name }, h('h3', {}, name, ' ', h('span', { class: 'muted' }, `(${pts.length} values, last ${fmtValue(pts[pts.length - 1][1])})`)),
          numeric ? lineChart(name, pts) : h('p', {}, pts.map(p => fmtValue(p[1])).join(', ')));
      }) : [h('p', { class: 'muted' }, 'No metrics logged.')]));
    }
    params.replaceChildren(j.job_parameters.length ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Parameter'), h('th', { scope: 'col' }, 'Value'))),
      h('tbody', {}, j.job_parameters.map(p => h('tr', {}, h('td', {}, p.name), h('td', {}, fmtValue(p.value)))))))
      : h('p', { class: 'muted' }, 'No parameters logged.'));
    const tagList = Object.entries(j.tags);
    keepFocus(tags, () => tags.replaceChildren(tagList.length ? h('div', {}, tagList.map(([k, v]) => h('span', { class: 'tag' }, v ? `${k}: ${v}` : k,
      h('button', { type: 'button', 'aria-label': `Remove tag ${k}`, onclick: async () => {
        try { await api('DELETE', `/api/v2beta/projects/${enc(project)}/job_listing/${enc(id)}/tags/${enc(k)}`); toast('Tag removed'); keyIn.focus(); refresh(); }
        catch (e) { showError(e); }
      } }, '×')))) : h('p', { class: 'muted' }, 'No tags.')));
    const artKey = JSON.stringify(j.artifacts) + j.status;
    if (artKey !== shownArtifacts) {
      shownArtifacts = artKey;
      artifacts.replaceChildren(...(j.artifacts.length ? j.artifacts.map(a => {
        const box = h('div', { class: 'artifact' });
        const link = h('button', { type: 'button', class: 'secondary', onclick: async () => {
          try { const url = await blobUrl(a.uri); const d = h('a', { href: url, download: a.path.split('/').pop() }); document.body.append(d); d.click(); d.remove(); }
          catch (e) { showError(e); }
        } }, `Download ${a.filename}`);
        if (a.artifact_type === 'image')
          blobUrl(a.uri).then(u => box.prepend(h('img', { src: u, alt: a.filename }))).catch(() => {});
        if (a.artifact_type === 'audio')
          blobUrl(a.uri).then(u => box.prepend(h('audio', { src: u, controls: '' }))).catch(() => {});
        box.append(h('div', {}, h('strong', {}, a.filename), ' ', h('span', { class: 'muted' }, `${a.size} bytes`)), link);
        return box;
      }) : [h('p', { class: 'muted' }, 'No artifacts saved.')]));
    }
  }
  live(refresh, (kind, e) => kind === 'job' && e.job_id === id, POLL_MS); // metrics come without events
}

function viewCluster(seq) {
  document.title = 'Cluster · Atlas';
  const totals = h('p', { id: 'totals' }), nodes = h('div'), queue = h('div');
  show(h('h1', {}, 'Cluster'), totals, nodes, h('h2', {}, 'Queue'), queue);
  live(async () => {
    const c = await api('GET', '/api/v2beta/cluster').catch(showError);
    if (!c || seq !== viewSeq) return;
    const t = c.totals;
    totals.textContent = `${t.nodes} node(s), ${t.slots} slot(s): ${t.busy} busy, ${t.free} free; ${t.gpus} GPU(s); ${t.queue_depth} job(s) queued`;
    nodes.replaceChildren(...c.nodes.map(n => h('section', { class: 'panel', 'data-node': n.node_id },
      h('h2', {}, n.node_id, ' ', h('span', { class: 'muted' }, `${n.role}${n.drained ? ', drained' : ''}`)),
      h('p', { class: 'muted' }, `${n.host_address} · version ${n.version} · heartbeat ${n.heartbeat_age_s === null ? '—' : n.heartbeat_age_s.toFixed(1) + ' s ago'} · ${n.busy} busy, ${n.free} free, ${n.gpus} GPU(s)`),
      h('div', { class: 'slots' }, n.slots.map(s => h('div', { class: 'slot' + (s.busy ? ' busy' : '') },
        h('div', {}, h('strong', {}, 'slot ' + s.index), ' ', s.busy ? 'busy' : 'free'),
        h('div', {}, s.busy ? h('a', { href: `#/job/${enc(s.current_job)}` }, s.current_job) : h('span', { class: 'muted' }, 'no job')),
        h('div', { class: 'muted' }, s.gpus.length ? 'GPU ' + s.gpus.join(', ') : 'no GPU', ` · ${s.jobs_run} run`),
        s.last_error ? h('div', { class: 'error' }, s.last_error) : null))))));
    if (!c.nodes.length) nodes.replaceChildren(h('p', { class: 'muted' }, 'No nodes have joined.'));
    queue.replaceChildren(c.queue.length ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['#', 'Job', 'Project', 'User', 'GPUs', 'Queued', 'Waiting because'].map(x => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, c.queue.map(q => h('tr', {}, h('td', { class: 'num' }, q.position), h('td', {}, jobLink(q.project, q.job_id)),
        h('td', {}, q.project), h('td', {}, q.user), h('td', { class: 'num' }, q.num_gpus), h('td', {}, fmtTime(q.creation_time)), h('td', {}, q.reason))))))
      : h('p', { class: 'muted' }, 'The queue is empty.'));
  }, () => true);
}

// A job known only by id (from the cluster view): find its project.
async function viewJobById(seq, id) {
  const rec = await api('GET', `/api/v1/jobs/${enc(id)}`).catch(showError);
  if (rec && seq === viewSeq) location.replace(`#/projects/${enc(rec.project_name)}/jobs/${enc(id)}`);
}

function viewLogin(message) {
  document.title = 'Log in · Atlas';
  const user = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'error', role: 'alert' }, message || '');
  show(h('section', { class: 'panel login' }, h('h1', {}, 'Log in to Atlas'),
    h('form', { onsubmit: async ev => {
      ev.preventDefault(); err.textContent = '';
      try {
        const tok = await api('POST', '/api/v2beta/auth/login', { username: user.value, password: pass.value });
        if (!tok || !tok.access_token) throw new Error('no token in the answer');
        sessionStorage.setItem(TOKEN_KEY, tok.access_token);
        if (tok.refresh_token) sessionStorage.setItem(REFRESH_KEY, tok.refresh_token);
        pass.value = '';
        updateWho(); route();
      } catch (e) { err.textContent = e.status === 401 ? 'Wrong user name or password.' : 'Login failed: ' + e.message; }
    } }, h('label', { for: 'username' }, 'User name', user), h('label', { for: 'password' }, 'Password', pass),
      h('button', { type: 'submit' }, 'Log in'), err)));
  user.focus();
}

function tokenUser() {
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (!t) return null;
  try {
    const b = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(decodeURIComponent(escape(atob(b + '='.repeat((4 - b.length % 4) % 4)))));
    return claims.preferred_username || claims.sub || '?';
  } catch (e) { return '?'; }
}
function updateWho() {
  const who = document.getElementById('who'), name = tokenUser();
  who.hidden = !(authMode && name);
  document.getElementById('who-name').textContent = name ? 'Signed in as ' + name : '';
}
function logoutLocal() {
  sessionStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(REFRESH_KEY);
  updateWho();
}
async function logout() {
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (refresh) await api('POST', '/api/v2beta/auth/logout', { refresh_token: refresh }).catch(() => {});
  logoutLocal(); route();
}

function showError(e) {
  if (e && e.status === 401 && authMode) { route(); return null; }
  toast('Error: ' + (e && e.message ? e.message : e));
  return null;
}

// ---- router -------------------------------------------------------------------------
function route() {
  timers.forEach(clearInterval); timers = [];
  aborts.forEach(a => a.abort()); aborts = [];
  onLiveEvent = null;
  const seq = ++viewSeq;
  if (authMode && !sessionStorage.getItem(TOKEN_KEY)) return viewLogin();
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll('[data-nav]')) a.toggleAttribute('aria-current', false);
  const nav = ['cluster', 'usage'].includes(parts[0]) ? parts[0] : 'projects';
  document.querySelector(`[data-nav="${nav}"]`).setAttribute('aria-current', 'page');
  if (parts[0] === 'cluster') return viewCluster(seq);
  if (parts[0] === 'usage') return viewUsage(seq);
  if (parts[0] === 'job' && parts[1]) return viewJobById(seq, parts[1]);
  if (parts[0] === 'projects' && parts[1] && parts[2] === 'jobs' && parts[3]) return viewJob(seq, parts[1], parts[3]);
  if (parts[0] === 'projects' && parts[1] && parts[2] === 'sweeps' && parts[3]) return viewSweep(seq, parts[1], parts[3]);
  if (parts[0] === 'projects' && parts[1] && parts[2] === 'sweeps') return viewSweeps(seq, parts[1]);
  if (parts[0] === 'projects' && parts[1]) return viewProject(seq, parts[1]);
  return viewProjects(seq);
}

async function start() {
  document.getElementById('logout').addEventListener('click', logout);
  try {
    const health = await (await fetch('/healthz')).json();
    authMode = health.auth === true;
  } catch (e) { /* an older node without the field: no auth */ }
  updateWho(); startLive();
  window.addEventListener('hashchange', route);
  route();
}
start();
