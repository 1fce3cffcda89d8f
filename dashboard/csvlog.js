// csvlog: lists lbproxy's CSV request logs and turns one into the same
// per-second view the live charts draw (requests/s, p50/p99, share and
// errors per backend), parsing it in a Papa Parse worker.
/* global Papa */

// The CSV logs the admin listener serves under /logs/, newest first.
// Asks for the JSON listing, and falls back to the links of the HTML one.
export async function listLogs() {
    let list = [];
    try {
        const r = await fetch('/logs/?format=json', { cache: 'no-store' });
        if (!r.ok) throw new Error(r.status);
        const ct = r.headers.get('content-type') || '';
        if (ct.includes('json')) {
            const j = await r.json();
            const arr = Array.isArray(j) ? j : (j.files || j.logs || []);
            list = arr.map(f => (typeof f === 'string' ? { name: f } : f));
        } else {
            list = parseListing(await r.text());
        }
    } catch (e) {
        const r = await fetch('/logs/', { cache: 'no-store' });
        if (!r.ok) throw new Error('GET /logs/: ' + r.status);
        list = parseListing(await r.text());
    }
    list = list.filter(f => f && f.name && /\.csv$/i.test(f.name));
    list.sort((a, b) => (b.mtime || 0) - (a.mtime || 0) ||
                        a.name.localeCompare(b.name));
    return list;
}

function parseListing(html) {
    const doc = new DOMParser().parseFromString(html, 'text/html');
    const seen = new Set();
    const out = [];
    for (const a of doc.querySelectorAll('a[href]')) {
        const name = decodeURIComponent(a.getAttribute('href'))
            .replace(/^.*\//, '');
        if (/\.csv$/i.test(name) && !seen.has(name)) {
            seen.add(name);
            out.push({ name });
        }
    }
    return out;
}

// Bucket widths (seconds) for the CSV charts, and the most points a chart
// gets: an hour-long log is drawn in 10 s buckets.
const BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const MAX_BUCKETS = 600;

function percentile(sorted, q) {
    if (!sorted.length) return null;
    const i = Math.min(sorted.length - 1,
                       Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[i];
}

// Accumulates parsed rows; finish() returns the per-second view.
export class CsvAggregator {
    constructor() {
        this.buckets = new Map();   // second -> Map(id -> {n, err, lat[]})
        this.backends = new Map();  // id -> {addr, n, err, reused, bytes}
        this.rows = 0;
        this.retries = 0;           // extra attempts, summed over rows
        this.flow = new Map();      // second -> {retries, hedges}
        this.noBackend = { n: 0, err: 0 };
        this.errKinds = new Map();
        this.statuses = new Map();
        this.mode = '';
        this.connModel = '';
        this.minT = Infinity;
        this.maxT = -Infinity;
        this.prefix = '';
        this.prefixSec = 0;
    }

    second(ts) {
        // "2026-11-25T14:03:01.123456Z": the first 19 characters name the
        // second, and neighbouring rows share it, so parse it once.
        const p = ts.slice(0, 19);
        if (p !== this.prefix) {
            this.prefix = p;
            this.prefixSec = Math.floor(Date.parse(p + 'Z') / 1000);
        }
        return this.prefixSec;
    }

    add(rows) {
        for (const r of rows) {
            if (!r || !r.timestamp) continue;
            const sec = this.second(r.timestamp);
            if (!isFinite(sec)) continue;
            this.rows++;
            const extra = parseInt(r.retries, 10) || 0;
            this.retries += extra;
            const hedged = r.hedge === 'won' || r.hedge === 'lost' ? 1 : 0;
            if (extra || hedged) {
                const f = this.flow.get(sec) || { retries: 0, hedges: 0 };
                f.retries += extra;
                f.hedges += hedged;
                this.flow.set(sec, f);
            }
            if (!this.mode && r.mode) this.mode = r.mode;
            if (!this.connModel && r.conn_model) this.connModel = r.conn_model;
            if (sec < this.minT) this.minT = sec;
            if (sec > this.maxT) this.maxT = sec;
            const status = parseInt(r.status, 10) || 0;
            const isErr = (r.error && r.error !== '') || status >= 500 ||
                          status === 0;
            this.statuses.set(status, (this.statuses.get(status) || 0) + 1);
            if (r.error) {
                this.errKinds.set(r.error, (this.errKinds.get(r.error) || 0) + 1);
            } else if (isErr) {
                const k = 'HTTP ' + status;
                this.errKinds.set(k, (this.errKinds.get(k) || 0) + 1);
            }
            const id = r.backend_id;
            if (!id) {
                this.noBackend.n++;
                if (isErr) this.noBackend.err++;
                continue;
            }
            let b = this.backends.get(id);
            if (!b) {
                b = { addr: r.backend_addr || '', n: 0, err: 0, reused: 0,
                      bytes: 0 };
                this.backends.set(id, b);
            }
            b.n++;
            if (isErr) b.err++;
            if (r.reused === '1') b.reused++;
            b.bytes += parseInt(r.resp_bytes, 10) || 0;
            let m = this.buckets.get(sec);
            if (!m) { m = new Map(); this.buckets.set(sec, m); }
            let c = m.get(id);
            if (!c) { c = { n: 0, err: 0, lat: [] }; m.set(id, c); }
            c.n++;
            if (isErr) c.err++;
            const lat = parseFloat(r.upstream_ms !== '' && r.upstream_ms != null
                                   ? r.upstream_ms : r.total_ms);
            if (isFinite(lat) && !isErr) c.lat.push(lat);
        }
    }

    // The view: aligned per-second arrays per backend plus a run summary.
    finish() {
        const ids = [...this.backends.keys()].sort();
        const empty = () => Object.fromEntries(ids.map(id => [id, []]));
        const v = { ids, t: [], bucket: 1, requests: empty(), errors: empty(),
                    p50: empty(), p99: empty(), share: empty(),
                    flow: { retries: [], hedges: [], queue: [] } };
        const all = new Map(ids.map(id => [id, []]));
        const allLat = [];
        if (this.rows && isFinite(this.minT)) {
            // one point per second from first to last (0 where idle); a
            // long log gets wider buckets so a chart keeps <= MAX_BUCKETS
            const span = this.maxT - this.minT + 1;
            const step = BUCKETS.find(b => span / b <= MAX_BUCKETS) ||
                         BUCKETS[BUCKETS.length - 1];
            v.bucket = step;
            for (let s0 = this.minT; s0 <= this.maxT; s0 += step) {
                const secs = Math.min(step, this.maxT - s0 + 1);
                const per = new Map(ids.map(id => [id, { n: 0, err: 0, lat: [] }]));
                let tot = 0, fr = 0, fh = 0;
                for (let s = s0; s < s0 + secs; s++) {
                    const f = this.flow.get(s);
                    if (f) { fr += f.retries; fh += f.hedges; }
                    const m = this.buckets.get(s);
                    if (!m) continue;
                    for (const [id, c] of m) {
                        const p = per.get(id);
                        p.n += c.n;
                        p.err += c.err;
                        for (const x of c.lat) p.lat.push(x);
                        tot += c.n;
                    }
                }
                v.t.push(s0);
                v.flow.retries.push(fr / secs);
                v.flow.hedges.push(fh / secs);
                v.flow.queue.push(null); // the log does not see the queue
                for (const id of ids) {
                    const c = per.get(id);
                    v.requests[id].push(c.n / secs);
                    v.errors[id].push(c.err / secs);
                    v.share[id].push(tot ? 100 * c.n / tot : null);
                    if (c.lat.length) {
                        c.lat.sort((a, b) => a - b);
                        v.p50[id].push(percentile(c.lat, 0.5));
                        v.p99[id].push(percentile(c.lat, 0.99));
                        const a = all.get(id);
                        for (const x of c.lat) a.push(x);
                    } else {
                        v.p50[id].push(null);
                        v.p99[id].push(null);
                    }
                }
            }
        }
        const span = this.rows ? this.maxT - this.minT + 1 : 0;
        v.summary = {
            rows: this.rows, retries: this.retries,
            mode: this.mode, connModel: this.connModel,
            start: this.minT, end: this.maxT, seconds: span,
            noBackend: this.noBackend,
            errKinds: [...this.errKinds.entries()].sort((a, b) => b[1] - a[1]),
            statuses: [...this.statuses.entries()].sort((a, b) => a[0] - b[0]),
            backends: ids.map(id => {
                const b = this.backends.get(id);
                const lat = all.get(id).sort((a, c) => a - c);
                for (const x of lat) allLat.push(x);
                return {
                    id, address: b.addr, requests: b.n, errors: b.err,
                    share: this.rows ? 100 * b.n / this.rows : 0,
                    rps: span ? b.n / span : 0,
                    reused: b.n ? 100 * b.reused / b.n : 0,
                    bytes: b.bytes,
                    p50: percentile(lat, 0.5), p99: percentile(lat, 0.99),
                    mean: lat.length ? lat.reduce((a, c) => a + c, 0) / lat.length
                                     : null,
                };
            }),
        };
        allLat.sort((a, b) => a - b);
        v.summary.p50 = percentile(allLat, 0.5);
        v.summary.p99 = percentile(allLat, 0.99);
        v.summary.errors = v.summary.backends.reduce((a, b) => a + b.errors, 0) +
                           this.noBackend.err;
        return v;
    }
}

// Downloads /logs/NAME, then parses it in a Papa Parse worker in slices of
// a few MB, so a large log neither blocks the page nor arrives as one huge
// batch of rows.  Resolves to the view; onProgress(text) reports the steps.
export async function loadLog(name, onProgress) {
    const url = new URL('/logs/' + encodeURIComponent(name), location.href).href;
    const report = onProgress || (() => {});
    report('downloading…');
    const res = await fetch(url, { cache: 'no-store' });
    if (!res.ok) throw new Error(`cannot load ${name}: HTTP ${res.status}`);
    const blob = await res.blob();
    const agg = new CsvAggregator();
    return new Promise((resolve, reject) => {
        Papa.parse(blob, {
            worker: true, header: true, skipEmptyLines: true,
            chunkSize: 4 << 20,
            chunk: r => {
                agg.add(r.data);
                const pct = blob.size ? Math.min(100, 100 * r.meta.cursor / blob.size) : 100;
                report(`parsing… ${pct.toFixed(0)} % (${agg.rows.toLocaleString('en-US')} rows)`);
            },
            complete: () => {
                try { resolve(agg.finish()); } catch (e) { reject(e); }
            },
            error: err => reject(new Error('cannot parse ' + name + ': ' +
                                           (err && err.message || err))),
        });
    });
}
