#!/usr/bin/env node
'use strict';
// `npm run bench:event-loop`: how long the async linear algebra holds the event loop. For each
// native path (OpenBLAS when the build has it, the built-in kernels), a process of its own runs
// ROUNDS rounds of CALLS back-to-back `choleskyAsync(a, 2000)` (float64, no `out`: the result is
// a fresh array, as most callers use it) and `eighAsync(a, 500)`, and reports, per call kind,
// the medians over the rounds of: the synchronous part (from the call until it returns its
// Promise: argument checks and the copy of the operands), the round's wall time, and Node's own
// event-loop delay histogram (perf_hooks.monitorEventLoopDelay, 1 ms resolution): its maximum
// (the longest the loop was held) and its 99th percentile. Writes bench/results/event-loop.md.
//
// Timers here are late for two reasons: the call's synchronous part, and the cores the work
// takes (2 on this VM, shared with the pool thread and, with OpenBLAS, its threads). The first
// is ours to keep short; the second is the price of running the work at all.
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { median } = require('./timing.js');
const { spd } = require('./matrices.js');

const ROUNDS = 5;
const CALLS = 3;
const CASES = [
  { fn: 'choleskyAsync', n: 2000 },
  { fn: 'eighAsync', n: 500 },
];

/** Child mode: one JSON line, the rounds of every case on `blas` ('openblas' | 'builtin'). */
async function child(blas) {
  const { monitorEventLoopDelay } = require('node:perf_hooks');
  const linalg = require('../dist/linalg/index.js');
  const { loadNative } = require('../dist/backend/native.js');
  const addon = loadNative().addon;
  if (!addon) throw new Error('the native addon is not available');
  if (!addon.setBlas(blas)) throw new Error(`setBlas('${blas}') refused`);
  const rows = [];
  for (const { fn, n } of CASES) {
    const a = spd(n);
    await linalg[fn](a, n); // warm-up: code paths, the pool's threads
    const rounds = [];
    for (let r = 0; r < ROUNDS; r++) {
      const h = monitorEventLoopDelay({ resolution: 1 });
      let syncMs = 0;
      const t0 = performance.now();
      h.enable();
      for (let k = 0; k < CALLS; k++) {
        const s = performance.now();
        const p = linalg[fn](a, n);
        syncMs = Math.max(syncMs, performance.now() - s);
        await p;
      }
      h.disable();
      rounds.push({ wallMs: performance.now() - t0, syncMs, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 });
    }
    rows.push({ fn, n, rounds });
  }
  process.stdout.write(`${JSON.stringify({ blas, rows })}\n`);
}

function main() {
  const { loadNative } = require('../dist/backend/native.js');
  const addon = loadNative().addon;
  if (!addon) {
    console.error('bench:event-loop: the native addon is not built (npm run build)');
    process.exit(1);
  }
  const info = addon.info();
  const paths = [...(info.openblasAvailable ? ['openblas'] : []), 'builtin'];
  const results = paths.map((blas) => {
    const r = spawnSync(process.execPath, [__filename, '--child', blas], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error(`bench:event-loop: the ${blas} child failed (status ${r.status}, signal ${r.signal})`);
    return JSON.parse(r.stdout);
  });
  const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const lines = [
    `# Event loop during the async linear algebra, ${new Date().toISOString()}`,
    '',
    `Node ${process.version}, ${require('node:os').cpus().length} logical cores, step threads ${info.stepThreads}, kernels ${info.simd}, linear algebra ${info.linalgIsa}. ` +
      `Per row: ${ROUNDS} rounds of ${CALLS} back-to-back calls (float64, no \`out\`), medians over the rounds. ` +
      '"sync part": the longest time a call took to return its Promise; "loop held": the maximum and 99th percentile of perf_hooks.monitorEventLoopDelay (1 ms resolution) over the round.',
    '',
    '| path | call | n | round wall ms | sync part ms | loop held, max ms | loop held, p99 ms | max per round |',
    '|---|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const { blas, rows } of results) {
    for (const { fn, n, rounds } of rows) {
      const m = (k) => median(rounds.map((r) => r[k]));
      lines.push(`| ${blas} | ${fn} | ${n} | ${fmt(m('wallMs'))} | ${fmt(m('syncMs'))} | ${fmt(m('maxMs'))} | ${fmt(m('p99Ms'))} | ${rounds.map((r) => fmt(r.maxMs)).join(', ')} |`);
    }
  }
  const md = `${lines.join('\n')}\n`;
  process.stdout.write(md);
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'event-loop.md'), md);
}

if (process.argv[2] === '--child') {
  child(process.argv[3]).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main();
}
