#!/usr/bin/env node
'use strict';
// `node bench/cholesky-direct.js [500,1000,2000] [rounds]`: float64 Cholesky through the addon
// against LAPACK's dpotrf called directly from C (bench/blas-direct.c, `potrf` mode), at the same
// n and OpenBLAS thread count, side by side: the targets of issue 13 item 5 (in place ≤ 1.1×
// dpotrf, `out` ≤ 1.2×, the built-in kernels ≤ 2×).
//
// OpenBLAS reads OPENBLAS_NUM_THREADS at load, so each thread count needs processes of its own:
// each round runs, per thread count, the C program then a Node child timing the addon; the
// figures are medians over the rounds (each already a median of 9 samples). C and Node are not
// sampled in alternation, so on this shared machine load from other processes moves the ratios;
// the rounds spread it over both.
//
// Addon timings, all `cholesky()` from optim/linalg, on a diagonally dominant matrix:
//   in place: (w.set(a); cholesky(w, n, { inPlace: true })) − w.set(a) alone, as C's memcpy;
//   out:      cholesky(a, n, { out }) (its copy of a into out included, as the target counts it);
//   built-in: in place with setBlas('builtin'), in a process of its own (see addonChild).
// Each process gets the row's thread count for OpenBLAS and for the step pool alike.
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { compileBlasDirect } = require('./blas-direct.js');
const { median } = require('./timing.js');
const { spd } = require('./matrices.js');

/**
 * Child mode: one JSON line per size with the addon's ms (see the header). `which`: 'openblas'
 * (in place and `out`) or 'builtin'. The built-in kernels run in a process of their own: after an
 * OpenBLAS call its worker threads spin for a while, and the step pool's threads, which the
 * built-in kernels use, would be timed competing with them for the two cores.
 */
function addonChild(which, sizes) {
  const { cholesky } = require('../dist/linalg/index.js');
  const { loadNative } = require('../dist/backend/native.js');
  const { measureAll } = require('./timing.js');
  const addon = loadNative().addon;
  if (!addon) throw new Error('the native addon is not available');
  for (const n of sizes) {
    const a = spd(n);
    const w = new Float64Array(n * n);
    const out = new Float64Array(n * n);
    addon.setBlas(which);
    const inPlace = () => {
      w.set(a);
      cholesky(w, n, { inPlace: true });
    };
    const set = () => w.set(a);
    if (which === 'builtin') {
      const [ip, s] = measureAll([inPlace, set], { repeats: 9 }).map((m) => m.ns / 1e6);
      process.stdout.write(`${JSON.stringify({ n, builtinMs: ip - s })}\n`);
    } else {
      const [ip, s, o] = measureAll([inPlace, set, () => cholesky(a, n, { out })], { repeats: 9 }).map((m) => m.ns / 1e6);
      process.stdout.write(`${JSON.stringify({ n, inPlaceMs: ip - s, setMs: s, outMs: o })}\n`);
    }
    addon.setBlas('best');
  }
}

function run(sizes, rounds) {
  const bd = compileBlasDirect();
  if (bd.skipped) throw new Error(bd.skipped);
  const samples = new Map();
  const push = (key, v) => samples.set(key, [...(samples.get(key) ?? []), v]);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const threads of [1, 2]) {
        // The same thread count for OpenBLAS and for the step pool (the built-in kernels' threads).
        const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OPTIM_NUM_THREADS: String(threads) };
        const c = spawnSync(bd.exe, ['potrf', sizes.join(',')], { encoding: 'utf8', env });
        if (c.status !== 0) throw new Error(`blas-direct potrf: ${c.stderr}`);
        for (const line of c.stdout.trim().split('\n')) {
          const row = JSON.parse(line);
          push(`${threads} ${row.n} lapack`, row.ms);
        }
        for (const which of ['openblas', 'builtin']) {
          const node = spawnSync(process.execPath, [__filename, 'addon', which, sizes.join(',')], { encoding: 'utf8', env });
          if (node.status !== 0) throw new Error(`addon child: ${node.stderr}`);
          for (const line of node.stdout.trim().split('\n')) {
            const row = JSON.parse(line);
            for (const k of ['inPlaceMs', 'outMs', 'builtinMs']) if (k in row) push(`${threads} ${row.n} ${k}`, row[k]);
          }
        }
        process.stderr.write(`cholesky-direct: round ${r + 1}/${rounds}, ${threads} thread(s) done\n`);
      }
    }
  } finally {
    bd.dispose();
  }
  const m = (threads, n, k) => median(samples.get(`${threads} ${n} ${k}`));
  const f = (x) => x.toFixed(x < 10 ? 3 : 2);
  const lines = [
    '| n | OpenBLAS threads | dpotrf from C ms | addon in place ms | in place ÷ C | addon `out` ms | `out` ÷ C | built-in ms | built-in ÷ C |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const n of sizes) {
    for (const threads of [1, 2]) {
      const c = m(threads, n, 'lapack');
      const ip = m(threads, n, 'inPlaceMs');
      const o = m(threads, n, 'outMs');
      const b = m(threads, n, 'builtinMs');
      lines.push(`| ${n} | ${threads} | ${f(c)} | ${f(ip)} | ${(ip / c).toFixed(2)}× | ${f(o)} | ${(o / c).toFixed(2)}× | ${f(b)} | ${(b / c).toFixed(2)}× |`);
    }
  }
  return lines.join('\n');
}

if (require.main === module) {
  if (process.argv[2] === 'addon') {
    addonChild(process.argv[3], process.argv[4].split(',').map(Number));
  } else {
    const sizes = (process.argv[2] ?? '500,1000,2000').split(',').map(Number);
    const rounds = Number(process.argv[3] ?? 3);
    process.stdout.write(`${run(sizes, rounds)}\n`);
  }
}

module.exports = { run };
