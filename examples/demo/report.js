'use strict';
// The summary of a demo run as Markdown and JSON, and the loss-curve chart, in one folder.
const fs = require('node:fs');
const path = require('node:path');
const { chart, COLORS } = require('./chart.js');

const fmt = (v, digits = 4) => (v === null || v === undefined ? '–' : typeof v === 'number' ? v.toFixed(digits) : String(v));
const int = (v) => Math.round(v).toLocaleString('en-US');

function table(header, rows) {
  const line = (r) => `| ${r.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function softmaxRows(runs) {
  return runs.map((r) => [
    r.optimizer,
    r.backend,
    `${r.batchesRun}/${r.batchesPlanned}`,
    r.partial ? `${fmt(r.seconds, 2)} measured, ≈ ${fmt(r.fullRunSeconds, 1)} full run (extrapolated)` : fmt(r.seconds, 2),
    int(r.samplesPerSecond),
    fmt(r.epochLog.length ? r.epochLog[r.epochLog.length - 1].loss : null),
    fmt(r.testAccuracy),
  ]);
}

function markdown(s) {
  const parts = [
    `# optim demo`,
    '',
    `${s.date} · optim ${s.version} · node ${s.node} · native: ${s.nativeInfo} · total ${fmt(s.totalSeconds, 1)} s`,
    '',
    `Data: ${s.data.description}`,
  ];
  if (s.data.notice) parts.push('', `> **${s.data.notice}**`);
  parts.push(
    '',
    '## Targets',
    '',
    table(['', 'measure', 'value', 'target'], s.targets.map((t) => [t.met ? 'met' : '**NOT met**', t.name, t.value, t.target])),
  );
  parts.push(
    '',
    `## 1. Softmax regression (${s.softmax.setup})`,
    '',
    table(['optimizer', 'backend', 'batches', 'train time (s)', 'samples/s', 'last-epoch loss', 'test accuracy'], softmaxRows(s.softmax.runs)),
    '',
    ...s.softmax.comparisons.map((c) => `- ${c}`),
  );
  if (s.newton) {
    parts.push(
      '',
      `## 2. Logistic regression, T-shirt/top vs Shirt, Newton–Cholesky (${s.newton.setup})`,
      '',
      table(['iteration', 'J', '(J − J*)/J*', 'max \\|∇J\\|', 'time (s)'], s.newton.history.map((h) => [
        h.iteration, h.J.toPrecision(16), h.gap === null ? '–' : h.gap.toExponential(2), h.gradNorm.toExponential(2), fmt(h.seconds, 3),
      ])),
      '',
      ...s.newton.verdicts.map((v) => `- ${v}`),
    );
  } else if (s.newtonSkipped) {
    parts.push('', '## 2. Logistic regression, Newton–Cholesky', '', s.newtonSkipped);
  }
  parts.push('', '![loss curves](loss-curves.svg)', '');
  return parts.join('\n');
}

function lossChart(s) {
  const panels = [];
  const byOptimizer = new Map();
  for (const r of s.softmax.runs) {
    if (!byOptimizer.has(r.optimizer)) byOptimizer.set(r.optimizer, []);
    byOptimizer.get(r.optimizer).push(r);
  }
  for (const [name, runs] of byOptimizer) {
    panels.push({
      title: `${name}: softmax regression`,
      xLabel: 'epoch',
      yLabel: 'training loss (cross-entropy)',
      series: runs.map((r) => ({
        name: r.partial ? `${r.backend} (${r.batchesRun} batches)` : r.backend,
        color: COLORS[r.backend] ?? COLORS.other,
        dashed: r.backend === 'reference',
        points: r.curve,
      })),
    });
  }
  if (s.newton) {
    const real = s.newton.history.every((h) => h.gap !== null);
    panels.push({
      title: 'Newton: logistic regression 0 vs 6',
      xLabel: 'Newton iteration',
      yLabel: real ? '(J − J*)/J*  (log scale)' : 'max |∇J|  (log scale)',
      logY: true,
      series: [{
        name: 'native',
        color: COLORS.native,
        markers: true,
        points: s.newton.history.map((h) => [h.iteration, real ? Math.abs(h.gap) : h.gradNorm]),
      }],
    });
  }
  return chart(panels, 'Solid: native backend; dashed: reference (pure TypeScript). Same seed, same batches: the curves should coincide.');
}

function jsonable(s) {
  return JSON.stringify(s, (key, v) => (key === 'batchLosses' ? undefined : v), 2);
}

/** Writes loss-curves.svg, summary.md and summary.json into `dir`; returns their paths. */
function writeResults(dir, summary) {
  fs.mkdirSync(dir, { recursive: true });
  const files = {
    chart: path.join(dir, 'loss-curves.svg'),
    markdown: path.join(dir, 'summary.md'),
    json: path.join(dir, 'summary.json'),
  };
  fs.writeFileSync(files.chart, lossChart(summary));
  fs.writeFileSync(files.markdown, markdown(summary));
  fs.writeFileSync(files.json, `${jsonable(summary)}\n`);
  return files;
}

module.exports = { writeResults };
