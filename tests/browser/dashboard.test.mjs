// The dashboard, in headless Chromium, against the real stack: three
// ./lbbackend processes and ./lbproxy (adaptive_ewma, persistent) on free
// loopback ports, with load driven from here.  Proves that the live charts
// fill for every backend, that the status table agrees with /api/stats, that
// a CSV log from /logs/ opens in the CSV view with the same backends, and
// that the page recovers by itself when lbproxy restarts.
//
//   node tests/browser/dashboard.test.mjs        (from the repo top)
//
// Screenshots: logs/dashboard-live.png, logs/dashboard-csv.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CHROMIUM, LBBACKEND, LBPROXY, ROOT, Stack, closeBrowser, getJson, openPage,
         startLoad, until } from './stack.mjs';

const IDS = ['A', 'B', 'C'];
const CSV_NAME = 'browser_test.csv';
const DEADLINE = Date.now() + 58000;    // the whole file stays under a minute

if (!fs.existsSync(CHROMIUM)) {
    console.log('skipped: chromium not installed (' + CHROMIUM + ')');
    process.exit(0);
}
try {
    await import('playwright-core');
} catch (e) {
    console.error('playwright-core missing: run `npm ci` (scripts/install-deps.sh)');
    process.exit(1);
}

const shotsDir = path.join(ROOT, 'logs');
fs.mkdirSync(shotsDir, { recursive: true });
const stack = new Stack(IDS);
let ctx = null;
let page = null;
const pageErrors = [];

// Never wait past the file's deadline.
const within = ms => Math.max(1000, Math.min(ms, DEADLINE - Date.now()));
const num = s => Number(String(s).replace(/[^0-9.]/g, ''));

async function tableRows() {
    return page.$$eval('#backends tbody tr[data-id]', rows => rows.map(r => {
        const c = name => {
            const td = r.querySelector(`[data-col="${name}"]`);
            return td ? td.textContent.trim() : null;
        };
        return { id: r.dataset.id, health: c('health'), requests: c('requests'),
                 errors: c('errors'), address: c('address') };
    }));
}

// ---- setup and teardown ----------------------------------------------------

before(async () => {
    for (const bin of [LBPROXY, LBBACKEND]) {
        assert.ok(fs.existsSync(bin), `${bin} missing: run make first`);
    }
    for (const id of IDS) await stack.startBackend(id, ['--profile', 'fixed:2ms']);
    await stack.startProxy('adaptive_ewma', true, CSV_NAME);
    ({ ctx, page } = await openPage(stack.tmp, pageErrors));
});

after(async () => {
    await closeBrowser(ctx);
    await stack.stopAll();
});

// ---- the test --------------------------------------------------------------

test('dashboard on the real lbproxy', { timeout: 58000 }, async t => {
    let load = null;
    try {
        await t.test('page loads, header shows mode and connection model',
            async () => {
            await page.goto(`http://127.0.0.1:${stack.ports.admin}/`);
            await until('mode in the header', async () =>
                (await page.textContent('#mode')) === 'adaptive_ewma');
            assert.equal(await page.textContent('#conn-model'), 'persistent');
            await until('live badge', async () =>
                (await page.textContent('#conn-badge')) === 'live');
        });

        load = startLoad(stack.ports.proxy, { untilMs: DEADLINE - 12000 });

        await t.test('live charts fill for all three backends', async () => {
            // five seconds with traffic on every backend in every chart
            const cov = await until('chart data for A, B and C', async () => {
                const c = await page.evaluate(() => window.lbDashboard.coverage());
                const ok = c.requests && IDS.every(id =>
                    c.requests[id] >= 5 && c.p50[id] >= 5 && c.p99[id] >= 5 &&
                    c.share[id] >= 5 && c.score[id] >= 1);
                return ok ? c : false;
            }, within(25000), 250);
            assert.deepEqual(await page.evaluate(() => window.lbDashboard.ids()), IDS);
            // one pool (the default): no pool selector, no pools table
            assert.ok(await page.isHidden('#pool-pick'));
            assert.ok(await page.isHidden('#pools-card'));
            const legend = await page.$$eval('#chart-rps .u-legend .u-series .u-label',
                els => els.map(e => e.textContent.trim()));
            for (const id of IDS) assert.ok(legend.includes(id), `legend ${legend}`);
            assert.ok(cov.requests.A > 0);
            // the retries-and-queue chart has the seconds /api/stats sampled
            await until('flow chart samples', async () => {
                const c = await page.evaluate(() => window.lbDashboard.coverage());
                return c.flow && c.flow.queue >= 2 && c.flow.retries >= 2;
            }, within(8000), 250);
            const flowLegend = await page.$$eval(
                '#chart-flow .u-legend .u-series .u-label',
                els => els.map(e => e.textContent.trim()));
            assert.ok(flowLegend.includes('queued') &&
                      flowLegend.includes('hedges/s'), `legend ${flowLegend}`);
        });

        await t.test('status table agrees with /api/stats under load', async () => {
            // the page shows the snapshot of at most a second ago; allow
            // three seconds of that backend's rate
            await until('table within tolerance of /api/stats', async () => {
                const rows = await tableRows();
                const api = await getJson(stack.ports.admin, '/api/stats');
                assert.deepEqual(rows.map(r => r.id), IDS);
                for (const b of api.backends) {
                    const r = rows.find(x => x.id === b.id);
                    const tol = Math.max(20, 3 * (b.rps || 0));
                    const diff = Math.abs(num(r.requests) - b.requests);
                    if (diff > tol) {
                        throw new Error(`${b.id}: table ${r.requests} vs api ` +
                                        `${b.requests} (tolerance ${tol})`);
                    }
                    assert.equal(r.health, b.health);
                    assert.equal(r.address, b.address);
                }
                return true;
            }, within(8000), 300);
        });

        await t.test('after the load stops, the table matches exactly', async () => {
            await load.stop();
            assert.ok(load.ok > 100, `only ${load.ok} requests succeeded`);
            await until('/api/stats counts every request sent', async () => {
                const api = await getJson(stack.ports.admin, '/api/stats');
                return api.total.requests >= load.ok + load.failed;
            }, within(5000), 100);
            const api = await getJson(stack.ports.admin, '/api/stats');
            for (const b of api.backends) {
                // what the client saw per backend is what lbproxy counted
                const seen = load.perBackend[b.id] || 0;
                assert.ok(Math.abs(seen - b.requests) <= Math.max(3, 0.01 * seen),
                          `${b.id}: client saw ${seen}, api says ${b.requests}`);
                assert.ok(b.requests > 0, `${b.id} got no traffic`);
            }
            await until('table equals /api/stats', async () => {
                const rows = await tableRows();
                const now = await getJson(stack.ports.admin, '/api/stats');
                return now.backends.every(b => {
                    const r = rows.find(x => x.id === b.id);
                    return r && num(r.requests) === b.requests &&
                        num(r.errors) === (b.errors.total ?? b.errors);
                });
            }, within(5000), 200);
            const kpi = num(await page.textContent('#kpi-req'));
            assert.equal(kpi, api.total.requests);
            // the retries card shows /api/stats' count (0 on healthy backends)
            const now = await getJson(stack.ports.admin, '/api/stats');
            await until('retries card equals /api/stats', async () =>
                num(await page.textContent('#kpi-retry')) === now.total.retries,
                within(5000), 200);
            await page.screenshot({ path: path.join(shotsDir, 'dashboard-live.png'),
                                    fullPage: true });
        });

        await t.test('a CSV log from /logs/ opens in the CSV view', async () => {
            const csvPath = path.join(stack.logsDir, CSV_NAME);
            const rowsInFile = () => {
                const txt = fs.readFileSync(csvPath, 'utf8');
                return txt.split('\n').filter(l => l.length).length - 1;
            };
            await until('the CSV log holds every request', () =>
                fs.existsSync(csvPath) && rowsInFile() >= load.ok, within(6000), 200);
            const nrows = rowsInFile();
            const list = await getJson(stack.ports.admin, '/logs/?format=json');
            const names = (Array.isArray(list) ? list : list.files || [])
                .map(f => (typeof f === 'string' ? f : f.name));
            assert.ok(names.includes(CSV_NAME), `/logs/ lists ${names}`);

            await page.evaluate(() => window.lbDashboard.refreshLogs());
            await page.selectOption('#log-select', CSV_NAME);
            await page.click('#btn-load');
            const summary = await until('CSV view', () => page.evaluate(() =>
                window.lbDashboard.view() === 'csv' && window.lbDashboard.csvSummary()),
                within(15000), 200);
            assert.equal(summary.rows, nrows);
            assert.equal(summary.mode, 'adaptive_ewma');
            assert.equal(summary.connModel, 'persistent');
            const rows = await tableRows();
            assert.deepEqual(rows.filter(r => r.id).map(r => r.id), IDS);
            let sum = 0;
            for (const r of rows.filter(x => x.id)) {
                assert.ok(num(r.requests) > 0, `${r.id} has no requests in the CSV view`);
                assert.equal(num(r.requests), load.perBackend[r.id],
                             `${r.id}: CSV view vs requests sent`);
                sum += num(r.requests);
            }
            assert.ok(sum <= nrows);
            const cov = await page.evaluate(() => window.lbDashboard.coverage());
            for (const id of IDS) {
                assert.ok(cov.requests[id] >= 1 && cov.p50[id] >= 1,
                          `CSV charts for ${id}: ${JSON.stringify(cov)}`);
            }
            // from the log's retries and hedge columns; the log has no queue
            assert.ok(cov.flow.retries >= 1 && cov.flow.queue === 0,
                      `CSV flow: ${JSON.stringify(cov.flow)}`);
            assert.ok(await page.isHidden('#card-score'));
            assert.match(await page.textContent('#csv-title'), /browser_test\.csv/);
            await page.screenshot({ path: path.join(shotsDir, 'dashboard-csv.png'),
                                    fullPage: true });
            await page.click('#btn-live');
            await until('live view again', () =>
                page.evaluate(() => window.lbDashboard.view() === 'live'));
            assert.ok(await page.isVisible('#card-score'));
        });

        await t.test('the page recovers by itself when lbproxy restarts', async () => {
            await stack.stop(stack.proxy);
            await until('disconnected badge', async () =>
                /disconnected/.test(await page.textContent('#conn-badge')),
                within(10000), 100);
            await stack.restartProxy();
            await until('live badge after restart', async () =>
                (await page.textContent('#conn-badge')) === 'live', within(20000), 200);
            await until('restart event and charts reset', async () => {
                const ev = await page.textContent('#events');
                const snap = await page.evaluate(() => window.lbDashboard.snapshot());
                const points = await page.evaluate(() => window.lbDashboard.points());
                return /restarted/.test(ev) && snap.uptime_s < 15 &&
                    snap.total.requests === 0 && points <= snap.uptime_s + 3;
            }, within(8000), 200);
        });

        await t.test('no script errors on the page', () => {
            assert.deepEqual(pageErrors, []);
        });
    } finally {
        if (load) await load.stop();
    }
});
