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
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const LBPROXY = path.resolve(ROOT, process.env.LBPROXY || 'lbproxy');
const LBBACKEND = path.resolve(ROOT, process.env.LBBACKEND || 'lbbackend');
const IDS = ['A', 'B', 'C'];
const DEADLINE = Date.now() + 58000;    // the whole file stays under a minute

if (!fs.existsSync(CHROMIUM)) {
    console.log('skipped: chromium not installed (' + CHROMIUM + ')');
    process.exit(0);
}

let chromium;
try {
    ({ chromium } = await import('playwright-core'));
} catch (e) {
    console.error('playwright-core missing: run `npm ci` (scripts/install-deps.sh)');
    process.exit(1);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lbproxy-browser-'));
const logsDir = path.join(tmp, 'logs');
const shotsDir = path.join(ROOT, 'logs');
fs.mkdirSync(logsDir);
fs.mkdirSync(shotsDir, { recursive: true });
const CSV_NAME = 'browser_test.csv';

const children = [];
let ctx = null;
let page = null;
const pageErrors = [];
const ports = {};
let proxyArgs = null;
let proxy = null;

// ---- helpers ---------------------------------------------------------------

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

function remaining() {
    return Math.max(1000, DEADLINE - Date.now());
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

// Polls fn until it returns a truthy value; the last error or value is in
// the failure message.
async function until(what, fn, timeoutMs = 10000, everyMs = 100) {
    const end = Date.now() + Math.min(timeoutMs, remaining());
    let last;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
            last = v;
        } catch (e) {
            if (e.fatal) throw e;
            last = e;
        }
        if (Date.now() > end) {
            throw new Error(`timed out waiting for ${what}; last: ` +
                (last instanceof Error ? last.message : JSON.stringify(last)));
        }
        await sleep(everyMs);
    }
}

function portOpen(port) {
    return new Promise(resolve => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
    });
}

function start(name, bin, args) {
    const out = fs.openSync(path.join(tmp, name + '.log'), 'a');
    const p = spawn(bin, args, { cwd: ROOT, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    p.name = name;
    p.exited = new Promise(r => p.once('exit', (code, sig) => r({ code, sig })));
    children.push(p);
    return p;
}

async function stop(p) {
    if (p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 3000);
    await p.exited;
    clearTimeout(t);
}

function tail(name) {
    try {
        return fs.readFileSync(path.join(tmp, name + '.log'), 'utf8').slice(-1500);
    } catch (e) {
        return '';
    }
}

function getJson(port, p) {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: p, agent: false,
                               timeout: 3000 }, res => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', d => { body += d; });
            res.on('end', () => {
                if (res.statusCode !== 200) {
                    reject(new Error(`GET ${p}: ${res.statusCode}`));
                    return;
                }
                try { resolve(JSON.parse(body)); } catch (e) { reject(e); }
            });
        });
        req.on('timeout', () => req.destroy(new Error('timeout ' + p)));
        req.on('error', reject);
    });
}

// A bounded keep-alive load: `conns` loops of GET / through the proxy until
// stopped, the request cap or the deadline; counts answers per backend.
function startLoad(port, conns = 6, cap = 200000) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
    const load = { sent: 0, ok: 0, failed: 0, perBackend: {}, running: true };
    const one = () => new Promise(resolve => {
        const req = http.get({ host: '127.0.0.1', port, path: '/load', agent,
                               timeout: 5000 }, res => {
            const id = res.headers['x-backend-id'] || '?';
            res.resume();
            res.on('end', () => {
                if (res.statusCode === 200) load.ok++; else load.failed++;
                load.perBackend[id] = (load.perBackend[id] || 0) + 1;
                resolve();
            });
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', () => { load.failed++; resolve(); });
    });
    const loop = async () => {
        while (load.running && load.sent < cap && Date.now() < DEADLINE - 8000) {
            load.sent++;
            await one();
        }
    };
    load.done = Promise.all(Array.from({ length: conns }, loop)).then(() => {
        load.running = false;
        agent.destroy();
    });
    load.stop = async () => { load.running = false; await load.done; };
    return load;
}

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

async function startProxy() {
    proxy = start('lbproxy', LBPROXY, proxyArgs);
    await until('lbproxy listening on ' + ports.proxy + ' and ' + ports.admin,
        async () => {
            if (proxy.exitCode !== null) {
                const e = new Error('lbproxy exited: ' + tail('lbproxy'));
                e.fatal = true;
                throw e;
            }
            return (await portOpen(ports.proxy)) && (await portOpen(ports.admin));
        }, 10000, 50);
}

// ---- setup and teardown ----------------------------------------------------

before(async () => {
    for (const bin of [LBPROXY, LBBACKEND]) {
        assert.ok(fs.existsSync(bin), `${bin} missing: run make first`);
    }
    for (const k of ['b0', 'b1', 'b2', 'proxy', 'admin']) ports[k] = await freePort();
    IDS.forEach((id, i) => start('backend-' + id, LBBACKEND,
        ['--port', String(ports['b' + i]), '--id', id, '--profile', 'fixed:2ms',
         '--quiet']));
    await until('backends listening', async () => {
        for (let i = 0; i < IDS.length; i++) {
            if (!(await portOpen(ports['b' + i]))) return false;
        }
        return true;
    }, 10000, 50);
    proxyArgs = ['--listen', '127.0.0.1:' + ports.proxy,
                 '--admin', '127.0.0.1:' + ports.admin,
                 ...IDS.flatMap((id, i) => ['--backend', '127.0.0.1:' + ports['b' + i]]),
                 '--mode', 'adaptive_ewma', '--persistent',
                 '--log', path.join(logsDir, CSV_NAME),
                 '--set', 'proxy.logs_dir=' + logsDir];
    await startProxy();

    ctx = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        viewport: { width: 1440, height: 900 },
        args: ['--headless', '--no-sandbox', '--disable-gpu',
               '--disable-background-networking', '--disable-component-update',
               '--disable-sync', '--no-first-run', '--disable-quic',
               '--disable-dev-shm-usage'],
    });
    page = ctx.pages()[0] || await ctx.newPage();
    page.on('pageerror', e => pageErrors.push(e.message));
    page.setDefaultTimeout(15000);
});

after(async () => {
    try {
        if (ctx) await ctx.close();
    } catch (e) { /* the browser may be gone already */ }
    await Promise.all(children.map(p => stop(p).catch(() => {})));
    fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- the test --------------------------------------------------------------

test('dashboard on the real lbproxy', { timeout: 58000 }, async t => {
    let load = null;
    try {
        await t.test('page loads, header shows mode and connection model',
            async () => {
            await page.goto(`http://127.0.0.1:${ports.admin}/`);
            await until('mode in the header', async () =>
                (await page.textContent('#mode')) === 'adaptive_ewma');
            assert.equal(await page.textContent('#conn-model'), 'persistent');
            await until('live badge', async () =>
                (await page.textContent('#conn-badge')) === 'live');
        });

        load = startLoad(ports.proxy);

        await t.test('live charts fill for all three backends', async () => {
            const cov = await until('chart data for A, B and C', async () => {
                const c = await page.evaluate(() => window.lbDashboard.coverage());
                const ok = c.requests && IDS.every(id =>
                    c.requests[id] >= 2 && c.p50[id] >= 2 && c.share[id] >= 2 &&
                    c.score[id] >= 1);
                return ok ? c : false;
            }, 25000, 250);
            assert.deepEqual(await page.evaluate(() => window.lbDashboard.ids()), IDS);
            const legend = await page.$$eval('#chart-rps .u-legend .u-series .u-label',
                els => els.map(e => e.textContent.trim()));
            for (const id of IDS) assert.ok(legend.includes(id), `legend ${legend}`);
            assert.ok(cov.requests.A > 0);
        });

        await t.test('status table agrees with /api/stats under load', async () => {
            // the page shows the snapshot of at most a second ago; allow
            // three seconds of that backend's rate
            await until('table within tolerance of /api/stats', async () => {
                const rows = await tableRows();
                const api = await getJson(ports.admin, '/api/stats');
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
            }, 8000, 300);
        });

        await t.test('after the load stops, the table matches exactly', async () => {
            await load.stop();
            assert.ok(load.ok > 100, `only ${load.ok} requests succeeded`);
            await until('/api/stats counts every request sent', async () => {
                const api = await getJson(ports.admin, '/api/stats');
                return api.total.requests >= load.ok + load.failed;
            }, 5000, 100);
            const api = await getJson(ports.admin, '/api/stats');
            for (const b of api.backends) {
                // what the client saw per backend is what lbproxy counted
                const seen = load.perBackend[b.id] || 0;
                assert.ok(Math.abs(seen - b.requests) <= Math.max(3, 0.01 * seen),
                          `${b.id}: client saw ${seen}, api says ${b.requests}`);
                assert.ok(b.requests > 0, `${b.id} got no traffic`);
            }
            await until('table equals /api/stats', async () => {
                const rows = await tableRows();
                const now = await getJson(ports.admin, '/api/stats');
                return now.backends.every(b => {
                    const r = rows.find(x => x.id === b.id);
                    return r && num(r.requests) === b.requests &&
                        num(r.errors) === (b.errors.total ?? b.errors);
                });
            }, 5000, 200);
            const kpi = num(await page.textContent('#kpi-req'));
            assert.equal(kpi, api.total.requests);
            await page.screenshot({ path: path.join(shotsDir, 'dashboard-live.png'),
                                    fullPage: true });
        });

        await t.test('a CSV log from /logs/ opens in the CSV view', async () => {
            const csvPath = path.join(logsDir, CSV_NAME);
            const rowsInFile = () => {
                const txt = fs.readFileSync(csvPath, 'utf8');
                return txt.split('\n').filter(l => l.length).length - 1;
            };
            await until('the CSV log holds every request', () =>
                fs.existsSync(csvPath) && rowsInFile() >= load.ok, 6000, 200);
            const nrows = rowsInFile();
            const list = await getJson(ports.admin, '/logs/?format=json');
            const names = (Array.isArray(list) ? list : list.files || [])
                .map(f => (typeof f === 'string' ? f : f.name));
            assert.ok(names.includes(CSV_NAME), `/logs/ lists ${names}`);

            await page.evaluate(() => window.lbDashboard.refreshLogs());
            await page.selectOption('#log-select', CSV_NAME);
            await page.click('#btn-load');
            const summary = await until('CSV view', () => page.evaluate(() =>
                window.lbDashboard.view() === 'csv' && window.lbDashboard.csvSummary()),
                15000, 200);
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
            await stop(proxy);
            await until('disconnected badge', async () =>
                /disconnected/.test(await page.textContent('#conn-badge')),
                10000, 100);
            await startProxy();
            await until('live badge after restart', async () =>
                (await page.textContent('#conn-badge')) === 'live', 20000, 200);
            await until('restart event and charts reset', async () => {
                const ev = await page.textContent('#events');
                const snap = await page.evaluate(() => window.lbDashboard.snapshot());
                return /restarted/.test(ev) && snap.uptime_s < 15 &&
                    snap.total.requests === 0;
            }, 8000, 200);
        });

        await t.test('no script errors on the page', () => {
            assert.deepEqual(pageErrors, []);
        });
    } finally {
        if (load) await load.stop();
    }
});
