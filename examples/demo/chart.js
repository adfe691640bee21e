'use strict';
// Line charts as hand-written SVG: panels side by side, each with its own axes and legend.
// Used by the demo (examples/demo/report.js) and by examples/trajectories.js, which adds its own
// contour panels beside these through `chart`'s custom panels.

const PANEL_W = 380;
const PANEL_H = 280;
const M = { left: 58, right: 14, top: 34, bottom: 44 };
/** Room for a legend to the right of the plot (`legend: 'right'`). */
const LEGEND_W = 210;
const COLORS = { native: '#1f77b4', reference: '#d62728', other: '#2ca02c' };

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About `count` round tick values covering [lo, hi]. */
function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function label(v, log) {
  if (log) return `1e${v}`;
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(0) : String(Number(v.toPrecision(4)));
}

/**
 * One panel at horizontal offset `x0`. `series`: [{ name, color, dashed, markers, legend, points: [[x, y]] }]
 * (`legend: false` leaves a series out of the legend);
 * with `logY`, y values are plotted as log10 (non-positive values are left out). `width` and
 * `height` default to PANEL_W × PANEL_H; `legend`: 'inside' (default: the plot's top right) or
 * 'right' (beside the plot).
 */
function panel(x0, { title, xLabel, yLabel, series, logY = false, width = PANEL_W, height = PANEL_H, legend = 'inside' }) {
  const pts = series.map((s) => s.points
    .filter(([, y]) => Number.isFinite(y) && (!logY || y > 0))
    .map(([x, y]) => [x, logY ? Math.log10(y) : y]));
  const all = pts.flat();
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [xMin, xMax] = [Math.min(...xs, 0), Math.max(...xs, 1)];
  let [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  if (!Number.isFinite(yMin)) [yMin, yMax] = [0, 1];
  if (yMax - yMin < 1e-12) [yMin, yMax] = [yMin - 1, yMax + 1];
  const pad = 0.05 * (yMax - yMin);
  yMin -= pad;
  yMax += pad;
  if (logY) [yMin, yMax] = [Math.floor(yMin), Math.ceil(yMax)];
  const w = width - M.left - M.right - (legend === 'right' ? LEGEND_W : 0);
  const h = height - M.top - M.bottom;
  const sx = (x) => x0 + M.left + ((x - xMin) / (xMax - xMin || 1)) * w;
  const sy = (y) => M.top + h - ((y - yMin) / (yMax - yMin)) * h;
  const out = [];
  const titleX = x0 + (legend === 'right' ? M.left + w / 2 : width / 2);
  out.push(`<text x="${titleX}" y="20" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  out.push(`<rect x="${x0 + M.left}" y="${M.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  const yTicks = logY ? ticks(yMin, yMax, Math.min(8, yMax - yMin)).filter(Number.isInteger) : ticks(yMin, yMax);
  for (const t of yTicks) {
    out.push(`<line x1="${x0 + M.left}" x2="${x0 + M.left + w}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${x0 + M.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${label(t, logY)}</text>`);
  }
  for (const t of ticks(xMin, xMax)) {
    out.push(`<text x="${sx(t).toFixed(1)}" y="${M.top + h + 16}" text-anchor="middle" font-size="11">${label(t, false)}</text>`);
  }
  out.push(`<text x="${x0 + M.left + w / 2}" y="${height - 8}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(${x0 + 14},${M.top + h / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);
  let legendRow = 0;
  series.forEach((s, i) => {
    if (pts[i].length === 0) return;
    const d = pts[i].map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="${s.dashed ? 2 : 1.6}"${dash}/>`);
    if (s.markers) {
      for (const [x, y] of pts[i]) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
    }
    if (s.legend === false) return;
    const ly = M.top + 14 + 16 * legendRow++;
    const lx = legend === 'right' ? x0 + M.left + w + 14 : x0 + M.left + w - 175;
    out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/**
 * An SVG document with the panels in one row and a caption under them. A panel is a line chart
 * (`panel`'s options) or a custom one, `{ width, height, render(x0) }` returning its SVG.
 */
function chart(panels, caption) {
  const widths = panels.map((p) => p.width ?? PANEL_W);
  const rowHeight = Math.max(...panels.map((p) => p.height ?? PANEL_H));
  const width = widths.reduce((a, b) => a + b, 0);
  const height = rowHeight + (caption ? 24 : 0);
  const x0s = widths.map((_, i) => widths.slice(0, i).reduce((a, b) => a + b, 0));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...panels.map((p, i) => (typeof p.render === 'function' ? p.render(x0s[i]) : panel(x0s[i], p))),
    caption ? `<text x="10" y="${rowHeight + 16}" font-size="11" fill="#555">${esc(caption)}</text>` : '',
    '</svg>',
    '',
  ].join('\n');
}

module.exports = { chart, COLORS, esc, ticks, label, M };
