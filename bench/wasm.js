#!/usr/bin/env node
'use strict';
// `npm run bench:wasm`: what the WebAssembly backend costs, in one run on one machine.
//
// 1. The Adam float32 step, ns per element, at 1e3 … 1e7 elements: this library's Adam on its wasm,
//    reference and native backends, and tfjs's own Adam (tf.train.adam(...).applyGradients on one
//    variable with a fixed gradient) on tfjs's wasm and cpu backends. Same rule and
//    hyperparameters everywhere (lr 1e-3, betas 0.9/0.999, ε 1e-7).
// 2. Linear algebra, float64: matmul (c = a·b) and cholesky at n = 100 and 300, on the wasm
//    backend, the reference backend and the native built-in kernels (no BLAS; at the baseline ISA,
//    the wasm build's twin, and at the best one the CPU runs).
//
// Each contender is timed in samples of at least MIN_SAMPLE_MS (one call at least), one sample of
// each contender per round, rounds alternating (A B C A B C ...) so that load from other processes
// hits all alike; the figure is the median over the rounds. Before each sample the contender's
// backend is selected and one untimed call made (tfjs moves a variable's data when the backend
// changes). Prints a Markdown table and writes bench/results/wasm.{md,json}.
//
// Options: --repeats N (rounds, default 7), --sizes 1e3,1e4,... Needs dist/ (npm run build:ts).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) {
  console.error('bench:wasm: dist/ is missing; run `npm run build:ts` first');
  process.exit(1);
}

const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfWasm = require('@tensorflow/tfjs-backend-wasm');
const optim = require('../dist/index.js');
const { loadNative } = require('../dist/backend/native.js');
const { loadWasm } = require('../dist/backend/wasm.js');
const { referenceBackend } = require('../dist/backend/reference.js');
const { median } = require('./timing.js');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const REPEATS = Number(option('repeats', 7));
const SIZES = option('sizes', '1e3,1e4,1e5,1e6,1e7').split(',').map(Number);
const LINALG_SIZES = [100, 300];
const MIN_SAMPLE_MS = 20;
const LR = 1e-3;
const BETAS = [0.9, 0.999];
const EPS = 1e-7;

const now = () => process.hrtime.bigint();

/** ns per call of each contender: median over rounds of one sample each, in alternation. */
async function alternate(contenders) {
  const inner = [];
  for (const c of contenders) {
    await c.select();
    c.fn();
    c.fn();
    // Calls per sample: enough for MIN_SAMPLE_MS, from a short calibration run.
    let calls = 1;
    for (;;) {
      const t0 = now();
      for (let i = 0; i < calls; i++) c.fn();
      const ns = Number(now() - t0);
      if (ns >= MIN_SAMPLE_MS * 1e6 / 4 || calls >= 1 << 20) {
        inner.push(Math.max(1, Math.ceil((MIN_SAMPLE_MS * 1e6 * calls) / ns)));
        break;
      }
      calls *= 2;
    }
  }
  const samples = contenders.map(() => []);
  for (let r = 0; r < REPEATS; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[i];
      await c.select();
      c.fn();
      const t0 = now();
      for (let k = 0; k < inner[i]; k++) c.fn();
      samples[i].push(Number(now() - t0) / inner[i]);
    }
  }
  return samples.map((s, i) => ({ ns: median(s), min: Math.min(...s), max: Math.max(...s), calls: inner[i], repeats: s.length }));
}

/** Deterministic parameter and gradient values (no zero gradient, nothing decays to subnormals). */
function fillValues(p, g) {
  for (let i = 0; i < p.length; i++) {
    p[i] = 0.1 * (((i * 7919) % 1000) / 1000 - 0.5);
    g[i] = (i & 1 ? 1e-2 : -1e-2) * (0.5 + ((i * 104729) % 997) / 997);
  }
}

async function tfBackend(name) {
  if (tf.getBackend() !== name && !(await tf.setBackend(name))) throw new Error(`bench:wasm: tfjs's ${name} backend did not initialise`);
}

/** Our Adam on `backend`: the optimizer's whole step (one kernel call over one tensor). */
function ours(backend, n) {
  const p = optim.param(new Float32Array(n), 'w');
  fillValues(p.data, p.grad);
  const opt = new optim.Adam([p], { lr: LR, betas: BETAS, eps: EPS });
  return { select: async () => optim.setBackend(backend), fn: () => opt.step(), dispose: () => undefined };
}

/** tfjs's Adam on tfjs's `backend`: applyGradients on one variable with a fixed gradient. */
async function theirs(backend, n) {
  await tfBackend(backend);
  const p = new Float32Array(n), g = new Float32Array(n);
  fillValues(p, g);
  const v = tf.variable(tf.tensor1d(p), true, `w${backend}${n}`);
  const grad = tf.tensor1d(g);
  const opt = tf.train.adam(LR, BETAS[0], BETAS[1], EPS);
  return {
    select: () => tfBackend(backend),
    fn: () => opt.applyGradients([{ name: v.name, tensor: grad }]),
    dispose: () => {
      opt.dispose();
      tf.dispose([v, grad]);
    },
  };
}

async function adamRows(hasNative) {
  const names = ['optim wasm', 'optim reference', ...(hasNative ? ['optim native'] : []), 'tfjs wasm', 'tfjs cpu'];
  const rows = [];
  for (const n of SIZES) {
    process.stderr.write(`bench:wasm: Adam float32, ${n} elements...\n`);
    const contenders = [ours('wasm', n), ours('reference', n)];
    if (hasNative) contenders.push(ours('native', n));
    contenders.push(await theirs('wasm', n), await theirs('cpu', n));
    const res = await alternate(contenders);
    contenders.forEach((c) => c.dispose());
    rows.push({ n, results: Object.fromEntries(names.map((name, i) => [name, { ...res[i], nsPerElement: res[i].ns / n }])) });
    if (global.gc) global.gc();
  }
  return { names, rows };
}

function spd(n) {
  const a = new Float64Array(n * n);
  let s = 1;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      s = (s * 16807) % 2147483647;
      a[i * n + j] = a[j * n + i] = (s / 2147483647 - 0.5) / n;
    }
    a[i * n + i] = 2;
  }
  return a;
}

async function linalgRows(native) {
  const wasm = loadWasm().backend;
  const addon = native.addon;
  const contenders = [['wasm', wasm, undefined], ['reference', referenceBackend, undefined]];
  if (native.backend) {
    contenders.push(['native builtin baseline', native.backend, 'baseline']);
    addon.setIsa('best');
    contenders.push([`native builtin ${addon.info().linalgIsa}`, native.backend, 'best']);
  }
  const select = (isa) => async () => {
    if (!addon) return;
    addon.setBlas('builtin');
    addon.setIsa(isa ?? 'best');
  };
  const rows = [];
  try {
    for (const n of LINALG_SIZES) {
      const a = spd(n), b = spd(n).map((x, i) => x + (i % 7) * 1e-3);
      const outs = contenders.map(() => new Float64Array(n * n));
      process.stderr.write(`bench:wasm: matmul and cholesky float64, n = ${n}...\n`);
      const mm = await alternate(contenders.map(([, be, isa], i) => ({
        select: select(isa), fn: () => be.gemm(a, b, outs[i], n, n, n, false, false, 1, 0),
      })));
      const ch = await alternate(contenders.map(([, be, isa], i) => ({
        select: select(isa), fn: () => be.potrf(a, outs[i], n),
      })));
      rows.push({ op: 'matmul', n, results: Object.fromEntries(contenders.map(([name], i) => [name, mm[i]])) });
      rows.push({ op: 'cholesky', n, results: Object.fromEntries(contenders.map(([name], i) => [name, ch[i]])) });
    }
  } finally {
    if (addon) {
      addon.setBlas('best');
      addon.setIsa('best');
    }
  }
  return { names: contenders.map(([name]) => name), rows };
}

function fmt(v, digits) {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(digits);
}

async function main() {
  const native = loadNative();
  const wasm = loadWasm();
  if (!wasm.backend) throw new Error(`bench:wasm: the wasm backend cannot load: ${wasm.error}`);
  await tf.ready();
  const adam = await adamRows(native.backend !== undefined);
  optim.setBackend(native.backend ? 'native' : 'reference');
  const linalg = await linalgRows(native);
  const nativeInfo = native.backend ? native.backend.info() : undefined;
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const conditions = `Node ${process.version}, ${cpu}, ${os.cpus().length} cores (load average at the end ${load}); ` +
    `tfjs ${tf.version_core}, tfjs-backend-wasm ${tfWasm.version_wasm} (${tfWasm.getThreadsCount()} thread); ` +
    `native: ${nativeInfo ? `${nativeInfo.simd}, ${nativeInfo.stepThreads} step threads` : 'not loaded'}; wasm and reference: one thread. ` +
    `Medians of ${REPEATS} rounds, each contender sampled once per round in alternation, samples of at least ${MIN_SAMPLE_MS} ms.`;

  const wasmName = 'optim wasm';
  const lines = [
    '### The WebAssembly backend (bench/wasm.js)',
    '',
    conditions,
    '',
    '#### Adam, float32, one tensor: ns per element (lower is better)',
    '',
    `| elements | ${adam.names.join(' | ')} | wasm vs reference | wasm vs tfjs wasm |`,
    `| ---: | ${adam.names.map(() => '---:').join(' | ')} | ---: | ---: |`,
    ...adam.rows.map((r) => {
      const w = r.results[wasmName].nsPerElement;
      return `| ${r.n.toExponential(0).replace('+', '')} | ${adam.names.map((name) => fmt(r.results[name].nsPerElement, 2)).join(' | ')} | ` +
        `${(r.results['optim reference'].nsPerElement / w).toFixed(1)}× faster | ${(r.results['tfjs wasm'].nsPerElement / w).toFixed(1)}× faster |`;
    }),
    '',
    '#### Linear algebra, float64: ms per call (lower is better)',
    '',
    `| operation | n | ${linalg.names.join(' | ')} |`,
    `| --- | ---: | ${linalg.names.map(() => '---:').join(' | ')} |`,
    ...linalg.rows.map((r) => `| ${r.op} | ${r.n} | ${linalg.names.map((name) => fmt(r.results[name].ns / 1e6, 3)).join(' | ')} |`),
    '',
  ];
  const md = lines.join('\n');
  process.stdout.write(md);
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'wasm.md'), md);
  fs.writeFileSync(path.join(dir, 'wasm.json'), `${JSON.stringify({ date: new Date().toISOString(), conditions, adam, linalg }, null, 2)}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
