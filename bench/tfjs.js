#!/usr/bin/env node
'use strict';
// `npm run bench:tfjs`: tfjs-layers' model.fit with tfjs's own Adam (tf.train.adam) against this
// library's Adam through optim/tfjs (tfjsOptimizer), on tfjs's cpu backend and on its wasm
// backend. Prints a Markdown table: the median epoch time of model.fit, and the median time of
// one optimizer step alone (applyGradients on fixed gradients), over repeats taken in
// alternation (tfjs, ours, tfjs, ours, ...) so that load from other processes hits both alike.
// Both optimizers run the same rule with the same ε (see test/tfjs.test.ts).
//
// Options: --repeats N (default 7), --backends cpu,wasm. Needs dist/ (npm run build:ts).
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
if (!fs.existsSync(path.join(root, 'dist', 'tfjs', 'index.js'))) {
  console.error('bench:tfjs: dist/tfjs/ is missing; run `npm run build:ts` first');
  process.exit(1);
}

const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
require('@tensorflow/tfjs-backend-wasm');
const tfl = require('@tensorflow/tfjs-layers');
const { Adam, backendInfo, uniformStream } = require('../dist/index.js');
const { tfjsOptimizer } = require('../dist/tfjs/index.js');
const { median } = require('./timing.js');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const REPEATS = Number(option('repeats', 7));
const BACKENDS = option('backends', 'cpu,wasm').split(',');
const STEP_REPEATS = 31;

// An MLP on Fashion-MNIST-sized synthetic data: 784 → 128 (relu) → 10 (softmax), 2048 rows,
// batches of 128 (16 steps per epoch); 101 770 parameters.
const ROWS = 2048;
const IN = 784;
const HIDDEN = 128;
const OUT = 10;
const BATCH = 128;
const LR = 1e-3;
const EPS = 1e-7;

function data() {
  const r = uniformStream(1);
  const x = new Float32Array(ROWS * IN);
  for (let i = 0; i < x.length; i++) x[i] = r();
  const y = new Float32Array(ROWS * OUT);
  for (let i = 0; i < ROWS; i++) y[i * OUT + Math.floor(r() * OUT)] = 1;
  return { x: tf.tensor2d(x, [ROWS, IN]), y: tf.tensor2d(y, [ROWS, OUT]) };
}

function model(optimizer) {
  const m = tfl.sequential();
  m.add(tfl.layers.dense({ inputShape: [IN], units: HIDDEN, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }));
  m.add(tfl.layers.dense({ units: OUT, activation: 'softmax', kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) }));
  m.compile({ optimizer, loss: 'categoricalCrossentropy' });
  return m;
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

async function epochTimes(runs, x, y) {
  const times = runs.map(() => []);
  for (const run of runs) await run.model.fit(x, y, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 }); // warm-up
  for (let r = 0; r < REPEATS; r++) {
    for (let i = 0; i < runs.length; i++) {
      const t0 = process.hrtime.bigint();
      await runs[i].model.fit(x, y, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
      times[i].push(ms(t0));
    }
  }
  return times.map(median);
}

/** One optimizer step alone: applyGradients on a fixed set of gradients of the model's loss. */
function stepTimes(runs, x, y) {
  const times = runs.map(() => []);
  const grads = runs.map((run) => {
    const vars = run.model.trainableWeights.map((w) => tf.engine().registeredVariables[w.name]);
    const xb = tf.slice(x, [0, 0], [BATCH, IN]);
    const yb = tf.slice(y, [0, 0], [BATCH, OUT]);
    const { value, grads: g } = tf.variableGrads(() => tf.mean(tfl.metrics.categoricalCrossentropy(yb, run.model.apply(xb))), vars);
    tf.dispose([value, xb, yb]);
    return g;
  });
  for (let i = 0; i < runs.length; i++) for (let k = 0; k < 3; k++) runs[i].optimizer.applyGradients(grads[i]);
  for (let r = 0; r < STEP_REPEATS; r++) {
    for (let i = 0; i < runs.length; i++) {
      const t0 = process.hrtime.bigint();
      runs[i].optimizer.applyGradients(grads[i]);
      times[i].push(ms(t0));
    }
  }
  grads.forEach((g) => tf.dispose(g));
  return times.map(median);
}

async function main() {
  const info = backendInfo();
  const rows = [];
  for (const backend of BACKENDS) {
    if (!(await tf.setBackend(backend))) throw new Error(`bench:tfjs: the ${backend} backend did not initialise`);
    await tf.ready();
    const { x, y } = data();
    const runs = [
      { name: `tf.train.adam (tfjs ${tf.version_core})`, optimizer: tf.train.adam(LR, 0.9, 0.999, EPS) },
      { name: `optim Adam via tfjsOptimizer (${info.backend}${info.simd ? `, ${info.simd}` : ''})`, optimizer: tfjsOptimizer(Adam, { lr: LR, betas: [0.9, 0.999], eps: EPS }) },
    ];
    for (const run of runs) run.model = model(run.optimizer);
    process.stderr.write(`bench:tfjs: ${backend}: model.fit epochs...\n`);
    const epochs = await epochTimes(runs, x, y);
    process.stderr.write(`bench:tfjs: ${backend}: optimizer steps...\n`);
    const steps = stepTimes(runs, x, y);
    runs.forEach((run, i) => rows.push({ backend, name: run.name, epoch: epochs[i], step: steps[i], vsEpoch: epochs[i] / epochs[0], vsStep: steps[i] / steps[0] }));
    for (const run of runs) run.model.dispose();
    tf.dispose([x, y]);
  }
  const f = (v, d = 1) => v.toFixed(d);
  const lines = [
    `### model.fit with tfjs's Adam and with ours (optim/tfjs)`,
    '',
    `MLP ${IN}→${HIDDEN}→${OUT} (101 770 parameters), ${ROWS} rows, batches of ${BATCH} (${ROWS / BATCH} steps per epoch); medians of ${REPEATS} epochs and of ${STEP_REPEATS} steps, taken in alternation. Node ${process.version}, ${require('node:os').cpus()[0]?.model ?? 'unknown CPU'}.`,
    '',
    '| tfjs backend | optimizer | epoch (ms) | vs tfjs | one step (ms) | vs tfjs |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.backend} | ${r.name} | ${f(r.epoch)} | ${f(r.vsEpoch, 2)}× | ${f(r.step, 2)} | ${f(r.vsStep, 2)}× |`),
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
