// The dashboard's Workers panel, in headless Chromium, against the real
// stack: three ./lbbackend and `./lbproxy --workers 2` on free loopback
// ports, with a connection per request from here so that both workers
// serve.  Proves that the panel shows one row per worker with the pids of
// /api/stats, request counts that add up to /api/stats' total, a req/s
// that follows the load (and the computation of it from successive
// snapshots, on fixed data), the backends' in-flight figures by worker,
// a killed worker's replacement (new pid, one restart); that the CSV view
// hides the panel; and that with `--workers 1` the panel and the column
// are absent and the backends table is the one-process table.
//
//   node tests/browser/workers.test.mjs        (from the repo top)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CHROMIUM, LBBACKEND, LBPROXY, Stack, closeBrowser, getJson, openPage,
         startLoad, until } from './stack.mjs';

const DEADLINE = Date.now() + 55000;    // the whole file stays under a minute
const within = ms => Math.max(1000, Math.min(ms, DEADLINE - Date.now()));
const num = s => Number(String(s).replace(/[^0-9.]/g, ''));
const sum = a => a.reduce((x, y) => x + y, 0);

// The backends table of one process, as it has always been.
const ONE_PROCESS_HEAD = ['Backend', 'Address', 'State', 'Reason', 'In flight',
    'Pool idle', 'Score', 'Req/s', 'Share', 'p50', 'p99', 'Requests', 'Errors'];

if (!fs.existsSync(CHROMIUM)) {
    console.log('skipped: chromium not installed (' + CHROMIUM + ')');
    process.exit(0);
}

const stack = new Stack(['A', 'B', 'C']);
let ctx = null;
let page = null;
const pageErrors = [];

after(async () => {
    await closeBrowser(ctx);
    await stack.stopAll();
});

// The Workers panel's rows as the page shows them.
async function workerRows() {
    return page.$$eval('#workers tbody tr[data-worker]', rows => rows.map(r => {
        const c = name => r.querySelector(`[data-col="${name}"]`).textContent.trim();
        return { index: c('index'), pid: c('pid'), state: c('state'),
                 restarts: c('restarts'), requests: c('requests'), rps: c('rps'),
                 connections: c('connections'), uptime: c('uptime') };
    }));
}

const backendHead = () => page.$$eval('#backends thead th',
    ths => ths.map(th => th.textContent.trim()));
const byWorkerCells = () => page.$$eval(
    '#backends tbody tr[data-id] [data-col="in_flight_by_worker"]',
    tds => tds.map(td => [td.closest('tr').dataset.id, td.textContent.trim()]));
const panelShown = () => page.isVisible('#workers-card');
const stats = () => getJson(stack.ports.admin, '/api/stats');

test('two workers', { timeout: 40000 }, async t => {
    for (const bin of [LBPROXY, LBBACKEND]) {
        assert.ok(fs.existsSync(bin), `${bin} missing: run make first`);
    }
    for (const id of stack.ids) await stack.startBackend(id, ['--profile', 'fixed:1ms']);
    await stack.startProxy('round-robin', true, 'workers.csv', ['--workers', '2']);
    await until('both workers up', async () => {
        const s = await stats();
        return Array.isArray(s.workers) && s.workers.length === 2 &&
            s.workers.every(w => w.up && w.pid > 0);
    }, within(8000));
    ({ ctx, page } = await openPage(stack.tmp, pageErrors));
    await page.goto(`http://127.0.0.1:${stack.ports.admin}/`);
    // a connection per request: SO_REUSEPORT spreads them over both workers
    const load = startLoad(stack.ports.proxy, { conns: 4, untilMs: Date.now() + 4000,
                                                cap: 3000, keepAlive: false });

    await t.test('the panel follows the load', async () => {
        await until('two worker rows', async () => (await workerRows()).length === 2,
                    within(8000));
        assert.ok(await panelShown());
        const head = await backendHead();
        assert.equal(head[head.indexOf('In flight') + 1], 'By worker', head.join());
        // every backend gets a "by worker" cell of two counts
        const cells = await byWorkerCells();
        assert.deepEqual(cells.map(c => c[0]), stack.ids);
        for (const [id, text] of cells) assert.match(text, /^\d+ \/ \d+$/, id);
        // req/s needs snapshots a second apart; both workers serve
        await until('both workers show a req/s above 0', async () => {
            const rows = await workerRows();
            return rows.length === 2 && rows.every(r => num(r.rps) > 0);
        }, within(6000));
    });

    await t.test('pids and request counts agree with /api/stats', async () => {
        await load.stop();
        const sent = load.ok + load.failed;
        assert.ok(load.ok > 50, `only ${load.ok} requests answered`);
        // worker rows are published every 100 ms; the totals at once
        await until('/api/stats counts every request, in both views', async () => {
            const s = await stats();
            return s.total.requests === sent &&
                sum(s.workers.map(w => w.requests)) === sent;
        }, within(5000));
        const s = await stats();
        assert.ok(s.workers.every(w => w.requests > 0), JSON.stringify(s.workers));
        await until('the panel shows the final counts', async () => {
            const rows = await workerRows();
            return sum(rows.map(r => num(r.requests))) === sent;
        }, within(4000));
        const rows = await workerRows();
        assert.deepEqual(rows.map(r => r.index), ['0', '1']);
        assert.deepEqual(rows.map(r => num(r.pid)), s.workers.map(w => w.pid));
        assert.deepEqual(rows.map(r => num(r.requests)), s.workers.map(w => w.requests));
        assert.deepEqual(rows.map(r => r.state), ['up', 'up']);
        assert.deepEqual(rows.map(r => r.restarts), ['0', '0']);
        assert.equal(num(await page.textContent('#kpi-req')), s.total.requests);
        // nothing in flight any more, worker by worker, as /api/stats says
        const want = s.backends.map(b => [b.key || b.id,
                                          b.in_flight_by_worker.join(' / ')]);
        assert.deepEqual(want.map(w => w[1]), ['0 / 0', '0 / 0', '0 / 0']);
        await until('by-worker cells at rest', async () =>
            JSON.stringify(await byWorkerCells()) === JSON.stringify(want), within(3000));
    });

    await t.test('req/s falls to 0 once the load has stopped', async () => {
        await until('req/s 0 on both workers', async () => {
            const rows = await workerRows();
            return rows.length === 2 && rows.every(r => r.rps === '0');
        }, within(9000), 200);
    });

    await t.test('the req/s computation on fixed snapshots', async () => {
        // a second instance of the module (its own samples), not the page's
        const r = await page.evaluate(async () => {
            const m = await import('/workers.js?fixed');
            const w = (pid, requests, index) => ({ index, pid, requests, up: true });
            const at = (time, ...ws) => {
                const rates = m.workerRates({ time, workers: ws });
                return ws.map(x => rates.get(`${x.index}:${x.pid}`));
            };
            const out = { span: m.RATE_SPAN_S };
            out.first = at(100, w(10, 0, 0), w(11, 0, 1));
            out.half = at(100.5, w(10, 30, 0), w(11, 10, 1));
            out.one = at(101, w(10, 50, 0), w(11, 20, 1));
            for (let i = 2; i <= 6; i++) at(100 + i, w(10, 50 * i, 0), w(11, 20 * i, 1));
            // t = 107: the samples of 102..107, worker 1 replaced (new pid)
            out.later = at(107, w(10, 50 * 7, 0), w(12, 5, 1));
            out.replaced = at(108, w(10, 50 * 7, 0), w(12, 25, 1));
            // a count that went backwards: no rate until a second later
            out.back = at(109, w(10, 10, 0), w(12, 45, 1));
            out.gap = at(130, w(10, 20, 0), w(12, 45, 1));
            return out;
        });
        assert.equal(r.span, 5);
        assert.deepEqual(r.first, [null, null]);
        assert.deepEqual(r.half, [null, null]);        // under a second apart
        assert.deepEqual(r.one, [50, 20]);
        assert.deepEqual(r.later, [50, null]);
        assert.deepEqual(r.replaced, [(350 - 150) / 5, 20]);   // 103..108
        assert.deepEqual(r.back, [null, 20]);
        assert.deepEqual(r.gap, [null, null]);        // 21 s without a snapshot
    });

    await t.test('a killed worker is replaced: new pid, one restart', async () => {
        const before = await stats();
        const old = before.workers[1].pid;
        process.kill(old, 'SIGKILL');
        await until('worker 1 replaced in /api/stats', async () => {
            const w = (await stats()).workers[1];
            return w.up && w.pid !== old && w.restarts === 1;
        }, within(5000));
        const now = (await stats()).workers;
        await until('the panel shows the replacement', async () => {
            const rows = await workerRows();
            return rows.length === 2 && num(rows[1].pid) === now[1].pid &&
                rows[1].restarts === '1' && rows[1].state === 'up';
        }, within(4000));
        const rows = await workerRows();
        assert.equal(num(rows[0].pid), before.workers[0].pid);
        assert.equal(rows[0].restarts, '0');
    });

    await t.test('the CSV view hides the panel; live shows it again', async () => {
        const logs = await getJson(stack.ports.admin, '/logs/?format=json');
        const list = Array.isArray(logs) ? logs : logs.files || logs.logs || [];
        const name = list.map(f => f.name).find(n => /^workers\.w0\.csv$/.test(n));
        assert.ok(name, 'worker 0\'s log in /logs/: ' + JSON.stringify(logs));
        await page.evaluate(() => window.lbDashboard.refreshLogs());
        await page.evaluate(n => window.lbDashboard.openLog(n), name);
        await until('CSV view', () => page.evaluate(() =>
            window.lbDashboard.view() === 'csv' && window.lbDashboard.csvSummary()),
        within(6000));
        assert.equal(await panelShown(), false);
        assert.deepEqual(await byWorkerCells(), []);
        await page.click('#btn-live');
        await until('the panel back in the live view', panelShown, within(3000));
    });
    await closeBrowser(ctx);
    ctx = null;
});

test('one worker: no panel, the one-process table', { timeout: 20000 }, async () => {
    await stack.startProxy('round-robin', true, 'one.csv', ['--workers', '1']);
    ({ ctx, page } = await openPage(stack.tmp, pageErrors));
    const load = startLoad(stack.ports.proxy, { conns: 2, cap: 100,
                                                untilMs: Date.now() + 3000 });
    await load.done;
    const s = await stats();
    assert.equal(s.total.requests, load.ok + load.failed);
    assert.ok(!('workers' in s), 'one process sends no workers');
    assert.ok(s.backends.every(b => !('in_flight_by_worker' in b)));
    await page.goto(`http://127.0.0.1:${stack.ports.admin}/`);
    await until('the table shows every request', async () => num(await page.textContent(
        '#kpi-req')) === s.total.requests, within(6000));
    assert.equal(await panelShown(), false);
    assert.equal(await page.$$eval('#workers tbody tr', rs => rs.length), 0);
    assert.deepEqual(await backendHead(), ONE_PROCESS_HEAD);
    assert.deepEqual(await byWorkerCells(), []);
    const cols = await page.$$eval('#backends tbody tr[data-id]',
        rs => rs.map(r => r.children.length));
    assert.deepEqual(cols, [13, 13, 13]);
});

test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
});
