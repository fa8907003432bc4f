// "TensorBoard" for the selected jobs: one download of their event files, a
// folder per job, as `foundations tensorboard <env> <job_id>...` saves them.
// Each job's node packs its own folder (GET .../job_listing/<id>/tensorboard,
// entries "<id>/..."); the page joins the tars, so that jobs run on
// different nodes end up in one archive without the master holding them all. Loaded before app.js, whose helpers (h, enc, toast,
// authHeaders, ApiError) it calls.
'use strict';

const TB_FOLDER = 'atlas_tensorboard';
const TB_TAG = 'tensorboard_logdir'; // the SDK tags a job that kept event files
const NO_TB_FILES = 'no TensorBoard files (did it call foundations.set_tensorboard_logdir()?)';

async function gunzip(bytes) {
  return new Uint8Array(await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).arrayBuffer());
}
async function gzip(bytes) {
  return new Blob([await new Response(new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer()]);
}

// The size field of a tar header: octal text, or base-256 when its top bit is set.
function tarEntrySize(block) {
  const field = block.subarray(124, 136);
  if (field[0] & 0x80) return field.subarray(1).reduce((n, b) => n * 256 + b, field[0] & 0x7f);
  return parseInt(new TextDecoder().decode(field).replace(/\0.*$/s, '').trim() || '0', 8);
}

// The entries of a tar without its end-of-archive blocks, so tars can be joined.
function tarEntries(tar) {
  let at = 0;
  while (at + 512 <= tar.length) {
    const block = tar.subarray(at, at + 512);
    if (block.every((b) => b === 0)) break;
    at += 512 + Math.ceil(tarEntrySize(block) / 512) * 512;
  }
  return tar.subarray(0, Math.min(at, tar.length));
}

async function jobEventFiles(project, id) {
  const res = await fetch(`/api/v2beta/projects/${enc(project)}/job_listing/${enc(id)}/tensorboard`, { headers: authHeaders() });
  if (!res.ok) {
    const text = await res.text();
    let msg = text;
    try { msg = JSON.parse(text).error || text; } catch (e) { /* plain text */ }
    if (res.status === 404 && msg.includes(TB_FOLDER)) msg = NO_TB_FILES;
    throw new ApiError(res.status, msg);
  }
  return tarEntries(await gunzip(await res.arrayBuffer()));
}

// Downloads tensorboard-<project>.tgz of `jobs` (listing rows); a message per
// job without files. Jobs without the SDK's tag are not asked for.
async function downloadTensorboard(project, jobs, messages) {
  const parts = [];
  const kept = [];
  for (const { job_id: id, tags } of jobs) {
    if (!(tags && TB_TAG in tags)) { messages.append(h('li', { 'data-job': id }, `${id}: ${NO_TB_FILES}`)); continue; }
    try { parts.push(await jobEventFiles(project, id)); kept.push(id); } catch (e) { messages.append(h('li', { 'data-job': id }, `${id}: ${e.message}`)); }
  }
  if (!parts.length) { toast('None of the selected jobs kept TensorBoard files'); return; }
  const tar = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + 1024); // + the end-of-archive blocks
  let at = 0;
  for (const p of parts) { tar.set(p, at); at += p.length; }
  const name = `tensorboard-${project.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  const link = h('a', { href: URL.createObjectURL(await gzip(tar)), download: `${name}.tgz` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  messages.append(h('li', { class: 'hint', id: 'tensorboard-hint' },
    `Saved ${name}.tgz (${kept.length} job(s)); run: mkdir ${name} && tar -xzf ${name}.tgz -C ${name} && tensorboard --logdir ${name}`));
}
