// Atlas dashboard, a project's panel above its job table: the description
// (editable), the notes (add one) and the overview chart of one metric
// across the project's jobs, from the original's description, note_listing
// and overview_metrics routes. Loaded before app.js, whose helpers (h, api,
// lineChart, fmtTime, toast) it calls when the view is built.
'use strict';

/// Whether the request was taken (an error is shown when not).
async function sent(method, path, body) {
  try { await api(method, path, body); return true; } catch (e) { showError(e); return false; }
}

function projectPanel(project) {
  const base = `/api/v2beta/projects/${enc(project)}`;
  const desc = h('p', { id: 'project-description' });
  const editBtn = h('button', { type: 'button', id: 'edit-description' }, 'Edit description');
  const descBox = h('div', {}, desc, editBtn);
  const notes = h('ul', { id: 'notes', class: 'notes' });
  const noteIn = h('input', { id: 'note-text', type: 'text', placeholder: 'Add a note' });
  const noteForm = h('form', { class: 'toolbar', onsubmit: async e => {
    e.preventDefault();
    const message = noteIn.value.trim();
    if (!message) return;
    if (!await sent('POST', `${base}/note_listing`, { message })) return;
    noteIn.value = '';
    loadNotes();
  } }, h('label', { for: 'note-text' }, 'Note', noteIn), h('button', { type: 'submit' }, 'Add note'));
  const metricSel = h('select', { id: 'overview-metric', onchange: () => drawOverview() });
  const figure = h('figure', { id: 'overview-chart', class: 'chart' });
  let overview = null;

  async function loadDescription() {
    const d = await api('GET', `${base}/description`).catch(() => null);
    const text = d && d.project_description;
    desc.textContent = text || 'No description yet.';
    desc.classList.toggle('muted', !text);
  }
  function editDescription() {
    const area = h('textarea', { id: 'description-text', rows: 3, 'aria-label': 'Project description' });
    area.value = desc.classList.contains('muted') ? '' : desc.textContent;
    const save = h('button', { type: 'button', onclick: async () => {
      if (!await sent('PUT', `${base}/description`, { project_description: area.value })) return;
      descBox.replaceChildren(desc, editBtn);
      loadDescription();
    } }, 'Save description');
    descBox.replaceChildren(area, save);
    area.focus();
  }
  editBtn.onclick = editDescription;
  async function loadNotes() {
    const list = await api('GET', `${base}/note_listing`).catch(() => null);
    notes.replaceChildren(...(list || []).map(n =>
      h('li', {}, h('span', { class: 'muted' }, fmtTime(typeof n.time === 'number' ? n.time : n.date), ' · ', n.author || ''), ' ', n.message)));
  }
  function drawOverview() {
    const q = overview && overview.metric_query.find(m => m.metric_name === metricSel.value);
    // x: the job's place in creation order, y: its value of the metric.
    const points = q ? q.values.map((v, i) => [i + 1, v[1]]) : [];
    figure.setAttribute('data-metric', metricSel.value);
    figure.replaceChildren(lineChart(metricSel.value, points, 'job'), h('figcaption', {}, `${metricSel.value} across ${points.length} job(s), oldest first`));
  }
  async function loadOverview() {
    overview = await api('GET', `${base}/overview_metrics`).catch(() => null);
    const names = overview ? overview.all_metric_names : [];
    const keep = metricSel.value;
    metricSel.replaceChildren(...names.map(n => h('option', { value: n }, n)));
    if (names.includes(keep)) metricSel.value = keep;
    if (names.length) drawOverview(); else figure.replaceChildren(h('p', { class: 'muted' }, 'No metrics logged yet.'));
  }
  loadDescription();
  loadNotes();
  loadOverview();
  return {
    node: h('section', { class: 'panel', id: 'project-panel' },
      h('h2', {}, 'About this project'), descBox,
      h('h2', {}, 'Notes'), notes, noteForm,
      h('h2', {}, 'Overview'), h('label', { for: 'overview-metric' }, 'Metric', metricSel), figure),
    refresh: loadOverview,
  };
}
