// Selection toolbar of the job table: a checkbox per row, then Delete the
// selected finished jobs (DELETE .../job_listing/<id>, a message per job the
// server refused) or Compare one metric's full curve across them on one chart
// (each job's series from GET .../job_listing/<id>, as on the job page), or
// download their TensorBoard files in one archive (tensorboard.js).
// Loaded before app.js, whose helpers (h, api, enc, toast, fmtValue) it calls.
'use strict';

const SERIES_COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04'];

// series: [{ label, points: [[x, y], ...] }]; one polyline per series, a legend below.
function multiLineChart(name, series) {
  const W = 560, H = 240, L = 52, R = 12, T = 12, B = 28;
  const svg = (tag, attrs) => { const e = document.createElementNS('http://www.w3.org/2000/svg', tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
  const all = series.flatMap(s => s.points.filter(p => typeof p[1] === 'number'));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${name}: ${series.length} job(s)` });
  if (!all.length) return root;
  let x0 = Math.min(...all.map(p => p[0])), x1 = Math.max(...all.map(p => p[0]));
  let y0 = Math.min(...all.map(p => p[1])), y1 = Math.max(...all.map(p => p[1]));
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R), sy = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  root.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }), svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  const label = (x, y, text, anchor) => { const t = svg('text', { x, y, 'text-anchor': anchor }); t.textContent = text; root.append(t); };
  label(L - 6, T + 4, fmtValue(y1), 'end'); label(L - 6, H - B, fmtValue(y0), 'end');
  label(L, H - 8, String(x0), 'start'); label(W - R, H - 8, String(x1), 'end'); label((L + W - R) / 2, H - 8, 'step', 'middle');
  series.forEach((s, i) => {
    const nums = s.points.filter(p => typeof p[1] === 'number');
    const step = Math.max(1, Math.floor(nums.length / 2000)); // keep each path small
    const pts = nums.filter((p, k) => k % step === 0 || k === nums.length - 1).map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`);
    root.append(svg('polyline', { class: 'series', 'data-job': s.label, points: pts.join(' '),
      stroke: SERIES_COLORS[i % SERIES_COLORS.length], fill: 'none', 'stroke-width': 1.5 }));
  });
  return root;
}

// Returns { toolbar, cell(job), prune(jobs) }: the toolbar node, the checkbox cell of a row,
// and a call that forgets selected jobs no longer listed. `reload` refreshes the table.
function jobSelection(project, reload) {
  const selected = new Set();
  const rows = new Map(); // job_id -> the listing's row, as last shown
  const base = `/api/v2beta/projects/${enc(project)}/job_listing`;
  const count = h('span', { class: 'muted', id: 'selected-count', 'aria-live': 'polite' }, '0 selected');
  const messages = h('ul', { id: 'selection-messages', class: 'messages', role: 'alert' });
  const metricSel = h('select', { id: 'compare-metric', onchange: () => drawCompare() });
  const figure = h('figure', { class: 'chart compare', id: 'compare-chart', hidden: true });
  let fetched = []; // [{ id, series }] of the last Compare
  let listedCount = 0;
  const updateCount = () => { count.textContent = `${selected.size} selected`; };

  async function deleteSelected() {
    if (!selected.size) { toast('Select jobs first'); return; }
    if (!confirm(`Delete ${selected.size} job(s) and their files?`)) return;
    messages.replaceChildren();
    let deleted = 0;
    for (const id of [...selected]) {
      try {
        await api('DELETE', `${base}/${enc(id)}`);
        selected.delete(id); deleted++;
        const row = document.querySelector(`tr[data-job="${CSS.escape(id)}"]`);
        if (row) row.remove();
      } catch (e) { messages.append(h('li', { 'data-job': id }, `${id}: ${e.message}`)); }
    }
    updateCount();
    // A project without jobs no longer exists: back to the list of projects.
    if (deleted && deleted >= listedCount) { toast(`Deleted ${deleted} job(s)`); location.hash = '#/'; return; }
    reload();
  }
  async function compare() {
    if (!selected.size) { toast('Select jobs first'); return; }
    messages.replaceChildren();
    const ids = [...selected];
    const answers = await Promise.all(ids.map(id => api('GET', `${base}/${enc(id)}`).then(j => ({ id, series: j.series }),
      e => { messages.append(h('li', { 'data-job': id }, `${id}: ${e.message}`)); return null; })));
    fetched = answers.filter(Boolean);
    const names = [...new Set(fetched.flatMap(f => Object.keys(f.series)))].sort();
    const keep = metricSel.value;
    metricSel.replaceChildren(...names.map(n => h('option', { value: n }, n)));
    if (names.includes(keep)) metricSel.value = keep;
    drawCompare();
  }
  async function tensorboard() {
    if (!selected.size) { toast('Select jobs first'); return; }
    messages.replaceChildren();
    await downloadTensorboard(project, [...selected].map(id => rows.get(id) || { job_id: id }), messages);
  }
  function drawCompare() {
    figure.hidden = false;
    const name = metricSel.value;
    if (!name) { figure.replaceChildren(h('p', { class: 'muted' }, 'The selected jobs logged no metrics.')); return; }
    const series = fetched.filter(f => f.series[name]).map(f => ({ label: f.id, points: f.series[name] }));
    figure.setAttribute('data-metric', name);
    figure.replaceChildren(multiLineChart(name, series),
      h('figcaption', {}, h('ul', { class: 'legend' }, series.map((s, i) => h('li', { 'data-job': s.label },
        h('span', { class: 'swatch', style: `background:${SERIES_COLORS[i % SERIES_COLORS.length]}` }), s.label)))));
  }
  const toolbar = h('div', { class: 'selection' },
    h('div', { class: 'toolbar' }, count,
      h('button', { type: 'button', id: 'delete-selected', class: 'danger', onclick: deleteSelected }, 'Delete selected'),
      h('button', { type: 'button', id: 'compare-selected', onclick: compare }, 'Compare'),
      h('button', { type: 'button', id: 'tensorboard-selected', onclick: tensorboard }, 'TensorBoard'),
      h('label', { for: 'compare-metric' }, 'Metric', metricSel)),
    messages, figure);
  function cell(job) {
    rows.set(job.job_id, job);
    const box = h('input', { type: 'checkbox', 'aria-label': `Select job ${job.job_id}`, checked: selected.has(job.job_id),
      onchange: () => { if (box.checked) selected.add(job.job_id); else selected.delete(job.job_id); updateCount(); } });
    return h('td', {}, box);
  }
  function prune(jobs) {
    const listed = new Set(jobs.map(j => j.job_id));
    listedCount = jobs.length;
    for (const id of [...selected]) if (!listed.has(id)) selected.delete(id);
    for (const id of [...rows.keys()]) if (!listed.has(id)) rows.delete(id);
    updateCount();
  }
  return { toolbar, cell, prune };
}
