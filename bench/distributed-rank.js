'use strict';
// One rank of a bench/distributed.js job: `node distributed-rank.js <part> [sizes]`, with RANK,
// WORLD_SIZE, MASTER_ADDR and MASTER_PORT set. Prints one JSON line: this rank's raw samples (ms),
// which bench/distributed.js combines across ranks (the slowest rank of each repeat) and reduces
// to medians. Parts:
//   allreduce <n,n,...>  float32 sum all-reduce of zeros; each repeat after a barrier
//   optimizer            DistributedOptimizer(Adam).step() against its parts: the all-reduce of
//                        the same bucket and Adam.step() alone, in alternation (a barrier first)
//   softmax              the demo's softmax training loop, data-parallel: samples per second
const optim = require('../dist/index.js');
const d = require('../dist/distributed/index.js');

const rank = Number(process.env.RANK);
const size = Number(process.env.WORLD_SIZE);
const [part, sizesArg] = process.argv.slice(2);

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

/** Repeats per size: enough for a stable median, a few seconds at most per size. */
const repeatsFor = (n) => (n >= 1e7 ? 11 : n >= 1e6 ? 31 : 101);

async function allreduce(pg) {
  const sizes = sizesArg.split(',').map(Number);
  const times = {};
  for (const n of sizes) {
    const x = new Float32Array(n);
    for (let w = 0; w < 3; w++) await pg.allReduce(x);
    const t = [];
    for (let k = 0; k < repeatsFor(n); k++) {
      await pg.barrier();
      const t0 = process.hrtime.bigint();
      await pg.allReduce(x);
      t.push(ms(t0));
    }
    times[n] = t;
  }
  return { times };
}

/** Gradients of Adam-friendly size that stay finite and equal on every rank. */
function fillGrad(g, seed) {
  for (let i = 0; i < g.length; i++) g[i] = ((i * 7 + seed) % 13 - 6) * 1e-3;
}

async function optimizer(pg) {
  // The demo's softmax model (784×10 weights + 10 intercepts: two tensors fused into one bucket)
  // and a 1e6-element one (one tensor, reduced in place).
  const models = { 'softmax 784×10+10': [7840, 10], '1e6': [1_000_000] };
  const out = {};
  for (const [name, lengths] of Object.entries(models)) {
    const params = lengths.map((n, j) => optim.param(new Float32Array(n).fill(0.01), `p${j}`));
    const adam = new optim.Adam(params, { lr: 1e-3 });
    const dopt = new d.DistributedOptimizer(adam, { processGroup: pg });
    const total = lengths.reduce((a, b) => a + b, 0);
    const bucket = new Float32Array(total);
    const reps = repeatsFor(total) * 2;
    const t = { step: [], allReduce: [], local: [] };
    for (let k = -3; k < reps; k++) {
      params.forEach((p, j) => fillGrad(p.grad, k + j));
      await pg.barrier();
      let t0 = process.hrtime.bigint();
      await dopt.step();
      const step = ms(t0);
      await pg.barrier();
      t0 = process.hrtime.bigint();
      await pg.allReduce(bucket, { op: 'avg' });
      const ar = ms(t0);
      t0 = process.hrtime.bigint();
      adam.step();
      const local = ms(t0);
      if (k < 0) continue; // warm-up
      t.step.push(step);
      t.allReduce.push(ar);
      t.local.push(local);
    }
    out[name] = { elements: total, ...t };
  }
  return out;
}

/** The first n batches of an endless stream. */
function take(iterable, n) {
  const out = [];
  for (const b of iterable) {
    if (out.length === n) break;
    out.push(b.slice());
  }
  return out;
}

async function softmax(pg) {
  // The demo's loop (softmax regression, Adam lr 1e-3, batches of 128, float32) on a seeded
  // synthetic Fashion-MNIST (the real files live outside the repository): with `size` ranks each
  // computes the gradient of its 128/size rows of every global batch of 128.
  const data = optim.syntheticFashionMnist({ seed: 0, train: 16384, test: 16 });
  const X = optim.scalePixels(data.train.images);
  const train = optim.softmaxRegression(X, data.train.labels, { cols: data.features, classes: data.classes.length });
  const GLOBAL = 128;
  const part = GLOBAL / size;
  const batches = take(optim.minibatches(data.train.count, { batchSize: GLOBAL, seed: 0, epochs: Infinity }), 3 * (data.train.count / GLOBAL));
  const w = optim.param(new Float32Array(train.size), 'w');
  const adam = new optim.Adam([w], { lr: 1e-3 });
  const dopt = pg ? new d.DistributedOptimizer(adam, { processGroup: pg }) : undefined;
  const run = async (idx) => {
    const mine = idx.subarray(rank * part, (rank + 1) * part);
    adam.zeroGrad();
    train.batch(mine).lossAndGrad(w.data, w.grad);
    if (dopt) await dopt.step();
    else adam.step();
  };
  for (let k = 0; k < 20; k++) await run(batches[k]); // warm-up
  if (pg) await pg.barrier();
  const t0 = process.hrtime.bigint();
  for (const idx of batches) await run(idx);
  const seconds = ms(t0) / 1e3;
  return { samples: batches.length * GLOBAL, seconds, samplesPerSecond: (batches.length * GLOBAL) / seconds, loss: train.loss(w.data) };
}

async function main() {
  optim.setBackend('auto');
  // One rank without a group: the plain one-process loop (the demo's).
  if (part === 'softmax' && size === 1) {
    process.stdout.write(`${JSON.stringify({ rank, results: await softmax(undefined) })}\n`);
    return;
  }
  const pg = await d.initProcessGroup({ timeoutMs: 120_000 });
  const parts = { allreduce, optimizer, softmax };
  const results = await parts[part](pg);
  await pg.destroy();
  process.stdout.write(`${JSON.stringify({ rank, results })}\n`);
}

main().catch((e) => {
  process.stderr.write(`rank ${rank}: ${e && e.stack}\n`);
  process.exitCode = 1;
});
