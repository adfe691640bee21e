'use strict';
// Part 1: softmax regression on Fashion-MNIST with minibatches, one run per (optimizer, backend).
const optim = require('../../dist/index.js');

/** The optimizers compared; Adam is the one the accuracy target is about. */
const OPTIMIZERS = [
  { label: 'Adam', name: 'Adam', options: { lr: 1e-3 }, schedule: null },
  { label: 'SGD-Nesterov', name: 'SGD', options: { lr: 0.1, momentum: 0.9, nesterov: true }, schedule: 'cosine' },
];

function describeOptimizer(spec) {
  const opts = Object.entries(spec.options).map(([k, v]) => `${k} ${v}`).join(', ');
  return `${spec.name} (${opts}${spec.schedule === 'cosine' ? ', cosine annealing over the epochs' : ''})`;
}

/**
 * Trains from zero weights. Only the batches (gather, loss and gradient, optimizer step) are
 * timed; the test accuracy after each epoch is not. With `budgetSeconds`, stops once the timed
 * work passes it and extrapolates the full run's time from the batches done.
 */
function trainSoftmax({ backend, spec, train, test, epochs, batchSize, progress, budgetSeconds = Infinity }) {
  optim.setBackend(backend);
  const w = optim.param(new Float32Array(train.size), `softmax-${spec.label}-${backend}`);
  const opt = new optim[spec.name]([w], spec.options);
  const sched = spec.schedule === 'cosine' ? new optim.CosineAnnealingLR(opt, { tMax: epochs }) : null;
  const batches = optim.minibatches(train.rows, { batchSize, shuffle: true, seed: 0, epochs });
  const perEpoch = batches.batchesPerEpoch;
  const planned = perEpoch * epochs;
  const window = Math.max(1, Math.ceil(perEpoch / 10));
  const batchLosses = new Float64Array(planned);
  const curve = [];
  const epochLog = [];
  let done = 0;
  let samples = 0;
  let timedNs = 0n;
  let windowSum = 0;
  let windowCount = 0;
  let epochSum = 0;
  progress.start(`${spec.label.padEnd(12)} ${backend.padEnd(9)}`, planned, epochs);
  for (const idx of batches) {
    const t0 = process.hrtime.bigint();
    const { loss } = train.batch(idx).lossAndGrad(w.data, w.grad);
    opt.step();
    timedNs += process.hrtime.bigint() - t0;
    batchLosses[done++] = loss;
    samples += idx.length;
    windowSum += loss;
    epochSum += loss;
    const seconds = Number(timedNs) / 1e9;
    const epoch = Math.ceil(done / perEpoch);
    windowCount++;
    if (windowCount === window || done % perEpoch === 0) {
      curve.push([done / perEpoch, windowSum / windowCount]);
      windowSum = 0;
      windowCount = 0;
    }
    progress.update(done, epoch, epochSum / (done - (epoch - 1) * perEpoch), samples / seconds);
    if (done % perEpoch === 0) {
      if (sched) sched.step();
      const accuracy = test.accuracy(w.data);
      epochLog.push({ epoch, loss: epochSum / perEpoch, testAccuracy: accuracy });
      progress.epoch(`epoch ${epoch}/${epochs}  loss ${(epochSum / perEpoch).toFixed(4)}  test accuracy ${accuracy.toFixed(4)}  ${Math.round(samples / seconds).toLocaleString('en-US')} samples/s`);
      epochSum = 0;
    }
    if (seconds > budgetSeconds && done < planned) break;
  }
  const seconds = Number(timedNs) / 1e9;
  const partial = done < planned;
  const result = {
    optimizer: spec.label,
    description: describeOptimizer(spec),
    backend,
    epochs,
    batchSize,
    batchesPlanned: planned,
    batchesRun: done,
    partial,
    seconds,
    fullRunSeconds: partial ? (seconds * planned) / done : seconds,
    samplesPerSecond: samples / seconds,
    batchLosses: batchLosses.subarray(0, done),
    curve,
    epochLog,
    testAccuracy: partial ? null : epochLog[epochLog.length - 1].testAccuracy,
  };
  progress.stop(partial
    ? `stopped after ${done} of ${planned} batches (budget ${budgetSeconds} s): ${seconds.toFixed(2)} s measured, full run ≈ ${result.fullRunSeconds.toFixed(1)} s (extrapolated)`
    : `${epochs} epochs in ${seconds.toFixed(2)} s, ${Math.round(result.samplesPerSecond).toLocaleString('en-US')} samples/s, test accuracy ${result.testAccuracy.toFixed(4)}`);
  return result;
}

/** max |loss_native − loss_reference| over the batches both ran, and how many that is. */
function agreement(a, b) {
  const n = Math.min(a.batchLosses.length, b.batchLosses.length);
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(a.batchLosses[i] - b.batchLosses[i]));
  return { batches: n, maxAbsDiff: max };
}

module.exports = { OPTIMIZERS, trainSoftmax, agreement, describeOptimizer };
