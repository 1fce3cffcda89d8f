// csvlog: lists lbproxy's CSV request logs and turns one into the same
// per-second view the live charts draw (requests/s, p50/p99, share and
// errors per backend), parsing it in a Papa Parse worker.  A file that
// several runs appended to is split into its runs at long gaps.  The log's
// `pool` column (absent in older logs) splits backends by pool: with pools
// other than the default one, a backend's key is pool/id, as in the live
// /api/stats.
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

// A log appended to by several runs (an explicit --log FILE) has long
// stretches without a row between them: a gap longer than this starts a new
// run, and rates count only the seconds inside runs.
export const RUN_GAP_S = 30;

function counter() {
    return { n: 0, err: 0, lat: [], reused: 0, bytes: 0 };
}

function bump(map, k) {
    map.set(k, (map.get(k) || 0) + 1);
}

// What the aggregator calls a backend inside: pool and id ('' for a log
// without the pool column).
const SEP = '\u0000';

function poolCounter() {
    return { n: 0, err: 0, none: { n: 0, err: 0 }, mode: '', connModel: '' };
}

// Accumulates parsed rows into one record per second of the log; runs()
// splits the seconds at gaps, finish(run) returns the per-second view of one
// run (or of the whole file).
export class CsvAggregator {
    constructor() {
        this.secs = new Map();      // second -> per-second record (below)
        this.addr = new Map();      // pool SEP id -> address
        this.pools = new Set();     // the pool column's names
        this.rows = 0;
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

    record(sec) {
        let x = this.secs.get(sec);
        if (!x) {
            x = { rows: 0, retries: 0, hedges: 0, mode: '', connModel: '',
                  per: new Map(), none: { n: 0, err: 0 }, pools: new Map(),
                  errKinds: new Map(), statuses: new Map() };
            this.secs.set(sec, x);
        }
        return x;
    }

    add(rows) {
        for (const r of rows) {
            if (!r || !r.timestamp) continue;
            const sec = this.second(r.timestamp);
            if (!isFinite(sec)) continue;
            this.rows++;
            const x = this.record(sec);
            x.rows++;
            x.retries += parseInt(r.retries, 10) || 0;
            if (r.hedge === 'won' || r.hedge === 'lost') x.hedges++;
            if (!x.mode && r.mode) x.mode = r.mode;
            if (!x.connModel && r.conn_model) x.connModel = r.conn_model;
            const status = parseInt(r.status, 10) || 0;
            const isErr = (r.error && r.error !== '') || status >= 500 ||
                          status === 0;
            bump(x.statuses, status);
            if (r.error) bump(x.errKinds, r.error);
            else if (isErr) bump(x.errKinds, 'HTTP ' + status);
            // a row with a pool counts for that pool; one with none (no
            // route matched, or an older log) for no pool
            const pool = r.pool || '';
            let pc = null;
            if (pool) {
                this.pools.add(pool);
                pc = x.pools.get(pool);
                if (!pc) { pc = poolCounter(); x.pools.set(pool, pc); }
                pc.n++;
                if (isErr) pc.err++;
                if (!pc.mode && r.mode) pc.mode = r.mode;
                if (!pc.connModel && r.conn_model) pc.connModel = r.conn_model;
            }
            const id = r.backend_id;
            if (!id) {
                x.none.n++;
                if (isErr) x.none.err++;
                if (pc) {
                    pc.none.n++;
                    if (isErr) pc.none.err++;
                }
                continue;
            }
            const ik = pool + SEP + id;
            if (!this.addr.has(ik)) this.addr.set(ik, r.backend_addr || '');
            let c = x.per.get(ik);
            if (!c) { c = counter(); x.per.set(ik, c); }
            c.n++;
            if (isErr) c.err++;
            if (r.reused === '1') c.reused++;
            c.bytes += parseInt(r.resp_bytes, 10) || 0;
            const lat = parseFloat(r.upstream_ms !== '' && r.upstream_ms != null
                                   ? r.upstream_ms : r.total_ms);
            if (isFinite(lat) && !isErr) c.lat.push(lat);
        }
    }

    // The runs of the file, oldest first: [{start, end, seconds, rows}],
    // seconds = end - start + 1 (its active time).
    runs() {
        const ts = [...this.secs.keys()].sort((a, b) => a - b);
        const out = [];
        for (const t of ts) {
            const last = out[out.length - 1];
            if (last && t - last.end <= RUN_GAP_S) {
                last.end = t;
            } else {
                out.push({ start: t, end: t, rows: 0 });
            }
            out[out.length - 1].rows += this.secs.get(t).rows;
        }
        for (const r of out) r.seconds = r.end - r.start + 1;
        return out;
    }

    // The view of run `which` (an index into runs(); 'all' for the whole
    // file; default the last run): aligned per-second arrays per backend and
    // a summary whose rates are over active time (the runs' seconds).
    finish(which) {
        const runs = this.runs();
        let idx = which === 'all' ? 'all'
            : Number.isInteger(which) && which >= 0 && which < runs.length
                ? which : runs.length - 1;
        if (runs.length <= 1 && idx === 'all') idx = runs.length - 1;
        const sel = idx === 'all' ? runs : idx >= 0 ? [runs[idx]] : [];
        const minT = sel.length ? sel[0].start : 0;
        const maxT = sel.length ? sel[sel.length - 1].end : -1;
        const active = sel.reduce((a, r) => a + r.seconds, 0);
        const inRange = t => t >= minT && t <= maxT;
        const { keyOf, who } = this.keys();

        // totals over the selected seconds
        const tot = new Map();
        const pools = new Map();
        let rows = 0, retries = 0, mode = '', connModel = '';
        const none = { n: 0, err: 0 };
        const errKinds = new Map(), statuses = new Map();
        for (const [t, x] of this.secs) {
            if (!inRange(t)) continue;
            rows += x.rows;
            retries += x.retries;
            none.n += x.none.n;
            none.err += x.none.err;
            for (const [k, n] of x.errKinds) errKinds.set(k, (errKinds.get(k) || 0) + n);
            for (const [k, n] of x.statuses) statuses.set(k, (statuses.get(k) || 0) + n);
            for (const [name, c] of x.pools) {
                let a = pools.get(name);
                if (!a) { a = poolCounter(); pools.set(name, a); }
                a.n += c.n;
                a.err += c.err;
                a.none.n += c.none.n;
                a.none.err += c.none.err;
                if (!a.mode) a.mode = c.mode;
                if (!a.connModel) a.connModel = c.connModel;
            }
            for (const [ik, c] of x.per) {
                const id = keyOf(ik);
                let a = tot.get(id);
                if (!a) { a = counter(); tot.set(id, a); }
                a.n += c.n;
                a.err += c.err;
                a.reused += c.reused;
                a.bytes += c.bytes;
            }
        }
        for (let t = minT; t <= maxT && !(mode && connModel); t++) {
            const x = this.secs.get(t);
            if (!x) continue;
            if (!mode) mode = x.mode;
            if (!connModel) connModel = x.connModel;
        }

        // by id; with pools, the default pool's first, then by pool
        const rank = k => [who.get(k).pool !== 'default', who.get(k).pool, who.get(k).id];
        const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
        const ids = [...tot.keys()].sort((a, b) => {
            const x = rank(a), y = rank(b);
            return cmp(x[0], y[0]) || cmp(x[1], y[1]) || cmp(x[2], y[2]);
        });
        const empty = () => Object.fromEntries(ids.map(id => [id, []]));
        const v = { ids, t: [], bucket: 1, requests: empty(), errors: empty(),
                    p50: empty(), p99: empty(), share: empty(),
                    flow: { retries: [], hedges: [], queue: [] },
                    runs, run: idx };
        const all = new Map(ids.map(id => [id, []]));
        if (rows) {
            // one point per second from first to last (0 where idle); a
            // long span gets wider buckets so a chart keeps <= MAX_BUCKETS
            const span = maxT - minT + 1;
            const step = BUCKETS.find(b => span / b <= MAX_BUCKETS) ||
                         BUCKETS[BUCKETS.length - 1];
            v.bucket = step;
            for (let s0 = minT; s0 <= maxT; s0 += step) {
                const secs = Math.min(step, maxT - s0 + 1);
                const per = new Map(ids.map(id => [id, counter()]));
                let n = 0, fr = 0, fh = 0;
                for (let s = s0; s < s0 + secs; s++) {
                    const x = this.secs.get(s);
                    if (!x) continue;
                    fr += x.retries;
                    fh += x.hedges;
                    for (const [ik, c] of x.per) {
                        const p = per.get(keyOf(ik));
                        p.n += c.n;
                        p.err += c.err;
                        for (const l of c.lat) p.lat.push(l);
                        n += c.n;
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
                    v.share[id].push(n ? 100 * c.n / n : null);
                    if (c.lat.length) {
                        c.lat.sort((a, b) => a - b);
                        v.p50[id].push(percentile(c.lat, 0.5));
                        v.p99[id].push(percentile(c.lat, 0.99));
                        const a = all.get(id);
                        for (const l of c.lat) a.push(l);
                    } else {
                        v.p50[id].push(null);
                        v.p99[id].push(null);
                    }
                }
            }
        }
        const allLat = [];
        const poolLat = new Map();
        v.summary = {
            rows, retries, mode, connModel,
            start: rows ? minT : 0, end: rows ? maxT : 0,
            seconds: active, wall: rows ? maxT - minT + 1 : 0,
            runs: runs.length, run: idx,
            rps: active ? rows / active : 0,
            noBackend: none,
            errKinds: [...errKinds.entries()].sort((a, b) => b[1] - a[1]),
            statuses: [...statuses.entries()].sort((a, b) => a[0] - b[0]),
            backends: ids.map(key => {
                const b = tot.get(key);
                const w = who.get(key);
                const lat = all.get(key).sort((a, c) => a - c);
                for (const l of lat) allLat.push(l);
                if (!poolLat.has(w.pool)) poolLat.set(w.pool, []);
                const pl = poolLat.get(w.pool);
                for (const l of lat) pl.push(l);
                return {
                    key, id: w.id, pool: w.pool, address: w.addr, requests: b.n,
                    errors: b.err,
                    share: rows ? 100 * b.n / rows : 0,
                    rps: active ? b.n / active : 0,
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
                           none.err;
        // the pools in the order of their names, default first
        v.summary.pools = [...pools.keys()].sort((a, b) =>
            (b === 'default') - (a === 'default') || a.localeCompare(b))
            .map(name => {
                const a = pools.get(name);
                const lat = (poolLat.get(name) || []).sort((x, y) => x - y);
                return {
                    name, mode: a.mode, model: a.connModel,
                    backends: v.summary.backends.filter(b => b.pool === name).length,
                    requests: a.n, errors: a.err, none: a.none,
                    rps: active ? a.n / active : 0,
                    p50: percentile(lat, 0.5), p99: percentile(lat, 0.99),
                };
            });
        return v;
    }

    // How the backends seen are keyed: by id, or by pool/id when the log
    // names a pool other than the default (an older log has no pool
    // column: ids).  keyOf(inner key) -> key; who: key -> {id, pool, addr}.
    keys() {
        const named = [...this.pools].some(p => p !== 'default');
        const memo = new Map();
        const who = new Map();
        for (const [ik, addr] of this.addr) {
            const [pool, id] = ik.split(SEP);
            const p = pool || 'default';
            const key = named ? p + '/' + id : id;
            memo.set(ik, key);
            if (!who.has(key)) who.set(key, { id, pool: p, addr });
        }
        return { keyOf: ik => memo.get(ik), who };
    }
}

// Downloads /logs/NAME, then parses it in a Papa Parse worker in slices of
// a few MB, so a large log neither blocks the page nor arrives as one huge
// batch of rows.  Resolves to the aggregator (its finish(run) gives a view);
// onProgress(text) reports the steps.
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
                resolve(agg);
            },
            error: err => reject(new Error('cannot parse ' + name + ': ' +
                                           (err && err.message || err))),
        });
    });
}
