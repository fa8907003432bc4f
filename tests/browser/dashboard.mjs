// Drives Debian's Chromium through the dashboard with playwright-core:
// the job appears, turns completed, its page shows logs and a chart; tags
// are edited with the keyboard; the cluster view lists the node; the usage
// view shows the job's user with a bar; the job table's selection compares
// the loss curves of two jobs, downloads the TensorBoard files of the one that
// kept them (the other named as having none), and deletes both.
// Usage: node dashboard.mjs <dashboard-url> <project> <job-id>,<tensorboard-job-id> <out-dir> [<user> <password>]
// With a user (a node in -p mode) the page must ask for a login first,
// refuse a wrong password, show who is signed in, and log out.
// (Playwright gives Chromium a fresh temporary profile of its own.)
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const [url, project, jobIds, out, user, password] = process.argv.slice(2);
const [jobId, tbJobId] = jobIds.split(',');
const shot = (name) => path.join(out, (user ? 'auth-' : '') + name);
fs.mkdirSync(out, { recursive: true });
const step = (what) => console.log(`browser: ${what}`);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1366, height: 860 } });
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const requests = [];
page.on('request', (r) => requests.push(r.url()));
try {
  await page.goto(url + '/', { waitUntil: 'load' });
  if (user) {
    step('login form');
    await page.getByLabel('User name').waitFor({ timeout: 20000 });
    await page.screenshot({ path: shot('0-login.png'), fullPage: true });
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(password + '-wrong');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong user name or password' }).waitFor({ timeout: 20000 });
    await page.getByLabel('Password').fill(password);
    await page.getByLabel('Password').press('Enter');
    await page.locator('#who-name', { hasText: 'Signed in as ' + user }).waitFor({ timeout: 20000 });
    const stored = await page.evaluate(() => sessionStorage.getItem('atlas.token'));
    if (!stored || stored.split('.').length !== 3) throw new Error('no token kept in sessionStorage');
  }
  step('projects view');
  const projectLink = page.getByRole('link', { name: project, exact: true });
  await projectLink.waitFor({ timeout: 20000 });
  await page.screenshot({ path: shot('1-projects.png'), fullPage: true });
  // Without -p there is no login and no user to show.
  if (!user && !(await page.locator('#who').isHidden())) throw new Error('the logout button shows without auth');
  await projectLink.click();

  step('job table: the job appears');
  const row = page.locator(`tr[data-job="${jobId}"]`);
  await row.waitFor({ timeout: 20000 });
  const firstStatus = await row.locator('.badge').textContent();
  step(`first status seen: ${firstStatus}`);
  await page.screenshot({ path: shot('2-job-table-first.png'), fullPage: true });
  await row.locator('.badge', { hasText: 'completed' }).waitFor({ timeout: 60000 });
  step('the job turned completed');
  // One column per parameter and metric, with the latest value.
  for (const header of ['learning_rate', 'loss', 'accuracy']) {
    await page.locator('th', { hasText: header }).first().waitFor({ timeout: 10000 });
  }
  // A metric logged many times comes as a list: the cell shows its last value, the title the count.
  const lossCell = row.locator('td[title*="values logged"]').first();
  await lossCell.waitFor({ timeout: 10000 });
  const lossText = (await lossCell.textContent()).trim();
  if (lossText.startsWith('[') || Number.isNaN(Number(lossText))) throw new Error(`metric cell shows ${lossText}`);
  const launched = await row.locator('td').nth(3).textContent();
  if (/Invalid|1970/.test(launched)) throw new Error(`launch time shows ${launched}`);
  await page.screenshot({ path: shot('3-job-table-completed.png'), fullPage: true });
  step('project panel: description, a note, the overview chart');
  await page.getByRole('button', { name: 'Edit description' }).click();
  await page.getByLabel('Project description').fill('Trains the demo model');
  await page.getByRole('button', { name: 'Save description' }).click();
  await page.locator('#project-description', { hasText: 'Trains the demo model' }).waitFor({ timeout: 10000 });
  await page.getByLabel('Note').fill('first run looks fine');
  await page.getByLabel('Note').press('Enter');
  await page.locator('#notes li', { hasText: 'first run looks fine' }).waitFor({ timeout: 10000 });
  const noteText = await page.locator('#notes li', { hasText: 'first run looks fine' }).textContent();
  if (/Invalid|—/.test(noteText)) throw new Error(`the note's date shows: ${noteText}`);
  await page.locator('#overview-chart svg circle.dot').first().waitFor({ timeout: 20000 });
  // Sorting by a column is a real button.
  await page.getByRole('button', { name: 'Sort by loss' }).click();
  await page.locator('th[aria-sort] button', { hasText: 'loss' }).waitFor({ timeout: 10000 });

  step('job page: logs and a chart');
  await row.getByRole('link', { name: jobId }).click();
  await page.locator('#log', { hasText: 'training finished' }).waitFor({ timeout: 20000 });
  const chart = page.locator('figure[data-metric="loss"] svg polyline');
  await chart.waitFor({ timeout: 20000 });
  const points = (await chart.getAttribute('points')).trim().split(/\s+/).length;
  if (points !== 40) throw new Error(`the loss chart has ${points} points, expected 40`);
  await page.locator('figure[data-metric="accuracy"] svg polyline').waitFor();
  // start_time comes as the original's zone-less UTC text: it must still read as a date.
  const facts = await page.locator('#main').textContent();
  if (/Invalid Date/.test(facts)) throw new Error('the job page shows an invalid date');
  await page.locator('.artifact img').waitFor({ timeout: 20000 });
  const imgOk = await page.locator('.artifact img').evaluate((img) => img.complete && img.naturalWidth > 0);
  if (!imgOk) throw new Error('the image artifact did not render');

  step('tags: add one with the keyboard, then remove it');
  await page.locator('#tag-key').focus();
  await page.keyboard.type('reviewed');
  await page.keyboard.press('Tab');
  await page.keyboard.type('yes');
  await page.keyboard.press('Enter');
  await page.locator('.tag', { hasText: 'reviewed: yes' }).waitFor({ timeout: 10000 });
  await page.screenshot({ path: shot('4-job-page.png'), fullPage: true });
  await page.getByRole('button', { name: 'Remove tag reviewed' }).click();
  await page.locator('.tag', { hasText: 'reviewed: yes' }).waitFor({ state: 'detached', timeout: 10000 });

  step('cluster view');
  await page.getByRole('link', { name: 'Cluster' }).click();
  await page.locator('[data-node] .slot').first().waitFor({ timeout: 10000 });
  const totals = await page.locator('#totals').textContent();
  if (!/1 node\(s\), 1 slot\(s\)/.test(totals)) throw new Error('cluster totals: ' + totals);
  await page.screenshot({ path: shot('5-cluster.png'), fullPage: true });

  step('usage view: a row per user and a bar');
  await page.getByRole('link', { name: 'Usage' }).click();
  // submit() (dashboard_jobs.py) runs both jobs as alice, in both modes.
  await page.locator('#usage tr[data-name="alice"]').waitFor({ timeout: 20000 });
  const usageRows = await page.locator('#usage tbody tr[data-name]').count();
  if (usageRows !== 1) throw new Error(`the usage table has ${usageRows} rows, expected 1 (alice)`);
  const jobs = await page.locator('#usage tr[data-name="alice"] td').nth(1).textContent();
  if (jobs !== '2') throw new Error(`alice's usage counts ${jobs} jobs, expected 2`);
  const bar = page.locator('#usage-chart .bar-row[data-name="alice"] .bar');
  await bar.waitFor({ timeout: 10000 });
  const barWidth = await bar.evaluate((b) => b.getBoundingClientRect().width);
  if (!(barWidth > 10)) throw new Error(`alice's usage bar is ${barWidth} px wide`);
  await page.screenshot({ path: shot('5b-usage.png'), fullPage: true });

  step('selection: compare two jobs\' curves, download their TensorBoard files, then delete them');
  await page.getByRole('link', { name: 'Projects' }).click();
  await page.getByRole('link', { name: project, exact: true }).click();
  const tbRow = page.locator(`tr[data-job="${tbJobId}"]`);
  await tbRow.locator('.badge', { hasText: 'completed' }).waitFor({ timeout: 60000 });
  await row.getByRole('checkbox', { name: `Select job ${jobId}` }).check({ timeout: 20000 });
  await tbRow.getByRole('checkbox', { name: `Select job ${tbJobId}` }).check({ timeout: 20000 });
  await page.locator('#selected-count', { hasText: '2 selected' }).waitFor({ timeout: 10000 });
  await page.getByRole('button', { name: 'Compare', exact: true }).click();
  await page.locator('#compare-metric').selectOption('loss', { timeout: 20000 });
  for (const [id, expected] of [[jobId, 40], [tbJobId, 20]]) {
    const line = page.locator(`#compare-chart[data-metric="loss"] svg polyline[data-job="${id}"]`);
    await line.waitFor({ timeout: 20000 });
    await page.locator(`#compare-chart .legend li[data-job="${id}"]`).waitFor({ timeout: 10000 });
    const n = (await line.getAttribute('points')).trim().split(/\s+/).length;
    if (n !== expected) throw new Error(`job ${id}'s compared loss curve has ${n} points, expected ${expected}`);
  }
  const series = await page.locator('#compare-chart svg polyline.series').count();
  if (series !== 2) throw new Error(`the compare chart has ${series} series, expected 2`);
  const colors = await page.locator('#compare-chart svg polyline.series').evaluateAll((ls) => new Set(ls.map((l) => l.getAttribute('stroke'))).size);
  if (colors !== 2) throw new Error('the two series share a colour');
  await page.screenshot({ path: shot('5c-compare.png'), fullPage: true });

  const downloaded = page.waitForEvent('download', { timeout: 30000 });
  await page.getByRole('button', { name: 'TensorBoard', exact: true }).click();
  const download = await downloaded;
  const saved = path.join(out, (user ? 'auth-' : '') + download.suggestedFilename());
  await download.saveAs(saved);
  const entries = execFileSync('tar', ['-tzf', saved], { encoding: 'utf8' }).split('\n').filter(Boolean);
  if (!entries.includes(`${tbJobId}/train/events.out.tfevents.1.atlas`))
    throw new Error('the TensorBoard download lacks the event file: ' + entries.join(', '));
  if (entries.some((e) => !e.startsWith(tbJobId + '/') && e !== tbJobId))
    throw new Error('the TensorBoard download holds more than the event files: ' + entries.join(', '));
  // The job without event files is named, the command to run is shown.
  await page.locator(`#selection-messages li[data-job="${jobId}"]`, { hasText: 'set_tensorboard_logdir' }).waitFor({ timeout: 10000 });
  await page.locator('#tensorboard-hint', { hasText: 'tensorboard --logdir' }).waitFor({ timeout: 10000 });
  await page.screenshot({ path: shot('5e-tensorboard.png'), fullPage: true });

  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Delete selected' }).click();
  await row.waitFor({ state: 'detached', timeout: 20000 });
  await tbRow.waitFor({ state: 'detached', timeout: 20000 });
  // They were the project's only jobs: the page goes back to the projects view.
  await page.getByRole('link', { name: project, exact: true }).waitFor({ state: 'detached', timeout: 20000 });
  // Asked outside the page, so that the expected 404 is no console error of the page.
  const token = await page.evaluate(() => sessionStorage.getItem('atlas.token'));
  const res = await page.request.get(`${url}/api/v2beta/projects/${encodeURIComponent(project)}/job_listing`,
    { headers: token ? { Authorization: 'Bearer ' + token } : {} });
  // Its jobs gone, the project is gone too (404).
  const listed = res.status() !== 404 && (await res.json()).jobs.some((j) => j.job_id === jobId || j.job_id === tbJobId);
  if (listed) throw new Error('a deleted job is still in the REST listing');
  await page.screenshot({ path: shot('5d-deleted.png'), fullPage: true });

  if (user) {
    step('log out');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('User name').waitFor({ timeout: 10000 });
    const left = await page.evaluate(() => sessionStorage.getItem('atlas.token'));
    if (left) throw new Error('the token stayed after logout');
    const status = await page.evaluate(async () => (await fetch('/api/v2beta/projects')).status);
    if (status !== 401) throw new Error('the API answered ' + status + ' without a token');
    await page.screenshot({ path: shot('6-logged-out.png'), fullPage: true });
  }
  const outside = requests.filter((u) => !u.startsWith(url) && !u.startsWith('blob:') && !u.startsWith('data:'));
  if (outside.length) throw new Error('requests left the dashboard: ' + outside.join(', '));
  // In -p mode the wrong password and the call after logout are 401s by design.
  const unexpected = consoleErrors.filter((e) => !(user && e.includes('status of 401')));
  if (unexpected.length) throw new Error('console errors: ' + unexpected.join(' | '));
  step('all checks passed');
} catch (e) {
  failed = true;
  console.error('browser: FAILED: ' + (e && e.stack ? e.stack : e));
  await page.screenshot({ path: shot('failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(`browser: screenshots in ${out}`);
process.exit(failed ? 1 : 0);
