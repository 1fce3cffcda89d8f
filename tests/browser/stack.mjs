// stack: helpers for the browser test and the docs screenshot — the real
// ./lbbackend and ./lbproxy on free loopback ports, a bounded keep-alive
// load from Node, and Debian's headless Chromium through playwright-core.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)),
                                 '..', '..');
export const CHROMIUM = '/usr/bin/chromium';
export const LBPROXY = path.resolve(ROOT, process.env.LBPROXY || 'lbproxy');
export const LBBACKEND = path.resolve(ROOT, process.env.LBBACKEND || 'lbbackend');

export const sleep = ms => new Promise(r => setTimeout(r, ms));

// A port that was free a moment ago on 127.0.0.1.
export function freePort() {
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

// Polls fn until it returns a truthy value or the time is up; an error
// with `fatal` set stops at once, others are retried and the last one is
// in the failure message.
export async function until(what, fn, timeoutMs = 10000, everyMs = 100) {
    const end = Date.now() + timeoutMs;
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

export function portOpen(port) {
    return new Promise(resolve => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
    });
}

// GET a JSON document from 127.0.0.1:port.
export function getJson(port, p) {
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

// The processes of one run, their ports and a temp dir for their output and
// CSV logs.  stopAll() ends every process it started.
export class Stack {
    constructor(ids = ['A', 'B', 'C']) {
        this.ids = ids;
        this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lbproxy-browser-'));
        this.logsDir = path.join(this.tmp, 'logs');
        fs.mkdirSync(this.logsDir);
        this.children = [];
        this.backends = {};
        this.ports = {};
        this.proxy = null;
        this.proxyArgs = null;
    }

    start(name, bin, args) {
        const out = fs.openSync(path.join(this.tmp, name + '.log'), 'a');
        const p = spawn(bin, args, { cwd: ROOT, stdio: ['ignore', out, out] });
        fs.closeSync(out);
        p.name = name;
        p.exited = new Promise(r => p.once('exit', (code, sig) => r({ code, sig })));
        this.children.push(p);
        return p;
    }

    async stop(p) {
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 3000);
        await p.exited;
        clearTimeout(t);
    }

    tail(name) {
        try {
            return fs.readFileSync(path.join(this.tmp, name + '.log'), 'utf8')
                .slice(-1500);
        } catch (e) {
            return '';
        }
    }

    async waitUp(p, ports, what) {
        await until(what, async () => {
            if (p.exitCode !== null || p.signalCode !== null) {
                const e = new Error(`${p.name} exited: ${this.tail(p.name)}`);
                e.fatal = true;
                throw e;
            }
            for (const port of ports) if (!(await portOpen(port))) return false;
            return true;
        }, 10000, 50);
    }

    // Starts backend `id` with lbbackend flags (a --profile at least).
    async startBackend(id, flags) {
        if (!this.ports[id]) this.ports[id] = await freePort();
        const p = this.start('backend-' + id, LBBACKEND,
            ['--port', String(this.ports[id]), '--id', id, '--quiet', ...flags]);
        this.backends[id] = p;
        await this.waitUp(p, [this.ports[id]], 'backend ' + id);
        return p;
    }

    // Starts lbproxy over the backends; the CSV log goes to logsDir/csvName,
    // which the admin listener serves under /logs/.
    async startProxy(mode, persistent, csvName, extra = []) {
        if (!this.ports.proxy) {
            this.ports.proxy = await freePort();
            this.ports.admin = await freePort();
        }
        this.proxyArgs = ['--listen', '127.0.0.1:' + this.ports.proxy,
            '--admin', '127.0.0.1:' + this.ports.admin,
            ...this.ids.flatMap(id => ['--backend', '127.0.0.1:' + this.ports[id]]),
            '--mode', mode, persistent ? '--persistent' : '--non-persistent',
            '--log', path.join(this.logsDir, csvName),
            '--set', 'proxy.logs_dir=' + this.logsDir, ...extra];
        return this.restartProxy();
    }

    // Starts lbproxy with the configuration `ini` (its [backends] and
    // [pool.NAME] sections name the ports of this.ports); the CSV log as
    // startProxy's.
    async startProxyConfig(ini, csvName, extra = []) {
        if (!this.ports.proxy) {
            this.ports.proxy = await freePort();
            this.ports.admin = await freePort();
        }
        const file = path.join(this.tmp, 'lbproxy.ini');
        fs.writeFileSync(file, ini);
        this.proxyArgs = ['--config', file,
            '--listen', '127.0.0.1:' + this.ports.proxy,
            '--admin', '127.0.0.1:' + this.ports.admin,
            '--log', path.join(this.logsDir, csvName),
            '--set', 'proxy.logs_dir=' + this.logsDir, ...extra];
        return this.restartProxy();
    }

    async restartProxy() {
        await this.stop(this.proxy);
        this.proxy = this.start('lbproxy', LBPROXY, this.proxyArgs);
        await this.waitUp(this.proxy, [this.ports.proxy, this.ports.admin],
                          'lbproxy');
        return this.proxy;
    }

    async stopAll() {
        await Promise.all(this.children.map(p => this.stop(p).catch(() => {})));
        fs.rmSync(this.tmp, { recursive: true, force: true });
    }
}

// A bounded keep-alive load: `conns` loops of GET through the proxy until
// stopped, `cap` requests or `untilMs` (a Date.now() value); counts answers
// per backend (X-Backend-Id).  `host` sets the Host header (a route's);
// `keepAlive: false` opens a connection per request.
export function startLoad(port, { conns = 6, cap = 200000, untilMs, pace,
                                  host, keepAlive = true } = {}) {
    const agent = new http.Agent({ keepAlive, maxSockets: conns });
    const load = { sent: 0, ok: 0, failed: 0, perBackend: {}, running: true };
    const one = () => new Promise(resolve => {
        const req = http.get({ host: '127.0.0.1', port, path: '/load', agent,
                               timeout: 5000,
                               headers: host ? { Host: host } : {} }, res => {
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
        while (load.running && load.sent < cap && Date.now() < untilMs) {
            load.sent++;
            await one();
            if (pace) await sleep(pace());
        }
    };
    load.done = Promise.all(Array.from({ length: conns }, loop)).then(() => {
        load.running = false;
        agent.destroy();
    });
    load.stop = async () => { load.running = false; await load.done; };
    return load;
}

// A headless browser (below) with one page, whose script errors are pushed
// to `errors`; closeBrowser(ctx) ends it (a gone browser is no error).
export async function openPage(dir, errors) {
    const ctx = await launchBrowser(dir);
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('pageerror', e => errors.push(e.message));
    page.setDefaultTimeout(15000);
    return { ctx, page };
}

export async function closeBrowser(ctx) {
    try {
        if (ctx) await ctx.close();
    } catch (e) { /* the browser may be gone already */ }
}

// Debian's Chromium, headless, with a fresh profile under dir; never a
// downloaded browser.
export async function launchBrowser(dir, viewport = { width: 1440, height: 900 }) {
    const { chromium } = await import('playwright-core');
    return chromium.launchPersistentContext(path.join(dir, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        viewport,
        args: ['--headless', '--no-sandbox', '--disable-gpu',
               '--disable-background-networking', '--disable-component-update',
               '--disable-sync', '--no-first-run', '--disable-quic',
               '--disable-dev-shm-usage'],
    });
}
