// pools: the pool selector.  Which pool the page shows (kept in the URL as
// ?pool=NAME, '' for all pools), which backends belong to it, each view's
// pools as one shape of row, and the small pools table.  A backend is known
// by its `key` (its id, or pool/id when the configuration has named pools;
// an older lbproxy sends no key: the id then).

import { esc, fmtInt, fmtMs, fmtRate } from './format.js';

export const ALL = '';

export const bkey = b => String(b.key != null && b.key !== '' ? b.key : b.id);
export const bpool = b => (b.pool ? String(b.pool) : 'default');

// Worth a selector: several pools, or one that is not the default.
export function hasPools(pools) {
    return Array.isArray(pools) &&
        (pools.length > 1 || (pools.length === 1 && pools[0].name !== 'default'));
}

let chosen = new URLSearchParams(location.search).get('pool') || ALL;

// Keeps the choice, in the URL too (the hash, #log=…, stays).
export function choosePool(name) {
    chosen = name || ALL;
    const u = new URL(location.href);
    if (chosen) u.searchParams.set('pool', chosen);
    else u.searchParams.delete('pool');
    history.replaceState(null, '', u.pathname + u.search + u.hash);
}

// The pool in effect among `pools`: the chosen one while it is there, else
// all (the choice stays, for a pool that a reload brings back).
export function currentPool(pools) {
    return hasPools(pools) && pools.some(p => p.name === chosen) ? chosen : ALL;
}

// The live snapshot's pools as rows of the one shape both views use.
export function livePools(s) {
    return (Array.isArray(s.pools) ? s.pools : []).map(p => {
        const lat = p.latency_ms || {};
        return { name: String(p.name), mode: p.mode,
                 model: p.persistent ? 'persistent' : 'non_persistent',
                 backends: p.backends, requests: p.requests, errors: p.errors,
                 rps: p.rps, p50: lat.p50, p99: lat.p99 };
    });
}

// The backends of pool `cur` (all for ALL), in their order.
export function inPool(backends, cur) {
    return cur === ALL ? backends : backends.filter(b => bpool(b) === cur);
}

// How a backend is labelled: pool/id over all pools, the id inside one.
export const blabel = (b, cur) => (cur === ALL ? bkey(b) : String(b.id));

// The header's mode and connection model over all pools: the distinct ones,
// joined ("round-robin / least-conn").
export function allPoolsHeader(pools, mode, model) {
    if (!hasPools(pools)) return { mode, model };
    const uniq = k => [...new Set(pools.map(p => p[k]).filter(Boolean))].join(' / ');
    return { mode: uniq('mode') || mode, model: uniq('model') || model };
}

// Each key's share (%) of the requests of `keys` per point, as the share
// chart wants it, for a view narrowed to one pool.
export function shareWithin(keys, requests, n) {
    const out = Object.fromEntries(keys.map(k => [k, new Array(n)]));
    for (let i = 0; i < n; i++) {
        let tot = 0, any = false;
        for (const k of keys) {
            const v = requests[k] && requests[k][i];
            if (v != null) { tot += v; any = true; }
        }
        for (const k of keys) {
            const v = requests[k] && requests[k][i];
            out[k][i] = any && tot > 0 ? 100 * (v || 0) / tot : null;
        }
    }
    return out;
}

// The selector and the pools table; hidden without pools worth choosing.
export function renderPools(pools, cur, rpsLabel) {
    const show = hasPools(pools);
    document.getElementById('pool-pick').classList.toggle('hidden', !show);
    document.getElementById('pools-card').classList.toggle('hidden', !show);
    const sel = document.getElementById('pool-select');
    if (!show) { sel.innerHTML = ''; return; }
    const opts = [[ALL, 'all pools'], ...pools.map(p => [p.name, p.name])];
    const sig = opts.map(o => o[0]).join('\u0000');
    if (sel.dataset.sig !== sig) {
        sel.innerHTML = opts.map(([v, label]) =>
            `<option value="${esc(v)}">${esc(label)}</option>`).join('');
        sel.dataset.sig = sig;
    }
    sel.value = cur;
    const table = document.getElementById('pools');
    table.tHead.innerHTML = '<tr><th class="l">Pool</th><th class="l">Mode</th>' +
        '<th class="l">Connections</th><th>Backends</th>' +
        `<th>${esc(rpsLabel)}</th><th>Requests</th><th>Errors</th><th>p99</th></tr>`;
    table.tBodies[0].innerHTML = pools.map(p =>
        `<tr data-pool="${esc(p.name)}" class="${p.name === cur ? 'sel' : ''}">` +
        `<td class="l id" data-col="name">${esc(p.name)}</td>` +
        `<td class="l" data-col="mode">${esc(p.mode || '—')}</td>` +
        `<td class="l" data-col="model">${esc((p.model || '—').replace('_', '-'))}</td>` +
        `<td data-col="backends">${fmtInt(p.backends)}</td>` +
        `<td data-col="rps">${fmtRate(p.rps)}</td>` +
        `<td data-col="requests">${fmtInt(p.requests)}</td>` +
        `<td data-col="errors" class="${p.errors ? 'err-nz' : ''}">${fmtInt(p.errors)}</td>` +
        `<td data-col="p99">${p.p99 != null ? fmtMs(p.p99) + ' ms' : '—'}</td></tr>`)
        .join('');
}
