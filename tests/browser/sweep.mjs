// Drives Debian's Chromium through a sweep's view (web/sweeps.js) with
// playwright-core: the project's job table in pages of 50 (polled with
// since=, answered "unchanged"), from its Sweep column to the
// sweep, where every trial is listed with its params and final metric, the
// best one is marked, and a click on a column sorts by it.
// Usage: node sweep.mjs <dashboard-url> <project> <sweep-id> <trials> <best-job-id> <out-dir>
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [url, project, sweepId, trialsText, bestId, out] = process.argv.slice(2);
const trials = Number(trialsText);
fs.mkdirSync(out, { recursive: true });
const shot = (name) => path.join(out, 'sweep-' + name);
const step = (what) => console.log(`browser: ${what}`);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const listings = []; // the job table's requests, to see it page and poll with since=
page.on('response', async (r) => {
  if (!r.url().includes('/job_listing?')) return;
  try { listings.push({ url: r.url(), body: await r.json() }); } catch (e) { /* not JSON */ }
});
try {
  step('job table: one page of 50 rows, then the next');
  await page.goto(`${url}/#/projects/${encodeURIComponent(project)}`, { waitUntil: 'load' });
  await page.locator('#page-info', { hasText: `1–50 of ${trials}` }).waitFor({ timeout: 30000 });
  const firstPage = await page.locator('#jobs tbody tr[data-job]').count();
  if (firstPage !== 50) throw new Error(`first page shows ${firstPage} rows`);
  if (!(await page.locator('#page-prev').isDisabled())) throw new Error('"newer" is enabled on the first page');
  const firstIds = await page.locator('#jobs tbody tr[data-job]').evaluateAll((trs) => trs.map((t) => t.dataset.job));
  await page.locator('#page-next').click();
  await page.locator('#page-info', { hasText: `51–100 of ${trials}` }).waitFor({ timeout: 10000 });
  const secondIds = await page.locator('#jobs tbody tr[data-job]').evaluateAll((trs) => trs.map((t) => t.dataset.job));
  if (new Set([...firstIds, ...secondIds]).size !== 100) throw new Error('the two pages overlap or miss jobs');
  await page.screenshot({ path: shot('0-job-pages.png'), fullPage: true });
  // Polls ask with the version they hold and get "unchanged": no rows resent.
  const deadline = Date.now() + 25000; // polls come every 10 s with the event stream open
  while (!listings.some((l) => l.url.includes('since=') && l.body.unchanged) && Date.now() < deadline)
    await page.waitForTimeout(250);
  if (!listings.some((l) => l.url.includes('since=') && l.body.unchanged))
    throw new Error('the job table never polled with since= (or was always resent)');
  if (listings.some((l) => !l.body.unchanged && l.body.jobs && l.body.jobs.length > 50))
    throw new Error('a listing answer held more than one page');
  await page.locator('#page-prev').click();
  await page.locator('#page-info', { hasText: `1–50 of ${trials}` }).waitFor({ timeout: 10000 });

  step('job table links to the sweep');
  const sweepLink = page.getByRole('link', { name: sweepId, exact: true }).first();
  await sweepLink.waitFor({ timeout: 30000 });
  await sweepLink.click();

  step('sweep view: every trial with its params and metric');
  const rows = page.locator('#trials tbody tr[data-job]');
  await page.waitForFunction((n) => document.querySelectorAll('#trials tbody tr[data-job]').length === n,
                             trials, { timeout: 30000 });
  for (const header of ['lr', 'width', 'loss'])
    await page.getByRole('button', { name: 'Sort by ' + header, exact: true }).waitFor({ timeout: 10000 });
  const facts = await page.locator('#sweep-facts').textContent();
  if (!facts.includes(`${trials} completed`)) throw new Error('sweep facts: ' + facts);
  const empty = await page.locator('#trials tbody td[data-metric="loss"]').evaluateAll(
    (tds) => tds.filter((td) => td.textContent === '—').length);
  if (empty) throw new Error(`${empty} trials show no loss`);
  await page.screenshot({ path: shot('1-trials.png'), fullPage: true });

  step('the best trial is marked');
  const marked = page.locator('#trials tbody tr.best');
  if ((await marked.count()) !== 1) throw new Error(`${await marked.count()} trials marked best`);
  const markedId = await marked.getAttribute('data-job');
  if (markedId !== bestId) throw new Error(`best marked ${markedId}, expected ${bestId}`);
  if (!(await marked.locator('.best-mark').textContent()).includes('best')) throw new Error('no best mark text');

  step('sorting by clicking a column');
  await page.getByRole('button', { name: 'Sort by loss', exact: true }).click();
  await page.locator('th[aria-sort="ascending"] button', { hasText: 'loss' }).waitFor({ timeout: 10000 });
  const first = await rows.first().getAttribute('data-job');
  if (first !== bestId) throw new Error(`sorted by loss ascending, first is ${first}, expected ${bestId}`);
  const losses = await page.locator('#trials tbody td[data-metric="loss"]').allTextContents();
  const nums = losses.map(Number);
  for (let i = 1; i < nums.length; i++)
    if (nums[i] < nums[i - 1]) throw new Error(`not sorted at row ${i}: ${nums[i - 1]} then ${nums[i]}`);
  await page.getByRole('button', { name: 'Sort by loss', exact: true }).click();
  await page.locator('th[aria-sort="descending"] button', { hasText: 'loss' }).waitFor({ timeout: 10000 });
  if ((await rows.last().getAttribute('data-job')) !== bestId) throw new Error('descending: best is not last');
  await page.getByRole('button', { name: 'Sort by lr', exact: true }).click();
  await page.locator('th[aria-sort="ascending"] button', { hasText: 'lr' }).waitFor({ timeout: 10000 });
  await page.screenshot({ path: shot('2-sorted.png'), fullPage: true });

  step('best by another column: maximize loss marks another trial');
  await page.locator('#best-goal').selectOption('maximize');
  const worst = await page.locator('#trials tbody tr.best').getAttribute('data-job');
  if (worst === bestId) throw new Error('maximize kept the same best trial');

  step('the project lists the sweep');
  await page.goto(`${url}/#/projects/${encodeURIComponent(project)}/sweeps`, { waitUntil: 'load' });
  const row = page.locator(`#sweeps tr[data-sweep="${sweepId}"]`);
  await row.waitFor({ timeout: 20000 });
  const cells = await row.locator('td').allTextContents();
  if (cells[2] !== String(trials)) throw new Error('sweep row: ' + cells.join(' | '));
  await page.screenshot({ path: shot('3-sweeps.png'), fullPage: true });
  if (consoleErrors.length) throw new Error('console errors: ' + consoleErrors.join(' | '));
  step('all checks passed');
} catch (e) {
  failed = true;
  console.error('browser: FAILED: ' + (e && e.stack ? e.stack : e));
  await page.screenshot({ path: shot('failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
