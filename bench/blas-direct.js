'use strict';
// bench/blas-direct.c: compiled once per bench run into a temporary directory, then run once
// per thread count (OPENBLAS_NUM_THREADS, which OpenBLAS reads at load). When it does not
// compile or run, the reason is returned instead, and the report says so in place of the column.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

/** { exe, dispose } or { skipped: why }. */
function compileBlasDirect() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'optim-blas-direct-'));
  const dispose = () => fs.rmSync(dir, { recursive: true, force: true });
  const exe = path.join(dir, 'blas-direct');
  const cc = spawnSync('cc', ['-O2', path.join(__dirname, 'blas-direct.c'), '-o', exe, '-lopenblas'], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) {
    dispose();
    return { skipped: `cc -O2 bench/blas-direct.c -lopenblas failed: ${cc.error ? cc.error.message : cc.stderr.trim().split('\n')[0]}` };
  }
  return { exe, dispose };
}

/** Rows { dtype, n, ms, gflops, threads, repeats } of one run, or { skipped: why }. */
function runBlasDirect(exe, sizes, threads) {
  const r = spawnSync(exe, [sizes.join(',')], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads) } });
  if (r.error || r.status !== 0) return { skipped: `blas-direct (${threads} threads) failed: ${r.error?.message ?? r.stderr.trim()}` };
  return { rows: r.stdout.trim().split('\n').map((line) => JSON.parse(line)) };
}

module.exports = { compileBlasDirect, runBlasDirect };
