'use strict';
// PyTorch's Adam as the peer of ours, in the same run: torch's single-tensor for-loop and its
// fused CPU kernel (bench/torch_adam.py, a python3 subprocess) with one thread and with all of
// them, against our `Adam.step()` (float32, default nonFinite 'error') with the same thread counts,
// and both against the bandwidth limit: an in-place axpy through the sgd kernel (3 streams) at the
// same n and thread count, scaled to Adam's 7 streams (p, g, m, v read; p, m, v written). When
// python3 cannot import torch, the section says so instead.
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const optim = require('../dist/index.js');
const { loadNative } = require('../dist/backend/native.js');
const { axpyProbe } = require('./cases.js');
const { measureAll, gc } = require('./timing.js');
const { fillGrad } = require('./layouts.js');

const ADAM_STREAMS = 7;

/** torch's rows, or `{ error }` when python3 or torch is missing or the script fails. */
function torchRows(sizes, threads, log) {
  const probe = spawnSync('python3', ['-c', 'import torch, sys; sys.stdout.write(torch.__version__)'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop();
    return { error: `python3 cannot import torch (${why}); install it (pip install torch) to measure the peer` };
  }
  log(`torch peer: torch ${probe.stdout} via python3`);
  const r = spawnSync('python3', [path.join(__dirname, 'torch_adam.py'), sizes.join(','), threads.join(',')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  if (r.status !== 0) return { error: `bench/torch_adam.py failed (status ${r.status}, signal ${r.signal})` };
  return JSON.parse(r.stdout);
}

/** Ours at each (threads, n): Adam.step() and the probe, sampled in alternation. */
function ourRows(sizes, threads, log) {
  const native = loadNative();
  if (!native.backend) return { error: 'the native addon is not built' };
  optim.setBackend('native');
  const probe = axpyProbe(1e-7);
  const rows = [];
  for (const th of threads) {
    optim.setNumThreads(th);
    for (const n of sizes) {
      gc();
      const p = optim.param(new Float32Array(n).fill(0.01));
      fillGrad(p.grad);
      const opt = new optim.Adam([p], { lr: 1e-3 });
      opt.step();
      const list = native.backend.prepare([new Float32Array(n).fill(1), new Float32Array(n).fill(1)], probe.stride);
      const [a, b] = measureAll([() => opt.step(), () => native.backend.step(probe.kernel, list, probe.scalars, probe.flags)]);
      const probeGBs = (probe.streams * 4 * n) / b.ns;
      const row = { threads: th, n, oursNsPerElem: a.ns / n, probeGBs, boundNsPerElem: (ADAM_STREAMS * 4) / probeGBs };
      log(`[torch peer] ours Adam f32 n=${n} threads=${th}: ${row.oursNsPerElem.toFixed(3)} ns/el; bandwidth ${probeGBs.toFixed(1)} GB/s → bound ${row.boundNsPerElem.toFixed(3)} ns/el`);
      rows.push(row);
    }
  }
  optim.setNumThreads(threads[threads.length - 1]);
  optim.setBackend('auto');
  return { rows };
}

/**
 * Memory-bound sizes run at whatever bandwidth the shared host leaves: on this VM it moved by
 * 1.7x between minutes (Adam f32 1e7, one thread: 0.75 then 0.42 ns/el, ours and torch alike).
 * So ours and torch's run in alternation, ROUNDS times, and each cell is the median of its rounds.
 */
const ROUNDS = 3;

const median = (xs) => {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  return s.length === 0 ? null : s[(s.length - 1) >> 1];
};

function runTorchPeer(sizes, log) {
  const native = loadNative();
  const all = native.addon ? native.addon.info().stepThreads : 1;
  const threads = [...new Set([1, all])];
  const rounds = [];
  for (let k = 0; k < ROUNDS; k++) {
    log(`torch peer: round ${k + 1} of ${ROUNDS}`);
    rounds.push({ ours: ourRows(sizes, threads, log), torch: torchRows(sizes, threads, log) });
    if (rounds[k].ours.error || rounds[k].torch.error) break;
  }
  const { ours, torch } = rounds[0];
  const rows = (ours.rows ?? []).map((r) => {
    const cell = (rs, key) => median(rs.map((x) => x.ours.rows?.find((o) => o.threads === r.threads && o.n === r.n)?.[key]));
    const pick = (mode) => rounds.map((x) => x.torch.rows?.find((t) => t.threads === r.threads && t.n === r.n && t.mode === mode));
    const perElem = (mode) => pick(mode).map((t) => (t ? t.ns_per_step / r.n : null));
    return {
      threads: r.threads,
      n: r.n,
      oursNsPerElem: cell(rounds, 'oursNsPerElem'),
      probeGBs: cell(rounds, 'probeGBs'),
      boundNsPerElem: cell(rounds, 'boundNsPerElem'),
      torchForloopNsPerElem: median(perElem('forloop')),
      torchFusedNsPerElem: median(perElem('fused')),
      oursRounds: rounds.map((x) => x.ours.rows?.find((o) => o.threads === r.threads && o.n === r.n)?.oursNsPerElem ?? null),
      torchFusedRounds: perElem('fused'),
    };
  });
  return { threads, rounds: rounds.length, torch: torch.torch ?? null, error: torch.error ?? ours.error ?? null, rows };
}

module.exports = { runTorchPeer };
