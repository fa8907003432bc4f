// Atlas dashboard, the Usage view (#/usage): what the jobs that ended in some
// UTC days used, per user or project, from /api/v1/usage, as a table and a
// bar chart. Loaded before app.js, whose helpers (h, api, live) it calls.
'use strict';

const DAY_MS = 86400e3;
const utcDay = ms => new Date(ms).toISOString().slice(0, 10); // YYYY-MM-DD
const hours = s => !s ? '—' : s < 36 ? '< 0.01' : (s / 3600).toFixed(2);
// A cell of hours, with the exact time on hover (short jobs read as "< 0.01").
const hoursCell = (s, title) => h('td', { class: 'num', title: title || (s ? fmtDuration(s) : undefined) }, hours(s));
function fmtBytes(b) {
  if (!b) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : String(b)) + ' ' + units[i];
}

// Horizontal bars, one per row: GPU-seconds, or slot-seconds when no row used a GPU.
function usageChart(rows, by) {
  const gpu = rows.some(r => r.gpu_seconds > 0);
  const value = r => gpu ? r.gpu_seconds : r.slot_seconds;
  const max = Math.max(0, ...rows.map(value));
  const what = gpu ? 'GPU-hours' : 'slot-hours (no GPU use)';
  return [h('h2', {}, 'By ', what),
    h('div', { id: 'usage-chart', class: 'bars', role: 'list', 'aria-label': `${what} per ${by}` },
      rows.map(r => h('div', { class: 'bar-row', role: 'listitem', 'data-name': r[by] },
        h('span', { class: 'bar-name' }, r[by] || '(none)'),
        h('span', { class: 'bar-track' }, h('span', { class: 'bar', style: `width: ${max ? (100 * value(r) / max).toFixed(1) : 0}%` })),
        h('span', { class: 'bar-value', title: fmtDuration(value(r)) }, hours(value(r)) + ' h'))))];
}

function viewUsage(seq) {
  document.title = 'Usage · Atlas';
  const now = Date.now();
  const sinceIn = h('input', { id: 'u-since', type: 'date', value: utcDay(now - 30 * DAY_MS), onchange: () => load() });
  const untilIn = h('input', { id: 'u-until', type: 'date', value: utcDay(now), onchange: () => load() });
  const bySel = h('select', { id: 'u-by', onchange: () => load() },
    ['user', 'project'].map(b => h('option', { value: b }, b)));
  const table = h('table', { id: 'usage' }), chart = h('div'), note = h('p', { class: 'muted', 'aria-live': 'polite' });
  show(h('h1', {}, 'Usage'),
       h('div', { class: 'toolbar' },
         h('label', { for: 'u-since' }, 'From (UTC day)', sinceIn),
         h('label', { for: 'u-until' }, 'To (UTC day)', untilIn),
         h('label', { for: 'u-by' }, 'Per', bySel), note),
       h('div', { class: 'table-wrap' }, table), chart);

  async function load() {
    const since = Date.parse(sinceIn.value + 'T00:00:00Z') / 1000;
    const until = Date.parse(untilIn.value + 'T23:59:59Z') / 1000;
    if (!(since <= until)) { note.textContent = 'Choose a first day before the last.'; return; }
    const by = bySel.value;
    const data = await api('GET', `/api/v1/usage?${new URLSearchParams({ by, since, until })}`).catch(showError);
    if (!data || seq !== viewSeq || by !== bySel.value) return;
    const rows = data.rows || [];
    note.textContent = `${rows.length} ${by}(s), ${rows.reduce((n, r) => n + r.jobs, 0)} job(s)`;
    const head = h('tr', {}, [by === 'user' ? 'User' : 'Project', 'Jobs', 'Slot-hours', 'GPU-hours', 'CPU-hours', 'Peak memory']
      .map((t, i) => h('th', { scope: 'col', class: i ? 'num' : undefined }, t)));
    table.replaceChildren(h('thead', {}, head), h('tbody', {}, rows.length ? rows.map(r => h('tr', { 'data-name': r[by] },
      h('td', {}, r[by] || '(none)'), h('td', { class: 'num' }, r.jobs), hoursCell(r.slot_seconds),
      hoursCell(r.gpu_seconds, Object.entries(r.gpu_seconds_by_model || {}).map(([m, s]) => `${m}: ${fmtDuration(s)}`).join(', ')),
      hoursCell(r.cpu_seconds), h('td', { class: 'num' }, fmtBytes(r.peak_memory_bytes))))
      : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No jobs ended in these days.'))));
    chart.replaceChildren(...(rows.length ? usageChart(rows, by) : []));
  }
  // Totals change when a job ends.
  live(load, (kind, e) => kind === 'job' && ['completed', 'failed', 'cancelled'].includes(e.state));
}
