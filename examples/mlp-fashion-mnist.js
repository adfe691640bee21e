#!/usr/bin/env node
// A one-hidden-layer MLP on Fashion-MNIST, written as a user of the library would write it:
// the forward and backward passes by hand with `matmul`, the parameters in one arena, AdamW,
// and a cosine learning-rate schedule over the epochs.
//
//   784 ─ W1,b1 ─ ReLU (128) ─ W2,b2 ─ softmax (10),   loss = mean cross-entropy
//
// Usage: node examples/mlp-fashion-mnist.js [--epochs N] [--hidden N] [--data DIR]
'use strict';
const { parseArgs } = require('node:util');
const {
  matmul, paramArena, AdamW, CosineAnnealingLR, minibatches, loadFashionMnist, scalePixels, backendInfo,
} = require('../dist/index.js');

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '5' },
    hidden: { type: 'string', default: '128' },
    'batch-size': { type: 'string', default: '128' },
    data: { type: 'string' },
  },
});
const EPOCHS = Number(args.epochs);
const HIDDEN = Number(args.hidden);
const BATCH = Number(args['batch-size']);

const data = loadFashionMnist({ dir: args.data });
if (data.notice) console.log(`NOTE: ${data.notice}\n`);
const D = data.features;
const K = data.classes.length;
const Xtrain = scalePixels(data.train.images);
const Xtest = scalePixels(data.test.images);

// Glorot-uniform weights from a small seeded generator, zero biases.
const { w1, b1, w2, b2 } = paramArena({ w1: D * HIDDEN, b1: HIDDEN, w2: HIDDEN * K, b2: K });
let seed = 42;
const uniform = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
for (const [p, fanIn, fanOut] of [[w1, D, HIDDEN], [w2, HIDDEN, K]]) {
  const a = Math.sqrt(6 / (fanIn + fanOut));
  for (let i = 0; i < p.data.length; i++) p.data[i] = a * (2 * uniform() - 1);
}

const opt = new AdamW([w1, b1, w2, b2], { lr: 2e-3, weightDecay: 1e-4 });
const sched = new CosineAnnealingLR(opt, { tMax: EPOCHS, etaMin: 1e-5 });

// Work arrays for a batch of up to BATCH rows, reused every step.
const xb = new Float32Array(BATCH * D);
const h = new Float32Array(BATCH * HIDDEN);
const scores = new Float32Array(BATCH * K);
const dScores = new Float32Array(BATCH * K);
const dh = new Float32Array(BATCH * HIDDEN);

/** h = relu(x·W1 + b1), scores = h·W2 + b2, for n rows of x. */
function forward(x, n, hOut, sOut) {
  matmul(x, w1.data, { m: n, k: D, n: HIDDEN, out: hOut });
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < HIDDEN; j++) {
      const v = hOut[i * HIDDEN + j] + b1.data[j];
      hOut[i * HIDDEN + j] = v > 0 ? v : 0;
    }
  }
  matmul(hOut, w2.data, { m: n, k: HIDDEN, n: K, out: sOut });
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) sOut[i * K + k] += b2.data[k];
}

/** One step on the rows `idx`: fills every grad, returns the mean cross-entropy. */
function lossAndGrads(idx) {
  const n = idx.length;
  const x = xb.subarray(0, n * D);
  for (let i = 0; i < n; i++) x.set(Xtrain.subarray(idx[i] * D, (idx[i] + 1) * D), i * D);
  const hb = h.subarray(0, n * HIDDEN);
  const sb = scores.subarray(0, n * K);
  forward(x, n, hb, sb);
  // Softmax cross-entropy; dScores = (softmax − onehot) / n.
  let loss = 0;
  const ds = dScores.subarray(0, n * K);
  for (let i = 0; i < n; i++) {
    const o = i * K;
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, sb[o + k]);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += Math.exp(sb[o + k] - max);
    const label = data.train.labels[idx[i]];
    loss += max + Math.log(sum) - sb[o + label];
    for (let k = 0; k < K; k++) ds[o + k] = (Math.exp(sb[o + k] - max) / sum - (k === label ? 1 : 0)) / n;
  }
  // Backward: W2, b2, then through the ReLU to W1, b1.
  matmul(hb, ds, { m: HIDDEN, k: n, n: K, transA: true, out: w2.grad });
  b2.grad.fill(0);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) b2.grad[k] += ds[i * K + k];
  const dhb = dh.subarray(0, n * HIDDEN);
  matmul(ds, w2.data, { m: n, k: K, n: HIDDEN, transB: true, out: dhb });
  for (let i = 0; i < n * HIDDEN; i++) if (hb[i] === 0) dhb[i] = 0;
  matmul(x, dhb, { m: D, k: n, n: HIDDEN, transA: true, out: w1.grad });
  b1.grad.fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < HIDDEN; j++) b1.grad[j] += dhb[i * HIDDEN + j];
  return loss / n;
}

function testAccuracy() {
  const n = data.test.count;
  const hAll = new Float32Array(n * HIDDEN);
  const sAll = new Float32Array(n * K);
  forward(Xtest, n, hAll, sAll);
  let hits = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (sAll[i * K + k] > sAll[i * K + best]) best = k;
    if (best === data.test.labels[i]) hits++;
  }
  return hits / n;
}

const info = backendInfo();
console.log(`MLP ${D}-${HIDDEN}-${K} on ${data.source === 'files' ? 'Fashion-MNIST' : 'synthetic data'}, ${EPOCHS} epochs, ` +
  `batches of ${BATCH}, AdamW + cosine schedule, ${info.backend} backend (${info.blas})`);
const started = Date.now();
for (let epoch = 0; epoch < EPOCHS; epoch++) {
  let total = 0;
  let batches = 0;
  for (const idx of minibatches(data.train.count, { batchSize: BATCH, seed: epoch })) {
    total += lossAndGrads(idx);
    batches++;
    opt.step();
  }
  const lr = opt.paramGroups[0].lr;
  sched.step();
  console.log(`epoch ${epoch + 1}/${EPOCHS}  lr ${lr.toExponential(2)}  train loss ${(total / batches).toFixed(4)}  ` +
    `test accuracy ${testAccuracy().toFixed(4)}  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
