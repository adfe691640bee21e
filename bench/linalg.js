'use strict';
// Linear algebra rows of the benchmark report: matmul GFLOP/s (float32, float64) and Cholesky
// factor + solve times (float64), native (OpenBLAS and the built-in kernels, switched per call)
// against the reference backend and the peers of peers.js. Called by run.js; needs dist/
// (npm run build:ts). Run as a script (see the end of this file), it times the OpenBLAS path
// alone, so run.js can measure it under OPENBLAS_NUM_THREADS=1 in a child process.
//
// The kernels are called through the Backend objects, i.e. the addon as the public functions
// call it, minus the public argument checks (microseconds). Functions compared at one size are
// sampled in alternation (see timing.js), peers included, so their ratios share the same load.
// The reference runs only up to REFERENCE_MAX: past that, one reference call takes seconds.

const { loadNative } = require('../dist/backend/native.js');
const { referenceBackend } = require('../dist/backend/reference.js');
const { fillUniform } = require('../dist/data/random.js');
const { measureAll, gc } = require('./timing.js');

const MATMUL_SIZES = [64, 128, 256, 512, 1024, 2048];
const CHOLESKY_SIZES = [100, 200, 500, 1000, 2000];
const REFERENCE_MAX = { matmul: 512, cholesky: 500 };

/** n uniform numbers in [-1, 1) from `seed` (pure-rand's xoroshiro128+: src/data/random.ts). */
function random(Ctor, n, seed) {
  return fillUniform(new Ctor(n), seed);
}

/** A diagonally dominant symmetric matrix: positive definite, cheap to build. */
function spd(n) {
  const a = random(Float64Array, n * n, 7);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) a[j * n + i] = a[i * n + j] = a[i * n + j] / n;
    a[i * n + i] = 2;
  }
  return a;
}

/** [label, setup] pairs of the native implementations this build has (`only`: just those). */
function nativeImpls(addon, only) {
  if (!addon) return [];
  const impls = [];
  if (addon.info().openblasAvailable) impls.push(['native openblas', () => addon.setBlas('openblas')]);
  impls.push(['native builtin', () => addon.setBlas('builtin')]);
  return only ? impls.filter(([label]) => only.includes(label)) : impls;
}

/** [label, fn] of each peer that applies to this case. */
function peerFns(peers, make) {
  return peers.flatMap((peer) => {
    const fn = make(peer);
    return fn ? [[peer.name, fn]] : [];
  });
}

/**
 * Runs the suite. `options`: { matmulSizes, choleskySizes, log, peers (from peers.js), only
 * (native labels to run), reference (default true) } (sizes default to the full report's).
 * Returns rows:
 *   { kind: 'matmul', dtype, n, impl, ms, gflops }          square n×n·n×n, 2n³ flops
 *   { kind: 'cholesky+solve', dtype: 'float64', n, impl, ms } factor, then one right-hand side
 * and leaves the addon on its best BLAS.
 */
function runLinalgBench(options = {}) {
  const log = options.log ?? (() => {});
  const peers = (options.peers ?? []).filter((p) => !p.error);
  const withReference = options.reference ?? true;
  const native = loadNative();
  const addon = native.addon;
  const nb = native.backend;
  const impls = nativeImpls(addon, options.only);
  const rows = [];
  try {
    for (const [dtype, Ctor] of [['float32', Float32Array], ['float64', Float64Array]]) {
      for (const n of options.matmulSizes ?? MATMUL_SIZES) {
        const a = random(Ctor, n * n, 1), b = random(Ctor, n * n, 2), c = new Ctor(n * n);
        const fns = impls.map(([label, use]) => [label, () => {
          use();
          nb.gemm(a, b, c, n, n, n, false, false, 1, 0);
        }]);
        if (withReference && n <= REFERENCE_MAX.matmul) fns.push(['reference', () => referenceBackend.gemm(a, b, c, n, n, n, false, false, 1, 0)]);
        fns.push(...peerFns(peers, (p) => p.matmul?.(dtype, n, a, b)));
        gc();
        const times = measureAll(fns.map((f) => f[1]), { minSampleMs: 20, repeats: 5, warmupMs: 40 });
        fns.forEach(([impl], i) => {
          const ms = times[i].ns / 1e6;
          rows.push({ kind: 'matmul', dtype, n, impl, ms, gflops: (2 * n ** 3) / (ms * 1e6) });
          log(`linalg: matmul ${dtype} n=${n} ${impl}: ${ms.toFixed(3)} ms, ${((2 * n ** 3) / (ms * 1e6)).toFixed(2)} GFLOP/s`);
        });
      }
    }
    for (const n of options.choleskySizes ?? CHOLESKY_SIZES) {
      const a = spd(n), rhs = random(Float64Array, n, 3);
      const L = new Float64Array(n * n), x = new Float64Array(n);
      const solveWith = (backend) => () => {
        backend.potrf(a, L, n);
        backend.potrs(L, rhs, x, n, 1);
      };
      const fns = impls.map(([label, use]) => {
        const run = solveWith(nb);
        return [label, () => {
          use();
          run();
        }];
      });
      if (withReference && n <= REFERENCE_MAX.cholesky) fns.push(['reference', solveWith(referenceBackend)]);
      fns.push(...peerFns(peers, (p) => p.cholesky?.(n, a, rhs)));
      gc();
      const times = measureAll(fns.map((f) => f[1]), { minSampleMs: 20, repeats: 5, warmupMs: 40 });
      fns.forEach(([impl], i) => {
        const ms = times[i].ns / 1e6;
        rows.push({ kind: 'cholesky+solve', dtype: 'float64', n, impl, ms });
        log(`linalg: cholesky+solve float64 n=${n} ${impl}: ${ms.toFixed(3)} ms`);
      });
    }
  } finally {
    addon?.setBlas('best');
  }
  return rows;
}

// `node bench/linalg.js openblas-matmul 64,128,...`: the addon's OpenBLAS matmul alone, rows as
// JSON on stdout. OpenBLAS reads OPENBLAS_NUM_THREADS once, at load: hence a process of its own.
if (require.main === module) {
  if (process.argv[2] !== 'openblas-matmul') throw new Error('usage: node bench/linalg.js openblas-matmul SIZES');
  const sizes = process.argv[3].split(',').map(Number);
  const rows = runLinalgBench({ matmulSizes: sizes, choleskySizes: [], only: ['native openblas'], reference: false });
  process.stdout.write(JSON.stringify(rows));
}

module.exports = { runLinalgBench, random, MATMUL_SIZES, CHOLESKY_SIZES, REFERENCE_MAX };
