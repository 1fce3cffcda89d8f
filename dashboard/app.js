// app: the live dashboard.  Fills its charts from the `history` of the first
// snapshot, appends each SSE snapshot of /api/stream, survives lbproxy
// restarts, and switches to a CSV log from /logs/ on request.

import { ChartSet, backendColour, logScale } from './charts.js';
import { RUN_GAP_S, listLogs, loadLog } from './csvlog.js';
import { esc, fmtBytes, fmtClock, fmtDateTime, fmtDuration, fmtInt, fmtMs,
         fmtNum, fmtRate } from './format.js';
import { ALL, allPoolsHeader, bkey, blabel, bpool, choosePool, currentPool,
         inPool, livePools, renderPools, shareWithin } from './pools.js';
import { byWorkerCell, byWorkerHead, renderWorkers } from './workers.js';

const MAX_POINTS = 600;      // ten minutes of one-second points
const STALE_MS = 4000;       // no snapshot for this long: reconnect
const $ = id => document.getElementById(id);

const els = {
    rps: $('chart-rps'), share: $('chart-share'), lat: $('chart-lat'),
    score: $('chart-score'), err: $('chart-err'), flow: $('chart-flow'),
};

// Live series, aligned on `t` (unix seconds), one array per backend key
// (its id, or pool/id with named pools: bkey in pools.js).
const live = {
    ids: [], t: [], requests: {}, errors: {}, p50: {}, p99: {}, score: {},
    share: {}, health: {}, healthAt: new Map(), snap: null,
    flow: { retries: [], hedges: [], queue: [] },
};
const events = [];
let lastPosted = 0;          // id of the newest POST /api/event line shown
let view = 'live';           // 'live' | 'csv'
let charts = null;
let csv = null;              // { name, agg, view }
let es = null;
let lastMsgAt = 0;
let connState = 'wait';      // 'wait' | 'live' | 'bad'
let everLive = false;
let retryMs = 1000;
let retryTimer = null;

const SERIES = ['requests', 'errors', 'p50', 'p99', 'score', 'share', 'health'];
const FLOW = ['retries', 'hedges', 'queue'];

function resetLive(ids) {
    live.ids = ids.slice();
    live.t = [];
    live.healthAt = new Map();   // unix second -> {id: health}
    for (const k of SERIES) {
        live[k] = Object.fromEntries(ids.map(id => [id, []]));
    }
    for (const id of ids) backendColour(id);
    live.flow = { retries: [], hedges: [], queue: [] };
}

function pushPoint(t, vals) {
    live.t.push(t);
    for (const k of FLOW) live.flow[k].push(vals && vals.flow ? vals.flow[k] : null);
    let tot = 0;
    for (const id of live.ids) tot += vals ? vals.requests[id] || 0 : 0;
    const hs = live.healthAt.get(t);
    for (const id of live.ids) {
        const v = vals && vals[id];
        const req = vals ? vals.requests[id] : null;
        live.requests[id].push(req);
        live.errors[id].push(vals ? vals.errors[id] : null);
        live.p50[id].push(v && req > 0 ? v.p50 : null);
        live.p99[id].push(v && req > 0 ? v.p99 : null);
        live.score[id].push(v ? v.score : null);
        live.share[id].push(vals && tot > 0 ? 100 * (req || 0) / tot : null);
        live.health[id].push(hs ? hs[id] || null : null);
    }
}

function truncate(n) {
    live.t.length = n;
    for (const k of SERIES) for (const id of live.ids) live[k][id].length = n;
    for (const k of FLOW) live.flow[k].length = n;
}

function dropOldest(n) {
    live.t.splice(0, n);
    for (const k of SERIES) for (const id of live.ids) live[k][id].splice(0, n);
    for (const k of FLOW) live.flow[k].splice(0, n);
    for (const t of live.healthAt.keys()) {
        if (t < live.t[0]) live.healthAt.delete(t);
    }
}

function col(h, key, id, i) {
    const a = h[key] && h[key][id];
    const x = a ? a[i] : null;
    return x == null || !isFinite(x) ? null : Number(x);
}

// Lays the snapshot's `history` (the last 60 s) over the end of the series:
// points older than its first second are kept, the rest is replaced, so a
// second that the server labels one off between two snapshots is neither
// lost nor doubled.  A gap in time becomes a null point so lines break
// instead of bridging it.  Seconds before lbproxy started are left out.
function mergeHistory(h, startT) {
    const ts = (h && h.t) || [];
    let i0 = 0;
    while (i0 < ts.length && ts[i0] < startT) i0++;
    if (i0 >= ts.length) return;
    let k = live.t.length;
    while (k > 0 && live.t[k - 1] >= ts[i0]) k--;
    truncate(k);
    if (k > 0 && ts[i0] - live.t[k - 1] > 1) pushPoint(live.t[k - 1] + 1, null);
    for (let i = i0; i < ts.length; i++) {
        const vals = { requests: {}, errors: {}, flow: {} };
        for (const k of FLOW) {
            const a = h.flow && h.flow[k];
            vals.flow[k] = a && a[i] != null ? Number(a[i]) : null;
        }
        for (const id of live.ids) {
            vals.requests[id] = col(h, 'requests', id, i) || 0;
            vals.errors[id] = col(h, 'errors', id, i) || 0;
            vals[id] = { p50: col(h, 'p50_ms', id, i), p99: col(h, 'p99_ms', id, i),
                         score: col(h, 'score', id, i) };
        }
        pushPoint(ts[i], vals);
    }
    const extra = live.t.length - MAX_POINTS;
    if (extra > 0) dropOldest(extra);
}

function addEvent(cls, text, when) {
    events.unshift({ cls, text, when: when || Date.now() / 1000 });
    if (events.length > 200) events.length = 200;
    if (view === 'live') renderEvents();
}

// One snapshot (from /api/stats or an SSE event).
function onSnapshot(s) {
    if (!s || !Array.isArray(s.backends)) return;
    const prev = live.snap;
    const ids = s.backends.map(bkey);
    let rebuild = false;
    if (prev && s.uptime_s + 0.5 < prev.uptime_s) {
        addEvent('ev-info', `lbproxy restarted (uptime ${fmtDuration(s.uptime_s)})`,
                 s.time);
        lastPosted = 0;  // a new process numbers its posted events anew
        resetLive(ids);
        rebuild = true;
    } else if (ids.join('\u0000') !== live.ids.join('\u0000')) {
        if (prev) addEvent('ev-info', 'backend set changed: ' + ids.join(', '),
                           s.time);
        resetLive(ids);
        rebuild = true;
    }
    const startT = s.time && s.uptime_s != null
        ? Math.floor(s.time - s.uptime_s) : -Infinity;
    mergeHistory(s.history, startT);
    if (!live.t.length) {
        // no history yet (first second): start the time axis now
        pushPoint(Math.floor(s.time || Date.now() / 1000) - 1, null);
    }
    const n = live.t.length - 1;
    const before = prev && !rebuild
        ? Object.fromEntries(prev.backends.map(b => [bkey(b), b])) : {};
    const hs = {};
    live.healthAt.set(live.t[n], hs);
    for (const b of s.backends) {
        const k = bkey(b);
        hs[k] = b.health;
        live.health[k][n] = b.health;
        const p = before[k];
        if (p && p.health !== b.health) {
            const cls = b.health === 'up' ? 'ev-ok'
                : b.health === 'probing' ? 'ev-warn' : 'ev-bad';
            addEvent(cls, `${k}: ${p.health} → ${b.health}` +
                     (b.reason ? ` (${b.reason})` : ''), s.time);
        } else if (!p && b.health !== 'up') {
            addEvent(b.health === 'probing' ? 'ev-warn' : 'ev-bad',
                     `${k} is ${b.health}` + (b.reason ? ` (${b.reason})` : ''),
                     s.time);
        }
    }
    // lines that scripts posted (the demo names its phases), each once
    for (const e of Array.isArray(s.events) ? s.events : []) {
        if (!(e.id > lastPosted)) continue;
        lastPosted = e.id;
        addEvent('ev-' + ({ ok: 'ok', warn: 'warn', bad: 'bad' }[e.level] || 'info'),
                 String(e.text), e.time);
    }
    live.snap = s;
    if (view === 'live') renderLive(rebuild);
}

// The live series of `keys`; one pool's shares are within that pool.
function liveView(keys, cur) {
    return { t: live.t, requests: live.requests, errors: live.errors,
             p50: live.p50, p99: live.p99, score: live.score,
             share: cur === ALL ? live.share
                 : shareWithin(keys, live.requests, live.t.length),
             health: live.health, flow: live.flow };
}

// The charts of `shown` (backends), rebuilt when the backends or their
// labels change, else given the new points.
function drawCharts(shown, cur, view, withScore, rebuild) {
    const keys = shown.map(bkey);
    const labels = Object.fromEntries(shown.map(b => [bkey(b), blabel(b, cur)]));
    const sig = JSON.stringify([keys, labels, withScore]);
    if (rebuild || !charts || charts.sig !== sig) {
        if (charts) charts.destroy();
        charts = new ChartSet(els, keys, view(keys), withScore, labels);
        charts.sig = sig;
    } else {
        charts.update(view(keys));
    }
}

function renderLive(rebuild) {
    const s = live.snap;
    if (!s) return;
    const pools = livePools(s);
    const cur = currentPool(pools);
    const pool = pools.find(p => p.name === cur);
    const shown = inPool(s.backends, cur);
    renderPools(pools, cur, 'Req/s');
    renderWorkers(s);
    const head = pool || allPoolsHeader(pools, s.mode,
                                        s.persistent ? 'persistent' : 'non_persistent');
    renderHeader(head.mode, head.model);
    $('meta').textContent = [
        s.version ? 'v' + s.version : null,
        'up ' + fmtDuration(s.uptime_s),
        `${shown.length} backend${shown.length === 1 ? '' : 's'}`,
        pools.length > 1 ? `${pools.length} pools` : null,
        `window ${s.window_s || '?'} s`,
        'updated ' + fmtClock(s.time || Date.now() / 1000),
    ].filter(Boolean).join(' · ');
    renderLiveKpis(s, pool, shown);
    renderLiveTable(s, shown, cur);
    drawCharts(shown, cur, keys => liveView(keys, cur), true, rebuild);
}

function renderHeader(mode, model) {
    $('mode').textContent = mode || '—';
    $('conn-model').textContent = (model || '—').replace('_', '-');
}

function kpi(id, html, bad) {
    const e = $(id);
    e.innerHTML = html;
    e.classList.toggle('bad', !!bad);
}

const unit = u => `<small>${u}</small>`;

function errPct(errors, total) {
    if (!errors || !total) return '';
    const p = 100 * errors / total;
    return unit(p < 0.01 ? '< 0.01 %' : p < 1 ? p.toFixed(2) + ' %'
                                            : p.toFixed(1) + ' %');
}

// One pool's figures over the totals (retries, hedges, the queue and the
// tunnels are counted for all pools only).
function poolTotals(s, pool, shown) {
    return Object.assign({}, s.total, {
        requests: pool.requests, errors: pool.errors, rps: pool.rps,
        in_flight: shown.reduce((a, b) => a + (b.in_flight || 0), 0),
        latency_ms: { p50: pool.p50, p99: pool.p99 }, tunnels: {},
    });
}

function renderLiveKpis(s, pool, shown) {
    const t = pool ? poolTotals(s, pool, shown) : s.total || {};
    const lat = t.latency_ms || {};
    $('kpi-rps-label').textContent = 'Requests/s';
    $('kpi-inflight-label').textContent = 'In flight';
    $('kpi-retry-label').textContent = pool ? 'Retries (all pools)' : 'Retries';
    kpi('kpi-rps', fmtRate(t.rps));
    kpi('kpi-req', fmtInt(t.requests));
    kpi('kpi-err', fmtInt(t.errors) + errPct(t.errors, t.requests), t.errors > 0);
    // open WebSocket/Upgrade tunnels beside the requests in flight
    const tn = t.tunnels || {};
    kpi('kpi-inflight', fmtInt(t.in_flight) +
        (tn.open ? ` ${unit(fmtInt(tn.open) + ' tunnels')}` : ''));
    $('kpi-inflight').title = `tunnels: ${fmtInt(tn.open || 0)} open, ` +
        `${fmtInt(tn.total || 0)} since start`;
    // retries (per-try deadlines, 5xx), what the budget refused, the queue
    const q = t.queue || {};
    kpi('kpi-retry', fmtInt(t.retries || 0) +
        (q.length ? ` ${unit('queued ' + fmtInt(q.length))}` : ''),
        (t.retry_budget_refused || 0) + (q.full || 0) + (q.timeouts || 0) > 0);
    $('kpi-retry').title =
        `hedges ${fmtInt(t.hedges || 0)} (won ${fmtInt(t.hedge_wins || 0)}), ` +
        `per-try deadline ${fmtInt(t.per_try_retries || 0)}, ` +
        `5xx ${fmtInt(t.retries_5xx || 0)}, ` +
        `refused by the budget ${fmtInt(t.retry_budget_refused || 0)}; ` +
        `queue: ${fmtInt(q.length || 0)} waiting, ${fmtInt(q.total || 0)} ` +
        `waited, ${fmtInt((q.full || 0) + (q.timeouts || 0))} answered 503`;
    kpi('kpi-p50', fmtMs(lat.p50) + unit('ms'));
    kpi('kpi-p99', fmtMs(lat.p99) + unit('ms'));
}

function setHead(cols) {
    $('backends').tHead.innerHTML = '<tr>' + cols.map(([label, cls, title]) =>
        `<th class="${cls || ''}" title="${esc(title || '')}">${label}</th>`)
        .join('') + '</tr>';
}

function cell(colName, content, cls, title) {
    return `<td data-col="${colName}" class="${cls || ''}"` +
           (title ? ` title="${esc(title)}"` : '') + `>${content}</td>`;
}

function idCell(id, label = id) {
    return cell('id', `<span class="swatch" style="background:${backendColour(id)}">` +
                `</span>${esc(label)}`, 'l id');
}

function shareBar(id, pct) {
    const w = Math.round(Math.max(0, Math.min(100, pct || 0)) * 0.6);
    return `${pct == null ? '—' : pct.toFixed(1) + ' %'}` +
           `<span class="bar" style="width:${w}px;background:${backendColour(id)}"></span>`;
}

function renderLiveTable(s, shown, cur) {
    $('table-title').textContent = 'Backends';
    $('table-hint').textContent =
        `rates and percentiles over the last ${s.window_s || '?'} s; ` +
        'requests and errors since start';
    setHead([['Backend', 'l'], ['Address', 'l'],
             ['State', 'l', 'health, or what the runtime API set: draining, drained, maint'],
             ['Reason', 'l'], ['In flight'], ...byWorkerHead(s),
             ['Pool idle', '', 'idle pooled upstream connections'],
             ['Score', '', 'selector score: lower is preferred'], ['Req/s'],
             ['Share', '', 'share of requests/s over the window'],
             ['p50'], ['p99'], ['Requests'], ['Errors']]);
    const totRps = shown.reduce((a, b) => a + (b.rps || 0), 0);
    const rows = shown.map(b => {
        const k = bkey(b);
        const lat = b.latency_ms || {};
        const errs = b.errors || {};
        const etot = typeof errs === 'number' ? errs : errs.total || 0;
        const detail = typeof errs === 'object'
            ? Object.entries(errs).filter(([k, v]) => k !== 'total' && v)
                .map(([k, v]) => `${k}: ${v}`).join(', ') : '';
        // the runtime API's state (draining, drained, maint) else the health
        const h = esc(b.state || b.health || 'unknown');
        return `<tr data-id="${esc(k)}" data-pool="${esc(bpool(b))}">` +
            idCell(k, blabel(b, cur)) +
            cell('address', esc(b.address), 'l addr') +
            cell('health', `<span class="health h-${h}">${h}</span>`, 'l') +
            cell('reason', esc(b.reason || ''), 'l reason', b.reason) +
            cell('in_flight', fmtInt(b.in_flight)) + byWorkerCell(s, b) +
            cell('pool_idle', fmtInt(b.pool_idle)) +
            cell('score', fmtNum(b.score)) +
            cell('rps', fmtRate(b.rps)) +
            cell('share', shareBar(k, totRps ? 100 * (b.rps || 0) / totRps : null)) +
            cell('p50', b.rps > 0 || lat.p50 > 0 ? fmtMs(lat.p50) + ' ms' : '—') +
            cell('p99', b.rps > 0 || lat.p99 > 0 ? fmtMs(lat.p99) + ' ms' : '—') +
            cell('requests', fmtInt(b.requests)) +
            cell('errors', fmtInt(etot), etot ? 'err-nz' : '', detail) +
            '</tr>';
    });
    $('backends').tBodies[0].innerHTML = rows.join('') ||
        `<tr><td class="empty" colspan="${13 + byWorkerHead(s).length}">` +
        'no backends configured</td></tr>';
}

function renderEvents() {
    $('events-title').textContent = 'Events';
    $('events-hint').textContent = 'health changes, restarts, connection, ' +
        'posted events';
    const ul = $('events');
    if (!events.length) {
        ul.innerHTML = '<li class="none">nothing yet: every backend has stayed up</li>';
        return;
    }
    ul.innerHTML = events.map(e =>
        `<li><time>${fmtClock(e.when)}</time><span class="${e.cls}">${esc(e.text)}</span></li>`)
        .join('');
}

// Connection handling: EventSource reconnects by itself after a dropped
// stream; when it gives up (CLOSED) or goes silent, start a new one.
function setConn(state) {
    if (state === connState) return;
    const wasLive = connState === 'live';
    connState = state;
    const b = $('conn-badge');
    b.className = 'badge ' + { live: 'badge-live', bad: 'badge-bad',
                               wait: 'badge-wait' }[state];
    b.textContent = { live: 'live', bad: 'disconnected — retrying',
                      wait: 'connecting…' }[state];
    if (state === 'bad' && wasLive) addEvent('ev-bad', 'connection to lbproxy lost');
    if (state === 'live' && everLive) addEvent('ev-ok', 'reconnected to lbproxy');
    if (state === 'live') everLive = true;
}

function connect() {
    clearTimeout(retryTimer);
    if (es) es.close();
    es = new EventSource('/api/stream');
    const handle = e => {
        let s;
        try { s = JSON.parse(e.data); } catch (err) { return; }
        lastMsgAt = Date.now();
        retryMs = 1000;
        setConn('live');
        onSnapshot(s);
    };
    es.addEventListener('stats', handle);
    es.onmessage = handle;
    es.onerror = () => {
        setConn('bad');
        if (es.readyState === EventSource.CLOSED) scheduleReconnect();
    };
}

function scheduleReconnect() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 8000);
}

// A silent stream (half-open connection, server stopped) counts as lost.
setInterval(() => {
    if (lastMsgAt && Date.now() - lastMsgAt > STALE_MS) {
        setConn('bad');
        lastMsgAt = Date.now();
        connect();
    }
}, 1000);

async function fetchSnapshot() {
    try {
        const r = await fetch('/api/stats', { cache: 'no-store' });
        if (r.ok) onSnapshot(await r.json());
    } catch (e) { /* the stream will retry */ }
}

// ---- CSV logs ---------------------------------------------------------------

async function refreshLogs() {
    const sel = $('log-select');
    const keep = sel.value;
    let list = [];
    try { list = await listLogs(); } catch (e) { list = []; }
    sel.innerHTML = `<option value="">${list.length ? 'CSV logs…' : 'no CSV logs'}</option>` +
        list.map(f => {
            const when = f.mtime ? 'modified ' + fmtDateTime(f.mtime) : '';
            return `<option value="${esc(f.name)}" title="${esc(when)}">` +
                   `${esc(f.name)}${f.size != null ? ' · ' + fmtBytes(f.size) : ''}` +
                   '</option>';
        }).join('');
    if (keep && list.some(f => f.name === keep)) sel.value = keep;
    return list;
}

async function openLog(name) {
    if (!name) { $('log-select').focus(); return; }
    $('btn-load').disabled = true;
    $('csv-banner').classList.remove('hidden');
    $('csv-title').textContent = name;
    $('csv-progress').textContent = 'loading…';
    try {
        const t0 = performance.now();
        const agg = await loadLog(name, text => {
            $('csv-progress').textContent = text;
        });
        const v = agg.finish(); // the last run
        const ms = performance.now() - t0;
        csv = { name, agg, view: v };
        history.replaceState(null, '', '#log=' + encodeURIComponent(name));
        showCsv(ms);
    } catch (e) {
        $('csv-progress').textContent = String(e.message || e);
    } finally {
        $('btn-load').disabled = false;
    }
}

// The run selector of the CSV banner: one entry per run of the file (split
// at gaps of more than RUN_GAP_S), and all of them; hidden for one run.
function renderRuns(v) {
    const sel = $('csv-run');
    const n = v.runs.length;
    sel.classList.toggle('hidden', n <= 1);
    if (n <= 1) { sel.innerHTML = ''; return; }
    sel.innerHTML = v.runs.map((r, i) =>
        `<option value="${i}">run ${i + 1} of ${n}: ${fmtDateTime(r.start)} → ` +
        `${fmtClock(r.end)} (${fmtDuration(r.seconds)}, ${fmtInt(r.rows)} req)` +
        '</option>').join('') +
        `<option value="all">all ${n} runs (rates over active time)</option>`;
    sel.value = String(v.run);
}

function selectRun(which) {
    if (!csv) return;
    csv.view = csv.agg.finish(which === 'all' ? 'all' : Number(which));
    showCsv();
}

function showCsv(ms) {
    const v = csv.view;
    const s = v.summary;
    renderRuns(v);
    view = 'csv';
    document.body.dataset.view = 'csv';
    $('btn-live').classList.remove('active');
    $('btn-load').classList.add('active');
    $('card-score').classList.add('hidden');
    $('csv-banner').classList.remove('hidden');
    $('csv-title').textContent = 'Log ' + csv.name;
    $('csv-progress').textContent = s.rows
        ? `${fmtInt(s.rows)} requests, ${fmtDateTime(s.start)} → ` +
          `${fmtClock(s.end)} (${fmtDuration(s.seconds)}` +
          (s.wall > s.seconds ? ` active of ${fmtDuration(s.wall)}` : '') + ')' +
          (s.runs > 1 ? `, ${s.runs} runs in this file (gaps over ` +
                        `${RUN_GAP_S} s)` : '') +
          (v.bucket > 1 ? `, charts in ${v.bucket} s buckets` : '') +
          (ms != null ? `, parsed in ${(ms / 1000).toFixed(1)} s` : '')
        : 'the log has no request rows';
    // the pool selector narrows the table, the charts and the cards
    const cur = currentPool(s.pools);
    const pool = s.pools.find(p => p.name === cur);
    const shown = inPool(s.backends, cur);
    const noBackend = pool ? pool.none : s.noBackend;
    const tot = pool ? { rows: pool.requests, errors: pool.errors, rps: pool.rps,
                         p50: pool.p50, p99: pool.p99 } : s;
    renderPools(s.pools, cur, 'Mean req/s');
    renderWorkers(null);
    const head = pool || allPoolsHeader(s.pools, s.mode, s.connModel);
    renderHeader(head.mode, head.model);
    $('meta').textContent = `CSV log · ${fmtInt(tot.rows)} rows · ` +
        `${shown.length} backend${shown.length === 1 ? '' : 's'}` +
        (s.pools.length > 1 ? ` · ${s.pools.length} pools` : '');

    $('kpi-rps-label').textContent = 'Mean req/s';
    $('kpi-inflight-label').textContent = 'Active time';
    $('kpi-retry-label').textContent = pool ? 'Retries (all pools)' : 'Retries';
    kpi('kpi-rps', fmtRate(tot.rps));
    kpi('kpi-req', fmtInt(tot.rows));
    kpi('kpi-err', fmtInt(tot.errors) + errPct(tot.errors, tot.rows), tot.errors > 0);
    kpi('kpi-inflight', fmtDuration(s.seconds));
    $('kpi-inflight').title = '';
    kpi('kpi-retry', fmtInt(s.retries || 0));
    $('kpi-retry').title = 'extra attempts, from the log\'s retries column';
    kpi('kpi-p50', fmtMs(tot.p50) + unit('ms'));
    kpi('kpi-p99', fmtMs(tot.p99) + unit('ms'));

    $('table-title').textContent = 'Backends in this run';
    $('table-hint').textContent = (s.run === 'all' ? 'whole log'
        : s.runs > 1 ? `run ${s.run + 1} of ${s.runs}` : 'whole log') +
        '; req/s over active time; latency = dispatch to last byte ' +
        '(upstream_ms) of successful requests';
    setHead([['Backend', 'l'], ['Address', 'l'], ['Requests'], ['Share'],
             ['Mean req/s'], ['p50'], ['p99'], ['Mean'], ['Errors'],
             ['Reused', '', 'requests sent on a pooled connection'],
             ['Sent', '', 'response bytes sent to clients']]);
    const rows = shown.map(b => `<tr data-id="${esc(b.key)}" data-pool="${esc(b.pool)}">` +
        idCell(b.key, blabel(b, cur)) + cell('address', esc(b.address), 'l addr') +
        cell('requests', fmtInt(b.requests)) +
        cell('share', shareBar(b.key, pool ? (pool.requests ? 100 * b.requests /
                                                 pool.requests : 0) : b.share)) +
        cell('rps', fmtRate(b.rps)) +
        cell('p50', fmtMs(b.p50) + ' ms') + cell('p99', fmtMs(b.p99) + ' ms') +
        cell('mean', fmtMs(b.mean) + ' ms') +
        cell('errors', fmtInt(b.errors), b.errors ? 'err-nz' : '') +
        cell('reused', b.reused.toFixed(0) + ' %') +
        cell('bytes', fmtBytes(b.bytes)) + '</tr>');
    if (noBackend.n) {
        rows.push('<tr data-id=""><td class="l id" data-col="id">' +
            '<span class="swatch" style="background:#8b949e"></span>none</td>' +
            '<td class="l addr">answered by lbproxy</td>' +
            cell('requests', fmtInt(noBackend.n)) + '<td></td><td></td><td></td>' +
            '<td></td><td></td>' + cell('errors', fmtInt(noBackend.err),
            noBackend.err ? 'err-nz' : '') + '<td></td><td></td></tr>');
    }
    $('backends').tBodies[0].innerHTML = rows.join('') ||
        '<tr><td class="empty" colspan="11">no requests reached a backend</td></tr>';

    $('events-title').textContent = 'Run summary';
    $('events-hint').textContent = 'errors by kind, status codes';
    const items = [];
    for (const [k, n] of s.errKinds) {
        items.push(`<li><time>${fmtInt(n)}</time><span class="ev-bad">error: ${esc(k)}</span></li>`);
    }
    for (const [code, n] of s.statuses) {
        const cls = code >= 500 || code === 0 ? 'ev-bad' : code >= 400 ? 'ev-warn' : 'ev-ok';
        items.push(`<li><time>${fmtInt(n)}</time><span class="${cls}">` +
                   `status ${code || 'none'}</span></li>`);
    }
    $('events').innerHTML = items.join('') || '<li class="none">empty log</li>';

    drawCharts(shown, cur, keys => ({ t: v.t, requests: v.requests,
        errors: v.errors, p50: v.p50, p99: v.p99,
        share: cur === ALL ? v.share : shareWithin(keys, v.requests, v.t.length),
        flow: v.flow }), false, true);
}

function showLive() {
    view = 'live';
    document.body.dataset.view = 'live';
    csv = null;
    history.replaceState(null, '', location.pathname + location.search);
    $('btn-live').classList.add('active');
    $('btn-load').classList.remove('active');
    $('card-score').classList.remove('hidden');
    $('csv-banner').classList.add('hidden');
    if (charts) { charts.destroy(); charts = null; }
    renderEvents();
    if (live.snap) renderLive(true);
    else renderPools([], ALL, '');
}

for (const b of document.querySelectorAll('.scale-toggle')) {
    const key = b.dataset.chart;
    b.setAttribute('aria-pressed', String(!!logScale[key]));
    b.addEventListener('click', () => {
        const on = !logScale[key];
        b.setAttribute('aria-pressed', String(on));
        if (charts) charts.setLog(key, on); else logScale[key] = on;
    });
}

$('btn-live').addEventListener('click', showLive);
$('btn-back').addEventListener('click', showLive);
$('btn-load').addEventListener('click', () => openLog($('log-select').value));
$('csv-run').addEventListener('change', e => selectRun(e.target.value));

// The pool selector and the pools table's rows: show that pool.
function selectPool(name) {
    choosePool(name);
    if (view === 'csv' && csv) showCsv();
    else renderLive(false);
}
$('pool-select').addEventListener('change', e => selectPool(e.target.value));
$('pools').addEventListener('click', e => {
    const tr = e.target.closest('tr[data-pool]');
    if (tr) selectPool(tr.dataset.pool);
});
$('log-select').addEventListener('focus', refreshLogs);
$('log-select').addEventListener('keydown', e => {
    if (e.key === 'Enter') openLog($('log-select').value);
});

// Hooks for the browser test and for poking around in the console.
window.lbDashboard = {
    view: () => view,
    ids: () => (charts ? charts.ids.slice() : []),
    coverage: () => (charts ? charts.coverage() : {}),
    chartView: () => (charts ? charts.view : null),
    points: () => live.t.length,
    snapshot: () => live.snap,
    shares: () => ({ t: live.t.slice(), share: live.share }),
    events: () => events.map(e => ({ cls: e.cls, text: e.text, when: e.when })),
    csvSummary: () => (csv ? csv.view.summary : null),
    csvRuns: () => (csv ? csv.view.runs : null),
    selectRun,
    selectPool,
    connection: () => connState,
    refreshLogs,
    openLog,
};

document.body.dataset.view = 'live';
renderEvents();
fetchSnapshot();
connect();
refreshLogs().then(() => {
    const m = /^#log=(.+)$/.exec(location.hash);
    if (m) {
        const name = decodeURIComponent(m[1]);
        $('log-select').value = name;
        openLog(name);
    }
});
