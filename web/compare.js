// Selection toolbar of the job table: a checkbox per row, then Delete the
// selected finished jobs (DELETE .../job_listing/<id>, a message per job the
// server refused) or Compare one metric's full curve across them on one chart
// (each job's series from GET .../job_listing/<id>, as on the job page), or
// download their TensorBoard files in one archive (tensorboard.js).
// Loaded before app.js, whose helpers (h, api, enc, toast, chartFrame, polylinePoints) it calls.
'use strict';

const SERIES_COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4b5563', '#ca8a04'];

// series: [{ label, points: [[x, y], ...] }]; one polyline per series (the legend is the caller's).
function multiLineChart(name, series) {
  const numeric = (s) => s.points.filter(p => typeof p[1] === 'number');
  const { root, svg, sx, sy } = chartFrame(560, 240, series.flatMap(numeric), 'step', `${name}: ${series.length} job(s)`);
  if (!sx) return root;
  series.forEach((s, i) => root.append(svg('polyline', { class: 'series', 'data-job': s.label,
    points: polylinePoints(numeric(s), sx, sy), stroke: SERIES_COLORS[i % SERIES_COLORS.length], fill: 'none', 'stroke-width': 1.5 })));
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
