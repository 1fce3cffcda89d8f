// workers: the Workers panel and the backends table's "by worker" column,
// shown only when /api/stats has `workers` (lbproxy --workers N, N > 1;
// docs/workers.md).  One process sends neither `workers` nor
// `in_flight_by_worker`, and then nothing here draws anything.  A worker's
// requests/s comes from successive snapshots: its request count over the
// last RATE_SPAN_S seconds of them, keyed by index and pid, so that a
// replaced worker (new pid, count from zero) starts its own rate.

import { esc, fmtDuration, fmtInt, fmtRate } from './format.js';

export const RATE_SPAN_S = 5;   // the rate covers up to this many seconds

// index:pid -> [{ t, requests }, ...], oldest first, within RATE_SPAN_S
const samples = new Map();

export const hasWorkers = s => !!s && Array.isArray(s.workers) && s.workers.length > 0;

const wkey = w => `${w.index}:${w.pid}`;

// Adds snapshot `s`'s worker counts to the samples and returns each
// worker's requests/s by index:pid (null until two snapshots at least a
// second apart are known, or when a count went backwards).
export function workerRates(s) {
    const rates = new Map();
    if (!hasWorkers(s) || s.time == null) { samples.clear(); return rates; }
    const t = Number(s.time);
    const seen = new Set();
    for (const w of s.workers) {
        const k = wkey(w);
        seen.add(k);
        let a = samples.get(k) || [];
        const req = Number(w.requests) || 0;
        const prev = a[a.length - 1];
        // a count or a clock that went backwards, or a long gap (the CSV
        // view was shown, the stream was lost): start afresh
        if (prev && (req < prev.requests || t < prev.t ||
                     t - prev.t > 2 * RATE_SPAN_S)) a = [];
        if (!a.length || t > a[a.length - 1].t) a.push({ t, requests: req });
        while (a.length > 1 && t - a[1].t >= RATE_SPAN_S) a.shift();
        samples.set(k, a);
        const first = a[0], last = a[a.length - 1];
        const dt = last.t - first.t;
        rates.set(k, dt >= 1 ? (last.requests - first.requests) / dt : null);
    }
    for (const k of [...samples.keys()]) if (!seen.has(k)) samples.delete(k);
    return rates;
}

// The Workers panel for live snapshot `s`; hidden without workers (one
// process, the CSV view: pass null).
export function renderWorkers(s) {
    const show = hasWorkers(s);
    const rates = workerRates(s);
    document.getElementById('workers-card').classList.toggle('hidden', !show);
    const table = document.getElementById('workers');
    if (!show) { table.tBodies[0].innerHTML = ''; return; }
    const up = s.workers.filter(w => w.up).length;
    document.getElementById('workers-hint').textContent =
        `${up} of ${s.workers.length} up; req/s over the last ` +
        `${RATE_SPAN_S} s of snapshots; worker 0 serves this page`;
    table.tHead.innerHTML = '<tr><th class="l">Worker</th><th class="l">PID</th>' +
        '<th class="l">State</th><th title="replacements forked for this index">' +
        'Restarts</th><th title="since this process started">Requests</th>' +
        '<th>Req/s</th><th title="open client connections">Connections</th>' +
        '<th>Uptime</th></tr>';
    table.tBodies[0].innerHTML = s.workers.map(w => {
        const h = w.up ? 'up' : 'down';
        return `<tr data-worker="${esc(w.index)}" data-pid="${esc(w.pid)}">` +
            `<td class="l id" data-col="index">${esc(w.index)}</td>` +
            `<td class="l addr" data-col="pid">${w.pid > 0 ? esc(w.pid) : '—'}</td>` +
            `<td class="l" data-col="state"><span class="health h-${h}">${h}</span></td>` +
            `<td data-col="restarts">${fmtInt(w.restarts)}</td>` +
            `<td data-col="requests">${fmtInt(w.requests)}</td>` +
            `<td data-col="rps">${fmtRate(rates.get(wkey(w)))}</td>` +
            `<td data-col="connections">${fmtInt(w.connections)}</td>` +
            `<td data-col="uptime">${w.up ? fmtDuration(w.uptime_s) : '—'}</td></tr>`;
    }).join('');
}

// The backends table's column after "In flight": none for one process.
export function byWorkerHead(s) {
    return hasWorkers(s)
        ? [['By worker', '', 'requests in flight per worker: worker 0 / worker 1 / …']]
        : [];
}

// Backend `b`'s "by worker" cell ("3 / 2"), or '' for one process.
export function byWorkerCell(s, b) {
    if (!hasWorkers(s)) return '';
    const a = Array.isArray(b.in_flight_by_worker) ? b.in_flight_by_worker : [];
    const text = a.length ? a.map(fmtInt).join(' / ') : '—';
    return `<td data-col="in_flight_by_worker" title="worker 0 / worker 1 / …">` +
        `${esc(text)}</td>`;
}
