// The CSV replay knows the runs inside one file: a log that two runs
// appended to (written here: a 60 s run, a 10-minute gap, a 30 s run, with
// known rates) opens on its last run, the banner's run selector offers both
// runs and the whole file, and every rate (the mean req/s card, the
// per-backend req/s of the table) is over active time, not over the gap.
// Real ./lbproxy serves the file from its logs_dir; headless Chromium.
//
//   node tests/browser/replay.test.mjs        (from the repo top)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CHROMIUM, LBBACKEND, LBPROXY, Stack, closeBrowser, openPage,
         until } from './stack.mjs';

const NAME = 'two_runs.csv';
const HEADER = 'timestamp,client,method,path,backend_id,backend_addr,status,' +
    'req_bytes,resp_bytes,connect_ms,ttfb_ms,upstream_ms,total_ms,reused,' +
    'mode,conn_model,retries,error,hedge';
const T0 = Date.UTC(2026, 11, 1, 20, 0, 0) / 1000;
// run 1: 60 s, A 10 req/s + B 5 req/s, round-robin; run 2 starts 10 minutes
// after run 1 ends: 30 s, A 20 req/s, adaptive_ewma
const RUNS = [
    { start: T0, seconds: 60, mode: 'round-robin', perSec: { A: 10, B: 5 } },
    { start: T0 + 60 + 600, seconds: 30, mode: 'adaptive_ewma',
      perSec: { A: 20 } },
];

if (!fs.existsSync(CHROMIUM)) {
    console.log('skipped: chromium not installed (' + CHROMIUM + ')');
    process.exit(0);
}

function iso(sec, frac) {
    return new Date(sec * 1000).toISOString().slice(0, 19) + '.' +
        String(frac).padStart(6, '0') + 'Z';
}

function writeLog(file) {
    const lines = [HEADER];
    for (const run of RUNS) {
        for (let s = 0; s < run.seconds; s++) {
            for (const [id, n] of Object.entries(run.perSec)) {
                for (let i = 0; i < n; i++) {
                    const ms = id === 'A' ? '2.000' : '6.000';
                    lines.push([iso(run.start + s, i * 1000), '127.0.0.1:5000',
                        'GET', '/', id, '127.0.0.1:' + (id === 'A' ? 8081 : 8082),
                        200, 80, 120, '', '1.000', ms, ms, 1, run.mode,
                        'persistent', 0, '', ''].join(','));
                }
            }
        }
    }
    fs.writeFileSync(file, lines.join('\n') + '\n');
}

const stack = new Stack(['A']);
let ctx = null;
let page = null;
const pageErrors = [];

before(async () => {
    for (const bin of [LBPROXY, LBBACKEND]) {
        assert.ok(fs.existsSync(bin), `${bin} missing: run make first`);
    }
    await stack.startBackend('A', ['--profile', 'fixed:0ms']);
    await stack.startProxy('round-robin', true, 'own.csv');
    writeLog(path.join(stack.logsDir, NAME));
    ({ ctx, page } = await openPage(stack.tmp, pageErrors));
});

after(async () => {
    await closeBrowser(ctx);
    await stack.stopAll();
});

async function backendRates() {
    return page.$$eval('#backends tbody tr[data-id]', rows =>
        Object.fromEntries(rows.filter(r => r.dataset.id).map(r => [
            r.dataset.id,
            Number(r.querySelector('[data-col="rps"]').textContent)])));
}

test('a two-run CSV log replays as two runs with active-time rates',
     { timeout: 40000 }, async t => {
    await page.goto(`http://127.0.0.1:${stack.ports.admin}/#log=${NAME}`);
    const summary = await until('CSV view of the last run', () =>
        page.evaluate(() => window.lbDashboard.view() === 'csv' &&
                            window.lbDashboard.csvSummary()), 15000, 100);

    await t.test('the last run is shown first, its rates over its 30 s',
        async () => {
        assert.equal(summary.runs, 2);
        assert.equal(summary.run, 1);
        assert.equal(summary.rows, 600);
        assert.equal(summary.seconds, 30);
        assert.equal(summary.mode, 'adaptive_ewma');
        assert.equal(await page.textContent('#kpi-rps'), '20');
        assert.equal(await page.textContent('#mode'), 'adaptive_ewma');
        assert.deepEqual(await backendRates(), { A: 20 });
        // a log without the pool column: ids, no pool selector
        assert.ok(await page.isHidden('#pool-pick'));
        const runs = await page.evaluate(() => window.lbDashboard.csvRuns());
        assert.deepEqual(runs.map(r => [r.start, r.end, r.rows]),
                         [[T0, T0 + 59, 900], [T0 + 660, T0 + 689, 600]]);
    });

    await t.test('the run selector offers both runs and the whole file',
        async () => {
        assert.ok(await page.isVisible('#csv-run'));
        const opts = await page.$$eval('#csv-run option',
            os => os.map(o => [o.value, o.textContent]));
        assert.deepEqual(opts.map(o => o[0]), ['0', '1', 'all']);
        assert.match(opts[0][1], /run 1 of 2/);
        assert.match(opts[0][1], /900 req/);
        assert.equal(await page.inputValue('#csv-run'), '1');
    });

    await t.test('run 1: 900 requests over 60 s, A 10 and B 5 req/s',
        async () => {
        await page.selectOption('#csv-run', '0');
        const s = await until('run 1 shown', () => page.evaluate(() => {
            const x = window.lbDashboard.csvSummary();
            return x.run === 0 && x;
        }));
        assert.equal(s.rows, 900);
        assert.equal(s.seconds, 60);
        assert.equal(s.mode, 'round-robin');
        assert.equal(await page.textContent('#kpi-rps'), '15');
        assert.equal(await page.textContent('#mode'), 'round-robin');
        assert.deepEqual(await backendRates(), { A: 10, B: 5 });
        const cov = await page.evaluate(() => window.lbDashboard.coverage());
        assert.ok(cov.requests.A >= 50 && cov.requests.B >= 50,
                  JSON.stringify(cov));
    });

    await t.test('all runs: 1500 requests over 90 active seconds, not 690',
        async () => {
        await page.selectOption('#csv-run', 'all');
        const s = await until('whole file shown', () => page.evaluate(() => {
            const x = window.lbDashboard.csvSummary();
            return x.run === 'all' && x;
        }));
        assert.equal(s.rows, 1500);
        assert.equal(s.seconds, 90);
        assert.equal(s.wall, 690);
        assert.equal(await page.textContent('#kpi-rps'), '16.7');
        // A: 600 + 600 requests, B: 300, over 90 s
        assert.deepEqual(await backendRates(), { A: 13.3, B: 3.3 });
        assert.match(await page.textContent('#csv-progress'),
                     /active of 11 m 30 s/);
    });

    await t.test('a one-run log has no run selector', async () => {
        await page.evaluate(() => window.lbDashboard.refreshLogs());
        await page.evaluate(() => window.lbDashboard.openLog('own.csv'));
        await until('own.csv shown', () => page.evaluate(() => {
            const x = window.lbDashboard.csvSummary();
            return x && x.rows === 0 && x.runs === 0;
        }));
        assert.ok(await page.isHidden('#csv-run'));
    });

    await t.test('no script errors on the page', () => {
        assert.deepEqual(pageErrors, []);
    });
});
