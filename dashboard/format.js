// format: number and time formatting shared by the table, the totals and
// the chart axes.

const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

// An integer count with thousands separators: 12,345.
export function fmtInt(v) {
    return v == null || !isFinite(v) ? '—' : intFmt.format(Math.round(v));
}

// A rate: one decimal below 100, none above.
export function fmtRate(v) {
    if (v == null || !isFinite(v)) return '—';
    if (Math.abs(v) >= 100) return intFmt.format(Math.round(v));
    return (Math.round(v * 10) / 10).toString();
}

// Milliseconds with a precision that suits the size.
export function fmtMs(v) {
    if (v == null || !isFinite(v)) return '—';
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a < 1) return v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
    if (a < 10) return v.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
    if (a < 100) return v.toFixed(1).replace(/\.0$/, '');
    return intFmt.format(Math.round(v));
}

// A plain number to three significant digits.
export function fmtNum(v) {
    if (v == null || !isFinite(v)) return '—';
    const a = Math.abs(v);
    if (a === 0) return '0';
    if (a >= 1000) return intFmt.format(Math.round(v));
    return Number(v.toPrecision(3)).toString();
}

// Bytes as B, KiB, MiB, GiB.
export function fmtBytes(v) {
    if (v == null || !isFinite(v)) return '—';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + ' ' + u[i];
}

// A duration in seconds as "1 h 02 m", "3 m 05 s" or "12 s".
export function fmtDuration(s) {
    if (s == null || !isFinite(s)) return '—';
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const p = n => String(n).padStart(2, '0');
    if (h) return `${h} h ${p(m)} m`;
    if (m) return `${m} m ${p(r)} s`;
    return `${r} s`;
}

// Local wall-clock time of unix seconds, HH:MM:SS.
export function fmtClock(unix) {
    const d = new Date(unix * 1000);
    return d.toLocaleTimeString('en-GB', { hour12: false });
}

// Local date and time of unix seconds, YYYY-MM-DD HH:MM.
export function fmtDateTime(unix) {
    const d = new Date(unix * 1000);
    const p = n => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
           `${p(d.getHours())}:${p(d.getMinutes())}`;
}

// Text made safe for HTML: &, <, > and " escaped.
export function esc(x) {
    return String(x == null ? '' : x).replace(/[&<>"]/g, c =>
        ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}
