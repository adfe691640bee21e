'use strict';
// Number and table formatting shared by the report's sections.

const fmt = (x, digits = 3) => (x === undefined || !Number.isFinite(x) ? '–' : x >= 10 ** digits ? x.toFixed(0) : x.toPrecision(digits));
const pct = (x) => (x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(0)}%`);
const ratio = (x) => (x === undefined || !Number.isFinite(x) ? '–' : `${fmt(x)}×`);
const sizeName = (n) => (n >= 1000 && Math.log10(n) % 1 === 0 ? `1e${Math.log10(n)}` : String(n));

function table(head, rows) {
  return [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

module.exports = { fmt, pct, ratio, sizeName, table };
