#!/usr/bin/env node
// `npm run demo`: the library at a glance, on the two backends side by side.
//
// 1. Every optimizer minimises the same smooth problem (the one PyTorch's reference
//    trajectories in test/golden were recorded on) on the native and the reference
//    backend; where a PyTorch trajectory exists, the distance to it is printed.
// 2. A wide model (2 million float32 parameters in 200 tensors) is trained with Adam for a few
//    hundred steps on a synthetic least-squares task, native vs reference, timing the
//    optimizer alone.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const optim = require('../dist/index.js');

const { param, setBackend, backendInfo, nativeAvailable } = optim;

const A = [1, 3, 10, 0.5, 100, 2, 7];
const C = [1, -2, 0.5, 3, -1, 0, 2];
const W0 = [0.5, 0.5, -0.5, 1, 0, 2, -1];
const loss = (w) => w.reduce((s, wi, i) => s + 0.5 * A[i] * (wi - C[i]) ** 2 + 0.1 * Math.sin(wi), 0);
const fillGrad = (w, g) => {
  for (let i = 0; i < w.length; i++) g[i] = A[i] * (w[i] - C[i]) + 0.1 * Math.cos(w[i]);
};

const RUNS = [
  ['SGD', { lr: 0.01 }, 'sgd'],
  ['SGD', { lr: 0.01, momentum: 0.9 }, 'sgd_momentum'],
  ['SGD', { lr: 0.01, momentum: 0.9, nesterov: true }, 'sgd_nesterov'],
  ['Adagrad', { lr: 0.1 }, 'adagrad'],
  ['RMSprop', { lr: 0.01 }, 'rmsprop'],
  ['Adam', { lr: 0.01 }, 'adam'],
  ['AdamW', { lr: 0.01, weightDecay: 0.1 }, 'adamw'],
  ['NAdam', { lr: 0.01 }, 'nadam'],
  ['RAdam', { lr: 0.01 }, 'radam'],
];

function golden(id) {
  const file = path.resolve(__dirname, '../test/golden/torch-2.13', `${id}.json`);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
}

function runSmall(name, options) {
  const p = param(new Float64Array(W0), 'w');
  const opt = new optim[name]([p], options);
  for (let t = 0; t < 100; t++) {
    fillGrad(p.data, p.grad);
    opt.step();
  }
  return p.data;
}

const backends = nativeAvailable() ? ['native', 'reference'] : ['reference'];
if (!nativeAvailable()) {
  console.log('note: the native addon is not built here; showing the reference backend only.');
}
setBackend(backends[0]);
const info = backendInfo();
console.log(`optim ${info.version}: native kernels ${nativeAvailable() ? `${info.simd}${info.fma ? '+fma' : ''}` : 'unavailable'}\n`);

console.log('1. 100 steps on f(w) = ½Σaᵢ(wᵢ−cᵢ)² + 0.1Σsin wᵢ  (f(w0) = ' + loss(W0).toFixed(4) + ')\n');
const rows = [['optimizer', 'options', ...backends.map((b) => `loss (${b})`), ...backends.map((b) => `max |Δ| vs PyTorch 2.13 (${b})`)]];
for (const [name, options, id] of RUNS) {
  const finals = backends.map((b) => {
    setBackend(b);
    return runSmall(name, options);
  });
  const g = id ? golden(id) : null;
  const deltas = finals.map((w) => (g ? Math.max(...w.map((x, i) => Math.abs(x - g.checkpoints['100'][i]))).toExponential(1) : 'n/a'));
  rows.push([name, JSON.stringify(options), ...finals.map((w) => loss(w).toFixed(6)), ...deltas]);
}
printTable(rows);

console.log('\n2. Adam on 2,000,000 float32 parameters in 200 tensors (least squares toward a random target)\n');
const N_TENSORS = 200;
const LEN = 10_000;
const STEPS = 200;
const uniform = optim.uniformStream(12345);
const rand = () => 2 * uniform() - 1;
const targets = Array.from({ length: N_TENSORS }, () => Float32Array.from({ length: LEN }, rand));
const timing = [['backend', 'optimizer ms/step', 'final loss']];
const perStep = {};
for (const b of backends) {
  setBackend(b);
  const params = targets.map((_, i) => param(new Float32Array(LEN), `layer${i}`));
  const opt = new optim.Adam(params, { lr: 0.01 });
  let spent = 0n;
  for (let t = 0; t < STEPS; t++) {
    for (let i = 0; i < N_TENSORS; i++) {
      const { data, grad } = params[i];
      const y = targets[i];
      for (let j = 0; j < LEN; j++) grad[j] = data[j] - y[j];
    }
    const t0 = process.hrtime.bigint();
    opt.step();
    spent += process.hrtime.bigint() - t0;
  }
  let l = 0;
  params.forEach((p, i) => p.data.forEach((x, j) => (l += 0.5 * (x - targets[i][j]) ** 2)));
  perStep[b] = Number(spent) / 1e6 / STEPS;
  timing.push([b, perStep[b].toFixed(3), (l / (N_TENSORS * LEN)).toExponential(3)]);
}
printTable(timing);
if (perStep.native && perStep.reference) {
  console.log(`\nnative is ${(perStep.reference / perStep.native).toFixed(1)}× faster per optimizer step here; same losses.`);
}

function printTable(table) {
  const widths = table[0].map((_, c) => Math.max(...table.map((r) => String(r[c]).length)));
  const line = (r) => '| ' + r.map((x, c) => String(x).padEnd(widths[c])).join(' | ') + ' |';
  console.log(line(table[0]));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of table.slice(1)) console.log(line(r));
}
