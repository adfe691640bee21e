'use strict';
// The matmul figures that need a process of their own, because OpenBLAS reads
// OPENBLAS_NUM_THREADS once, at load: the addon's OpenBLAS path under 1 thread (linalg.js run as
// a script), and OpenBLAS called from C (blas-direct.c) under 1 and 2 threads. These cannot be
// sampled in alternation with each other, so they run in ROUNDS rounds, one process after
// another within a round, and each figure is the median over the rounds: load from other
// processes on this shared machine, which comes and goes over seconds, then falls on every
// column alike instead of on whichever process it happened to meet.
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { loadNative } = require('../dist/backend/native.js');
const { compileBlasDirect, runBlasDirect } = require('./blas-direct.js');
const { median } = require('./timing.js');

const ROUNDS = 3;

function addonOneThread(sizes) {
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'linalg.js'), 'openblas-matmul', sizes.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
  });
  if (r.status !== 0) return { skipped: `the child process failed (status ${r.status}, signal ${r.signal})` };
  return { rows: JSON.parse(r.stdout) };
}

/** Per dtype and n: the median ms over the rounds, with each round's GFLOP/s kept. */
function medians(runs) {
  const skipped = runs.find((r) => r.skipped);
  if (skipped) return skipped;
  const byKey = new Map();
  for (const row of runs.flatMap((r) => r.rows)) {
    const key = `${row.dtype} ${row.n}`;
    byKey.set(key, [...(byKey.get(key) ?? []), row]);
  }
  return {
    rows: [...byKey.values()].map((rows) => {
      const ms = median(rows.map((r) => r.ms));
      return { ...rows[0], ms, gflops: (2 * rows[0].n ** 3) / (ms * 1e6), rounds: rows.map((r) => +r.gflops.toFixed(2)) };
    }),
  };
}

/** { oneThread, direct: { 1: ..., 2: ... } }, each { rows } (medians) or { skipped: why }. */
function runSeparate(sizes, log) {
  const hasOpenblas = loadNative().addon?.info().openblasAvailable;
  const compiled = compileBlasDirect();
  const runs = { oneThread: [], 1: [], 2: [] };
  try {
    for (let r = 0; r < ROUNDS; r++) {
      runs.oneThread.push(hasOpenblas ? addonOneThread(sizes) : { skipped: 'this build has no OpenBLAS' });
      for (const threads of [1, 2]) runs[threads].push(compiled.skipped ? compiled : runBlasDirect(compiled.exe, sizes, threads));
      log(`separate processes: round ${r + 1} of ${ROUNDS} done`);
    }
  } finally {
    compiled.dispose?.();
  }
  const out = { rounds: ROUNDS, oneThread: medians(runs.oneThread), direct: { 1: medians(runs[1]), 2: medians(runs[2]) } };
  for (const [what, res] of [['addon OpenBLAS, 1 thread', out.oneThread], ['C OpenBLAS, 1 thread', out.direct[1]], ['C OpenBLAS, 2 threads', out.direct[2]]]) {
    for (const row of res.rows ?? []) log(`separate: ${what} ${row.dtype} n=${row.n}: ${row.gflops.toFixed(2)} GFLOP/s (rounds ${row.rounds.join(', ')})`);
    if (res.skipped) log(`separate: ${what} not measured: ${res.skipped}`);
  }
  return out;
}

module.exports = { runSeparate };
