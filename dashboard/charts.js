// charts: the dashboard's uPlot charts.  Every chart takes the same shape of
// input (a time axis in unix seconds and one array per backend), so the live
// view and the CSV view draw through the same code.
/* global uPlot */

import { fmtMs, fmtNum, fmtRate } from './format.js';

const PALETTE = ['#4e9bff', '#f5a623', '#3ecf8e', '#e5534b', '#b083f0',
                 '#2fc7c9', '#f778ba', '#d4c84a', '#a5735a', '#8b949e'];
const colours = new Map();

// One colour per backend (its key: the id, or pool/id) for the whole
// session, in order of first sight, so A is the same blue in the table,
// every chart and the CSV view.
export function backendColour(id) {
    if (!colours.has(id)) colours.set(id, PALETTE[colours.size % PALETTE.length]);
    return colours.get(id);
}

function alpha(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
}

const AXIS_STROKE = '#8a96a8';
const GRID = '#262e3a';
const FONT = '11px system-ui, "DejaVu Sans", sans-serif';
const LABEL_FONT = '12px system-ui, "DejaVu Sans", sans-serif';
const HEIGHT = 250;

function yAxis(label, fmt) {
    return {
        stroke: AXIS_STROKE, font: FONT, labelFont: LABEL_FONT,
        grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 },
        label, labelSize: 18, size: 52, gap: 4,
        values: (u, splits) => splits.map(v => (v == null ? '' : fmt(v))),
    };
}

const pad2 = n => String(n).padStart(2, '0');

// 24-hour tick labels whose precision follows the visible span.
function timeTicks(u, splits) {
    const span = u.scales.x.max - u.scales.x.min;
    return splits.map(s => {
        const d = new Date(s * 1000);
        const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
        if (span > 2 * 86400) return `${d.getMonth() + 1}/${d.getDate()} ${hm}`;
        if (span > 1800) return hm;
        return `${hm}:${pad2(d.getSeconds())}`;
    });
}

function xAxis() {
    return {
        stroke: AXIS_STROKE, font: FONT, values: timeTicks, space: 60,
        // whole seconds at least: points are one-second buckets
        incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
                7200, 10800, 21600, 43200, 86400, 172800, 604800],
        grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 },
    };
}

function zeroBased(pad) {
    return (u, min, max) => [0, max > 0 ? max * pad : 1];
}

// Keeps a chart as wide as its container.
function autosize(u, el) {
    const ro = new ResizeObserver(() => {
        const w = Math.floor(el.clientWidth);
        if (w > 0 && w !== u.width) u.setSize({ width: w, height: HEIGHT });
    });
    ro.observe(el);
    return ro;
}

class Chart {
    constructor(el, opts, data) {
        this.el = el;
        el.textContent = '';
        opts.width = Math.max(300, Math.floor(el.clientWidth || 600));
        opts.height = HEIGHT;
        opts.cursor = Object.assign({ sync: { key: 'lb' } }, opts.cursor);
        opts.legend = Object.assign({ live: true }, opts.legend);
        // away from the cursor, the legend shows the latest values
        opts.hooks = Object.assign({}, opts.hooks);
        opts.hooks.setCursor = (opts.hooks.setCursor || []).concat(
            u => { if (u.cursor.idx == null) this.showLatest(); });
        this.u = new uPlot(opts, data, el);
        this.ro = autosize(this.u, el);
        this.showLatest();
    }
    showLatest() {
        const u = this.u;
        if (!u) return;
        const n = u.data[0].length;
        if (n && u.cursor.idx == null) u.setLegend({ idx: n - 1 }, false);
    }
    setData(data) { this.u.setData(data); this.showLatest(); }
    destroy() { this.ro.disconnect(); this.u.destroy(); this.el.textContent = ''; }
}

function baseOpts(yLabel, fmt, range) {  // range: linear y only
    return {
        scales: { x: { time: true }, y: { range } },
        axes: [xAxis(), yAxis(yLabel, fmt)],
        // the legend's first entry: the second its values belong to
        series: [{ label: '', value: (u, v) => (v == null ? '' :
            new Date(v * 1000).toLocaleTimeString('en-GB', { hour12: false })) }],
    };
}

function lineSeries(id, extra) {
    const c = backendColour(id);
    return Object.assign({ label: id, stroke: c, width: 1.75,
                           points: { show: false }, spanGaps: false }, extra);
}

// Each chart takes `ids` (the backends' keys, which index the view) and
// `lab`, which names a key in the legend.
const same = id => id;

// Requests per second, one line per backend.
export function rpsChart(el, ids, view, lab = same) {
    const o = baseOpts('requests/s', fmtRate, zeroBased(1.15));
    for (const id of ids) {
        o.series.push(lineSeries(id, {
            label: lab(id), fill: alpha(backendColour(id), 0.08),
            value: (u, v) => (v == null ? '—' : fmtRate(v) + ' req/s'),
        }));
    }
    return new Chart(el, o, [view.t, ...ids.map(id => view.requests[id])]);
}

// Share of requests per backend, stacked to 100 % per second.
export function shareChart(el, ids, ref, lab = same) {
    const view = ref.view;
    const o = baseOpts('% of requests', v => v + ' %', () => [0, 100]);
    o.bands = [];
    ids.forEach((id, k) => {
        const c = backendColour(id);
        o.series.push({
            label: lab(id), stroke: c, width: 1, fill: alpha(c, 0.7),
            points: { show: false },
            value: (u, v, si, i) => {
                const s = i == null ? null : ref.view.share[id][i];
                return s == null ? '—' : s.toFixed(1) + ' %';
            },
        });
        if (k > 0) o.bands.push({ series: [k + 1, k], fill: alpha(c, 0.7) });
    });
    return new Chart(el, o, shareData(ids, view));
}

function shareData(ids, view) {
    const cum = ids.map(() => new Array(view.t.length));
    for (let i = 0; i < view.t.length; i++) {
        let acc = 0, any = false;
        ids.forEach((id, k) => {
            const s = view.share[id][i];
            if (s != null) { acc += s; any = true; }
            cum[k][i] = any ? acc : null;
        });
    }
    return [view.t, ...cum];
}

// Which charts use a logarithmic y axis (toggled from the page; kept for
// the session so a rebuilt chart keeps the choice).
export const logScale = { lat: false, score: true };

const positive = a => a.map(v => (v != null && v > 0 ? v : null));

function yScale(opts, log, pad) {
    opts.scales.y = log ? { distr: 3, log: 10 } : { range: zeroBased(pad) };
}

// p50 (solid) and p99 (dashed) latency per backend.
export function latencyChart(el, ids, view, lab = same) {
    const log = logScale.lat;
    const o = baseOpts(log ? 'latency (ms, log)' : 'latency (ms)', fmtMs);
    yScale(o, log, 1.1);
    for (const id of ids) {
        o.series.push(lineSeries(id, {
            label: lab(id) + ' p50',
            value: (u, v) => (v == null ? '—' : fmtMs(v) + ' ms'),
        }));
    }
    for (const id of ids) {
        o.series.push(lineSeries(id, {
            label: lab(id) + ' p99', width: 1.25, dash: [5, 4],
            value: (u, v) => (v == null ? '—' : fmtMs(v) + ' ms'),
        }));
    }
    const reshape = v => {
        const d = [...ids.map(id => v.p50[id]), ...ids.map(id => v.p99[id])];
        return [v.t, ...(log ? d.map(positive) : d)];
    };
    const c = new Chart(el, o, reshape(view));
    c.reshape = reshape;
    return c;
}

// The selector's score per backend (what `pick` compares).
export function scoreChart(el, ids, view, lab = same) {
    const log = logScale.score;
    const o = baseOpts(log ? 'score (log)' : 'score', fmtNum);
    yScale(o, log, 1.15);
    for (const id of ids) {
        o.series.push(lineSeries(id, {
            label: lab(id), value: (u, v) => (v == null ? '—' : fmtNum(v)),
        }));
    }
    const reshape = v => [v.t, ...ids.map(id =>
        (log ? positive(v.score[id]) : v.score[id]))];
    const c = new Chart(el, o, reshape(view));
    c.reshape = reshape;
    return c;
}

const FLOW_SERIES = [
    ['retries', 'extra attempts/s', '#f5a623', false],
    ['hedges', 'hedges/s', '#b083f0', false],
    ['queue', 'queued', '#e5534b', true],
];

// What the retry machinery did each second: extra attempts and hedges
// started, and the circuit breaker's queue length (sampled once a second;
// the CSV view has no queue).
export function flowChart(el, view) {
    const o = baseOpts('per second / queued', fmtRate, zeroBased(1.2));
    for (const [, label, colour, stepped] of FLOW_SERIES) {
        o.series.push({
            label, stroke: colour, width: stepped ? 1.5 : 1.75,
            points: { show: false }, spanGaps: false,
            paths: stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
            fill: stepped ? alpha(colour, 0.12) : undefined,
            value: (u, v) => (v == null ? '—' : fmtRate(v)),
        });
    }
    return new Chart(el, o, flowData(view));
}

function flowData(view) {
    const f = view.flow || {};
    return [view.t, ...FLOW_SERIES.map(([k]) =>
        f[k] || new Array(view.t.length).fill(null))];
}

const HEALTH_FILL = { ejected: '#f85149', down: '#8b949e', probing: '#d29922' };
const LANE = 5;

// Errors per second per backend, with one thin lane per backend along the
// top that is red while it was ejected (amber probing, grey down).
export function errorChart(el, ids, ref, lab = same) {
    const view = ref.view;
    const o = baseOpts('errors/s', fmtRate, (u, min, max) =>
        [0, Math.max(max, 1) * (1.25 + 0.06 * ids.length)]);
    // whole errors only: no 0.5 error ticks
    o.axes[1].incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4,
                       2e4, 5e4, 1e5];
    for (const id of ids) {
        o.series.push(lineSeries(id, {
            label: lab(id), paths: uPlot.paths.stepped({ align: 1 }),
            fill: alpha(backendColour(id), 0.12),
            value: (u, v) => (v == null ? '—' : fmtRate(v) + ' err/s'),
        }));
    }
    o.hooks = {
        draw: [u => {
            const v = ref.view;
            if (!v.health) return;
            const ctx = u.ctx;
            const dpr = devicePixelRatio || 1;
            const top = u.bbox.top;
            ids.forEach((id, k) => {
                const lane = v.health[id];
                if (!lane) return;
                const y = top + (2 + k * (LANE + 2)) * dpr;
                for (let i = 0; i < v.t.length; i++) {
                    const h = lane[i];
                    if (!h || !HEALTH_FILL[h]) continue;
                    const x0 = u.valToPos(v.t[i] - 0.5, 'x', true);
                    const x1 = u.valToPos(v.t[i] + 0.5, 'x', true);
                    ctx.fillStyle = HEALTH_FILL[h];
                    ctx.fillRect(x0, y, Math.max(x1 - x0, 2 * dpr), LANE * dpr);
                    ctx.fillStyle = backendColour(id);
                    ctx.fillRect(x0, y + LANE * dpr, Math.max(x1 - x0, 2 * dpr), 1 * dpr);
                }
            });
        }],
    };
    return new Chart(el, o, [view.t, ...ids.map(id => view.errors[id])]);
}

// The set of charts for one view; update() takes a new view of the same ids
// (keys); labels (optional) names each key in the legends.
export class ChartSet {
    constructor(els, ids, view, withScore, labels) {
        this.ids = ids;
        this.lab = labels ? id => (labels[id] != null ? labels[id] : id) : same;
        const lab = this.lab;
        this.ref = { view };
        this.charts = {
            rps: rpsChart(els.rps, ids, view, lab),
            share: shareChart(els.share, ids, this.ref, lab),
            lat: latencyChart(els.lat, ids, view, lab),
            err: errorChart(els.err, ids, this.ref, lab),
        };
        if (withScore) this.charts.score = scoreChart(els.score, ids, view, lab);
        if (els.flow) this.charts.flow = flowChart(els.flow, view);
        this.els = els;
        this.view = view;
    }
    update(view) {
        const ids = this.ids;
        this.view = view;
        this.ref.view = view;
        const c = this.charts;
        c.rps.setData([view.t, ...ids.map(id => view.requests[id])]);
        c.share.setData(shareData(ids, view));
        c.lat.setData(c.lat.reshape(view));
        c.err.setData([view.t, ...ids.map(id => view.errors[id])]);
        if (c.score) c.score.setData(c.score.reshape(view));
        if (c.flow) c.flow.setData(flowData(view));
    }
    // Switches one chart ('lat' or 'score') between linear and log axes.
    setLog(key, on) {
        logScale[key] = on;
        const make = { lat: latencyChart, score: scoreChart }[key];
        if (!this.charts[key]) return;
        this.charts[key].destroy();
        this.charts[key] = make(this.els[key], this.ids, this.view, this.lab);
    }
    // Non-null points per backend and chart, for the browser test.
    coverage() {
        const out = {};
        const v = this.view;
        for (const key of ['requests', 'p50', 'p99', 'share', 'errors', 'score']) {
            if (!v[key]) continue;
            out[key] = {};
            for (const id of this.ids) {
                const a = v[key][id] || [];
                out[key][id] = a.filter(x => x != null && x > 0).length;
            }
        }
        // seconds the flow chart has a sample for (zeros count)
        const f = v.flow || {};
        out.flow = Object.fromEntries(['retries', 'hedges', 'queue'].map(k =>
            [k, (f[k] || []).filter(x => x != null).length]));
        return out;
    }
    destroy() {
        for (const c of Object.values(this.charts)) c.destroy();
        this.charts = {};
    }
}
