// Makes docs/dashboard.png (and docs/dashboard-csv.png): about a minute of a
// run that shows what the dashboard is for — three backends of different
// speed, C slowing down for a while, then C killed and restarted (ejected,
// probed, back up) — with real lbproxy and lbbackend processes.  Not a test.
//
//   node tests/browser/screenshot.mjs [seconds]   (from the repo top, after make)
import fs from 'node:fs';
import path from 'node:path';
import { CHROMIUM, ROOT, Stack, launchBrowser, sleep, startLoad,
         until } from './stack.mjs';

const SECONDS = Math.max(30, Math.min(300, Number(process.argv[2]) || 60));
const CSV_NAME = 'adaptive_ewma_persistent.csv';

if (!fs.existsSync(CHROMIUM)) {
    console.log('skipped: chromium not installed');
    process.exit(0);
}

const stack = new Stack(['A', 'B', 'C']);
let ctx = null;
let load = null;
const profiles = {
    A: ['--profile', 'lognormal:2ms,0.3'],
    B: ['--profile', 'lognormal:5ms,0.4'],
    C: ['--profile', 'lognormal:3ms,0.3',
        '--phase', `${Math.round(SECONDS * 0.25)}s:lognormal:25ms,0.3`,
        '--phase', `${Math.round(SECONDS * 0.45)}s:lognormal:3ms,0.3`],
};
try {
    for (const id of stack.ids) await stack.startBackend(id, profiles[id]);
    await stack.startProxy('adaptive_ewma', true, CSV_NAME);
    ctx = await launchBrowser(stack.tmp, { width: 1440, height: 900 });
    const page = ctx.pages()[0] || await ctx.newPage();
    await page.goto(`http://127.0.0.1:${stack.ports.admin}/`);
    const t0 = Date.now();
    const end = t0 + SECONDS * 1000;
    // a load that swells and ebbs, so the charts have a shape
    load = startLoad(stack.ports.proxy, {
        conns: 8, untilMs: end,
        pace: () => 1 + 3 * (1 + Math.sin((Date.now() - t0) / 6000)),
    });
    await sleep(SECONDS * 650);
    console.log('killing backend C');
    await stack.stop(stack.backends.C);
    await sleep(SECONDS * 120);
    console.log('restarting backend C');
    await stack.startBackend('C', ['--profile', 'lognormal:3ms,0.3']);
    // the live view while traffic still flows
    await sleep(Math.max(0, end - Date.now() - 2500));
    await page.screenshot({ path: path.join(ROOT, 'docs', 'dashboard.png'),
                            fullPage: true });
    await load.done;
    await page.evaluate(() => window.lbDashboard.refreshLogs());
    await sleep(1200);    // the CSV log is flushed once a second
    await page.selectOption('#log-select', CSV_NAME);
    await page.click('#btn-load');
    await until('CSV view', () => page.evaluate(() =>
        window.lbDashboard.view() === 'csv'), 15000);
    await sleep(500);
    await page.screenshot({ path: path.join(ROOT, 'docs', 'dashboard-csv.png'),
                            fullPage: true });
    console.log(`requests: ${load.ok} ok, ${load.failed} failed;`,
                JSON.stringify(load.perBackend));
    console.log('wrote docs/dashboard.png and docs/dashboard-csv.png');
} finally {
    if (load) await load.stop();
    if (ctx) await ctx.close().catch(() => {});
    await stack.stopAll();
}
