// The dashboard with several pools, in headless Chromium.  First against
// tests/browser/mock_admin.py --pools (a default pool with A and B, an api
// pool with A and C: two backends called A): the pool selector appears, the
// table and the charts key backends by pool/id, choosing a pool narrows
// them and shows that pool's figures, the choice is kept in the URL (?pool=)
// across a reload, and the CSV replay splits backends by the log's pool
// column.  Then against the real ./lbproxy with a [pool.api] section and a
// route, two ./lbbackend both called A: the same, with the counts checked
// against what the client sent to each pool, live and in the CSV view.
//
//   node tests/browser/pools.test.mjs        (from the repo top)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CHROMIUM, LBBACKEND, LBPROXY, ROOT, Stack, closeBrowser, freePort,
         getJson, openPage, portOpen, startLoad, until } from './stack.mjs';

const DEADLINE = Date.now() + 55000;
const within = ms => Math.max(1000, Math.min(ms, DEADLINE - Date.now()));
const num = s => Number(String(s).replace(/[^0-9.]/g, ''));

if (!fs.existsSync(CHROMIUM)) {
    console.log('skipped: chromium not installed (' + CHROMIUM + ')');
    process.exit(0);
}

const stack = new Stack([]);
let mock = null;
let ctx = null;
let page = null;
const pageErrors = [];

after(async () => {
    await closeBrowser(ctx);
    if (mock && mock.exitCode === null) {
        mock.kill('SIGTERM');
        await mock.exited;
    }
    await stack.stopAll();
});

// The backend table: key (data-id), pool, the label shown, requests.
async function tableRows() {
    return page.$$eval('#backends tbody tr[data-id]', rows => rows
        .filter(r => r.dataset.id)
        .map(r => ({
            key: r.dataset.id, pool: r.dataset.pool,
            label: r.querySelector('[data-col="id"]').textContent.trim(),
            colour: r.querySelector('.swatch').style.background,
            requests: r.querySelector('[data-col="requests"]').textContent,
        })));
}

const keys = async () => (await tableRows()).map(r => r.key);
const chartIds = () => page.evaluate(() => window.lbDashboard.ids());
const poolParam = () => page.evaluate(() =>
    new URLSearchParams(location.search).get('pool'));
const legend = () => page.$$eval('#chart-rps .u-legend .u-series .u-label',
    els => els.slice(1).map(e => e.textContent.trim()));  // [0]: the time

test('pools on the mock admin', { timeout: 30000 }, async t => {
    const port = await freePort();
    mock = spawn('/usr/bin/python3', [path.join(ROOT, 'tests/browser/mock_admin.py'),
        '--port', String(port), '--logs-dir', stack.logsDir, '--pools'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
    mock.exited = new Promise(r => mock.once('exit', r));
    await until('mock admin listening', () => portOpen(port), 8000, 50);
    ({ ctx, page } = await openPage(stack.tmp, pageErrors));
    const base = `http://127.0.0.1:${port}/`;
    const ALL_KEYS = ['default/A', 'default/B', 'api/A', 'api/C'];

    await t.test('all pools: a selector, every backend as pool/id', async () => {
        await page.goto(base);
        await until('four backends in the table', async () =>
            (await keys()).length === 4, within(8000));
        assert.ok(await page.isVisible('#pool-select'));
        assert.ok(await page.isVisible('#pools-card'));
        const opts = await page.$$eval('#pool-select option',
            os => os.map(o => [o.value, o.textContent]));
        assert.deepEqual(opts, [['', 'all pools'], ['default', 'default'],
                                ['api', 'api']]);
        const rows = await tableRows();
        assert.deepEqual(rows.map(r => r.key), ALL_KEYS);
        assert.deepEqual(rows.map(r => r.label), ALL_KEYS);
        assert.deepEqual(rows.map(r => r.pool), ['default', 'default', 'api', 'api']);
        // the two As are two backends: their own colours and chart series
        assert.notEqual(rows[0].colour, rows[2].colour);
        assert.deepEqual(await chartIds(), ALL_KEYS);
        const lg = await legend();
        assert.ok(lg.includes('default/A') && lg.includes('api/A'), `legend ${lg}`);
        // the history's series are keyed by pool/id (the mock's seconds
        // before its start are left out: a few seconds)
        await until('history series for both As', async () => {
            const c = await page.evaluate(() => window.lbDashboard.coverage());
            return c.requests['default/A'] >= 2 && c.requests['api/A'] >= 2 &&
                c.p50['api/A'] >= 2;
        }, within(5000));
        // the pools table, and the headline over all pools
        const pools = await page.$$eval('#pools tbody tr', rs => rs.map(r =>
            [r.dataset.pool, r.querySelector('[data-col="mode"]').textContent,
             r.querySelector('[data-col="model"]').textContent,
             r.querySelector('[data-col="backends"]').textContent]));
        assert.deepEqual(pools, [['default', 'adaptive_ewma', 'persistent', '2'],
                                 ['api', 'least-conn', 'non-persistent', '2']]);
        assert.equal(await page.textContent('#mode'), 'adaptive_ewma / least-conn');
        assert.equal(await poolParam(), null);
    });

    await t.test('choosing api narrows the table, the charts and the cards',
        async () => {
        await page.selectOption('#pool-select', 'api');
        assert.equal(await poolParam(), 'api');
        const rows = await tableRows();
        assert.deepEqual(rows.map(r => r.key), ['api/A', 'api/C']);
        assert.deepEqual(rows.map(r => r.label), ['A', 'C']);
        assert.deepEqual(await chartIds(), ['api/A', 'api/C']);
        assert.deepEqual(await legend(), ['A', 'C']);
        assert.equal(await page.textContent('#mode'), 'least-conn');
        assert.equal(await page.textContent('#conn-model'), 'non-persistent');
        // the cards show the api pool's entry of the same snapshot
        const got = await page.evaluate(() => {
            const s = window.lbDashboard.snapshot();
            const p = s.pools.find(x => x.name === 'api');
            return { want: p.requests, total: s.total.requests,
                     shown: document.getElementById('kpi-req').textContent };
        });
        assert.equal(num(got.shown), got.want);
        assert.ok(got.want < got.total);
        assert.match(await page.textContent('#kpi-retry-label'), /all pools/);
        assert.equal(await page.getAttribute('#pools tbody tr.sel', 'data-pool'),
                     'api');
        // the shares are within the pool: they add up to 100 % per second
        const sums = await page.evaluate(() => {
            const v = window.lbDashboard.chartView();
            return v.t.map((t, i) => (v.share['api/A'][i] == null ? null
                : v.share['api/A'][i] + v.share['api/C'][i])).filter(x => x != null);
        });
        assert.ok(sums.length >= 2 && sums.every(x => Math.abs(x - 100) < 1e-6),
                  JSON.stringify(sums));
    });

    await t.test('a reload keeps the choice; the pools table chooses too',
        async () => {
        await page.reload();
        await until('api pool after the reload', async () =>
            (await keys()).join() === 'api/A,api/C', within(8000));
        assert.equal(await page.inputValue('#pool-select'), 'api');
        await page.click('#pools tbody tr[data-pool="default"]');
        assert.equal(await poolParam(), 'default');
        assert.deepEqual(await keys(), ['default/A', 'default/B']);
        await page.selectOption('#pool-select', '');
        assert.equal(await poolParam(), null);
        assert.deepEqual(await keys(), ALL_KEYS);
    });

    await t.test('the CSV replay splits backends by the pool column', async () => {
        const file = path.join(stack.logsDir, 'mock_pools.csv');
        const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
        const cols = lines[0].split(',');
        const pi = cols.indexOf('pool');
        assert.equal(pi, cols.length - 1);
        const apiRows = lines.slice(1).filter(l => l.split(',')[pi] === 'api').length;
        await page.goto(base + '?pool=api#log=mock_pools.csv');
        await until('CSV view', () => page.evaluate(() =>
            window.lbDashboard.view() === 'csv'), within(10000));
        assert.deepEqual(await keys(), ['api/A', 'api/C']);
        assert.equal(num(await page.textContent('#kpi-req')), apiRows);
        assert.equal(await page.textContent('#mode'), 'least-conn');
        assert.deepEqual(await chartIds(), ['api/A', 'api/C']);
        await page.selectOption('#pool-select', '');
        assert.deepEqual(await keys(), ALL_KEYS);
        assert.equal(num(await page.textContent('#kpi-req')), lines.length - 1);
        assert.match(page.url(), /#log=mock_pools\.csv$/);
        // back to live keeps the (now: no) pool choice and leaves the hash
        await page.click('#btn-live');
        assert.equal(new URL(page.url()).hash, '');
    });
    mock.kill('SIGTERM');
    await mock.exited;
    await closeBrowser(ctx);
    ctx = null;
});

test('pools on the real lbproxy', { timeout: 30000 }, async t => {
    for (const bin of [LBPROXY, LBBACKEND]) {
        assert.ok(fs.existsSync(bin), `${bin} missing: run make first`);
    }
    // two lbbackends that both say they are A, one in each pool
    for (const id of ['dA', 'aA']) {
        stack.ports[id] = await freePort();
        const p = stack.start('backend-' + id, LBBACKEND, ['--port',
            String(stack.ports[id]), '--id', 'A', '--quiet', '--profile', 'fixed:1ms']);
        await stack.waitUp(p, [stack.ports[id]], 'backend ' + id);
    }
    await stack.startProxyConfig(`
[proxy]
mode = round-robin
persistent = true
[backends]
A = 127.0.0.1:${stack.ports.dA}
[pool.api]
mode = least-conn
persistent = false
[pool.api.backends]
A = 127.0.0.1:${stack.ports.aA}
[route.api]
host = api.test
pool = api
`, 'pools.csv');
    ({ ctx, page } = await openPage(stack.tmp, pageErrors));
    const admin = stack.ports.admin;
    const until0 = Date.now() + 3000;
    const loads = {
        default: startLoad(stack.ports.proxy, { conns: 2, untilMs: until0, cap: 600 }),
        api: startLoad(stack.ports.proxy, { conns: 2, untilMs: until0, cap: 300,
                                            host: 'api.test' }),
    };
    await page.goto(`http://127.0.0.1:${admin}/?pool=api`);

    await t.test('the api pool, live, from the URL', async () => {
        await until('the api pool shown', async () =>
            (await keys()).join() === 'api/A', within(8000));
        await Promise.all(Object.values(loads).map(l => l.stop()));
        const sent = Object.fromEntries(Object.entries(loads).map(([k, l]) =>
            [k, l.ok + l.failed]));
        assert.ok(sent.api > 20 && sent.default > 20, JSON.stringify(sent));
        await until('/api/stats counts every request', async () =>
            (await getJson(admin, '/api/stats')).total.requests ===
                sent.api + sent.default, within(5000));
        const st = await getJson(admin, '/api/stats');
        const pools = Object.fromEntries(st.pools.map(p => [p.name, p]));
        assert.equal(pools.api.requests, sent.api);
        assert.equal(pools.default.requests, sent.default);
        await until('cards and table show the api pool', async () =>
            num(await page.textContent('#kpi-req')) === sent.api &&
            num((await tableRows())[0].requests) === sent.api, within(4000));
        assert.equal(await page.textContent('#mode'), 'least-conn');
        assert.equal(await page.textContent('#conn-model'), 'non-persistent');
        assert.deepEqual(await chartIds(), ['api/A']);
        await page.selectOption('#pool-select', '');
        // the table is redrawn from the newest snapshot; the one the api
        // check above saw may predate the default pool's last requests
        await until('all pools, every request counted', async () => {
            const rows = await tableRows();
            return rows.map(r => r.label).join() === 'default/A,api/A' &&
                rows.map(r => num(r.requests)).join() ===
                    [sent.default, sent.api].join();
        }, within(4000));
        assert.equal(num(await page.textContent('#kpi-req')), st.total.requests);
        await page.selectOption('#pool-select', 'api');
        assert.equal(await poolParam(), 'api');
    });

    await t.test('its CSV log replays split by pool', async () => {
        const csvPath = path.join(stack.logsDir, 'pools.csv');
        const total = loads.api.ok + loads.api.failed + loads.default.ok +
            loads.default.failed;
        await until('the CSV log holds every request', () => fs.existsSync(csvPath) &&
            fs.readFileSync(csvPath, 'utf8').trim().split('\n').length - 1 >= total,
        within(6000), 100);
        await page.evaluate(() => window.lbDashboard.refreshLogs());
        await page.evaluate(() => window.lbDashboard.openLog('pools.csv'));
        await until('CSV view', () => page.evaluate(() =>
            window.lbDashboard.view() === 'csv' && window.lbDashboard.csvSummary()),
        within(8000));
        const rows = await tableRows();
        assert.deepEqual(rows.map(r => [r.key, r.label]), [['api/A', 'A']]);
        assert.equal(num(rows[0].requests), loads.api.ok + loads.api.failed);
        assert.equal(await page.textContent('#mode'), 'least-conn');
        await page.selectOption('#pool-select', 'default');
        assert.deepEqual((await tableRows()).map(r => [r.key, num(r.requests)]),
                         [['default/A', loads.default.ok + loads.default.failed]]);
        assert.equal(await page.textContent('#mode'), 'round-robin');
    });

    await t.test('no script errors on the page', () => {
        assert.deepEqual(pageErrors, []);
    });
});
