// Times the dashboard's job table in Debian's Chromium (playwright-core):
// from navigation to the first rows visible, then each "Older" page, and
// records every job_listing answer's size, so that a request growing with
// the project would show. Prints one JSON object.
// Usage: node dashboard_pages.mjs <dashboard-url> <project> <runs> <pages>
import { chromium } from 'playwright-core';

const [url, project, runsText, pagesText] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
const out = { first_rows_ms: [], older_page_ms: [], listing_bytes: [], rows_shown: 0, page_info: '',
              timeline: [] };
try {
  for (let run = 0; run < Number(runsText); ++run) {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    page.on('response', async (r) => {
      if (!r.url().includes('/job_listing?')) return;
      try { out.listing_bytes.push((await r.body()).length); } catch (e) { /* gone */ }
    });
    const t0 = Date.now();
    if (run === 0) // where the first load's time goes: each answer, after the start
      page.on('response', (r) => out.timeline.push(`${Date.now() - t0} ms ${r.status()} ${new URL(r.url()).pathname}`));
    await page.goto(`${url}/#/projects/${encodeURIComponent(project)}`);
    await page.locator('#jobs tbody tr[data-job]').first().waitFor({ timeout: 30000 });
    out.first_rows_ms.push(Date.now() - t0);
    out.rows_shown = await page.locator('#jobs tbody tr[data-job]').count();
    for (let p = 0; p < Number(pagesText); ++p) {
      const before = await page.locator('#page-info').textContent();
      const t1 = Date.now();
      await page.locator('#page-next').click();
      await page.waitForFunction((b) => document.querySelector('#page-info').textContent !== b,
                                 before, { timeout: 30000 });
      out.older_page_ms.push(Date.now() - t1);
    }
    out.page_info = await page.locator('#page-info').textContent();
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
