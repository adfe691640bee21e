#!/usr/bin/env node
'use strict';
// `npm run bench:distributed`: optim/distributed on this machine's loopback, in one run.
//
// 1. All-reduce (float32, sum) at 1e3 … 1e7 elements with 2 and 4 ranks: ours, and, when python3
//    can import torch, torch.distributed's gloo all-reduce (bench/distributed_torch.py) with the
//    same protocol: per repeat a barrier, then one timed call; a repeat's time is its slowest
//    rank's; the median over the repeats (101 below 1e6 elements, 31 at 1e6, 11 at 1e7). The jobs
//    alternate, ours then torch's, ROUNDS times; each reports the lowest of its medians (other
//    processes on a shared machine add noise that only ever slows a job down).
// 2. DistributedOptimizer(Adam).step() on 2 ranks against its parts measured in alternation: the
//    all-reduce of the same bucket plus Adam.step() alone, for the demo's softmax model
//    (784×10 + 10) and a 1e6-element one. Target: step ≤ 1.1 × (all-reduce + local step).
// 3. The demo's softmax training (Adam, batches of 128, float32; a seeded synthetic Fashion-MNIST
//    of 16 384 images, 3 epochs) with 1 process and with 2 ranks (64 rows each): samples/s.
//
// Prints Markdown tables and writes bench/results/distributed.{md,json}. Needs dist/ (npm run
// build:ts) and an addon built with Gloo. Run it under `flock /tmp/optim-bench.lock`.
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
if (!fs.existsSync(path.join(root, 'dist', 'distributed', 'index.js'))) {
  console.error('bench:distributed: dist/ is missing; run `npm run build:ts` first');
  process.exit(1);
}
const { distributedAvailable } = require('../dist/distributed/index.js');
const { backendInfo } = require('../dist/index.js');
const { environment } = require('./env.js');
const { fmt, sizeName, table } = require('./format.js');
const { median } = require('./timing.js');

const SIZES = [1e3, 1e4, 1e5, 1e6, 1e7];
const RANKS = [2, 4];
/** Jobs per (ranks, peer), alternating ours and torch's; each row reports the lowest median. */
const ROUNDS = 3;
const log = (line) => process.stderr.write(`${line}\n`);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Runs `size` processes of `argv` (a rank each) and resolves their JSON results, by rank. */
async function job(command, argv, size) {
  const port = await freePort();
  const runs = Array.from({ length: size }, (_, rank) => new Promise((resolve, reject) => {
    const child = spawn(command, argv, {
      env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(size), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
        OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('close', (status, signal) => {
      if (status !== 0) return reject(new Error(`${path.basename(argv[0])} ${argv.slice(1).join(' ')}: rank ${rank} failed (status ${status}, signal ${signal})`));
      resolve(JSON.parse(out.trim().split('\n').pop()).results);
    });
  }));
  return Promise.all(runs);
}

/** Per repeat the slowest rank's sample, then the median over the repeats. */
function slowestRankMedian(perRank) {
  return median(perRank[0].map((_, k) => Math.max(...perRank.map((r) => r[k]))));
}

function torchVersion() {
  const probe = spawnSync('python3', ['-c', 'import torch, sys; sys.stdout.write(torch.__version__)'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop();
    return { error: `python3 cannot import torch (${why})` };
  }
  return { version: probe.stdout.trim() };
}

async function allReduceRows(torch) {
  const rows = [];
  const ours = ['node', [path.join(__dirname, 'distributed-rank.js'), 'allreduce', SIZES.join(',')]];
  const theirs = ['python3', [path.join(__dirname, 'distributed_torch.py'), SIZES.join(',')]];
  for (const size of RANKS) {
    const medians = { ours: [], torch: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [who, [cmd, argv]] of [['ours', ours], ['torch', theirs]]) {
        if (who === 'torch' && torch.error) continue;
        log(`all-reduce: ${who}, ${size} ranks, round ${round + 1} of ${ROUNDS}`);
        const res = await job(cmd === 'node' ? process.execPath : cmd, argv, size);
        medians[who].push(Object.fromEntries(SIZES.map((n) => [n, slowestRankMedian(res.map((r) => r.times[String(n)]))])));
      }
    }
    for (const n of SIZES) {
      const best = (who) => (medians[who].length ? Math.min(...medians[who].map((m) => m[n])) : undefined);
      const o = best('ours');
      const t = best('torch');
      rows.push({ ranks: size, n, oursMs: o, oursGBs: (4 * n) / (o / 1e3) / 1e9, torchMs: t, torchGBs: t === undefined ? undefined : (4 * n) / (t / 1e3) / 1e9,
        torchOverOurs: t === undefined ? undefined : t / o, rounds: medians.ours.map((m) => m[n]), torchRounds: medians.torch.map((m) => m[n]) });
    }
  }
  return rows;
}

async function optimizerRows() {
  log('DistributedOptimizer: 2 ranks');
  const res = await job(process.execPath, [path.join(__dirname, 'distributed-rank.js'), 'optimizer'], 2);
  return Object.keys(res[0]).map((model) => {
    const per = (key) => slowestRankMedian(res.map((r) => r[model][key]));
    const step = per('step');
    const allReduce = per('allReduce');
    // Every part as the step itself: per repeat the slowest rank, then the median over repeats
    // (a median over both ranks' local steps had compared the slowest rank's step with a
    // typical rank's parts).
    const local = per('local');
    return { model, elements: res[0][model].elements, stepMs: step, allReduceMs: allReduce, localMs: local, ratio: step / (allReduce + local), repeats: res[0][model].step.length };
  });
}

async function softmaxRows() {
  const rows = [];
  for (const size of [1, 2]) {
    log(`softmax training: ${size} rank(s)`);
    const res = await job(process.execPath, [path.join(__dirname, 'distributed-rank.js'), 'softmax'], size);
    const seconds = Math.max(...res.map((r) => r.seconds));
    rows.push({ ranks: size, samples: res[0].samples, seconds, samplesPerSecond: res[0].samples / seconds, loss: res[0].loss });
  }
  return rows;
}

function render(r) {
  const lines = [];
  lines.push('# optim/distributed benchmark', '');
  lines.push(`${r.env.date} · ${r.env.cpu} · ${r.env.cores} cores · load average ${r.env.loadAverage.join(', ')} (before) → ${r.loadAfter.join(', ')} (after) · node ${r.env.node} · ` +
    `${r.torch.version ? `torch ${r.torch.version}` : `no torch: ${r.torch.error}`} · loopback`, '');
  lines.push(`## All-reduce, float32 sum (median of repeats, slowest rank per repeat; lowest of ${ROUNDS} jobs)`, '');
  lines.push(table(['ranks', 'elements', 'ours ms', 'ours GB/s', 'torch gloo ms', 'torch GB/s', 'torch / ours'],
    r.allReduce.map((x) => [x.ranks, sizeName(x.n), fmt(x.oursMs), fmt(x.oursGBs), fmt(x.torchMs), fmt(x.torchGBs), x.torchOverOurs === undefined ? '–' : `${fmt(x.torchOverOurs)}×`])));
  lines.push('', 'GB/s: the array\'s bytes (4·n) over the time. torch / ours above 1: ours is faster.', '');
  lines.push('## DistributedOptimizer(Adam).step() on 2 ranks', '');
  lines.push(table(['model', 'elements', 'step ms', 'all-reduce ms', 'local Adam.step ms', 'step / (all-reduce + local)'],
    r.optimizer.map((x) => [x.model, x.elements, fmt(x.stepMs), fmt(x.allReduceMs), fmt(x.localMs), fmt(x.ratio)])));
  lines.push('', 'Each column: per repeat the slowest rank, then the median over the repeats; the three measured in alternation, the step and the all-reduce after a barrier each. Target: ≤ 1.1.', '');
  lines.push('## The demo\'s softmax training (Adam, global batches of 128, float32, synthetic Fashion-MNIST)', '');
  lines.push(table(['ranks', 'samples', 'seconds', 'samples/s', 'final loss'],
    r.softmax.map((x) => [x.ranks, x.samples, fmt(x.seconds), fmt(x.samplesPerSecond), fmt(x.loss, 4)])));
  lines.push('', '## Targets', '');
  for (const t of r.targets) lines.push(`- ${t.met ? 'met' : 'NOT met'}: ${t.name}: ${t.value}`);
  return `${lines.join('\n')}\n`;
}

function targets(r) {
  const out = [];
  for (const x of r.allReduce.filter((row) => row.n >= 1e6 && row.torchMs !== undefined)) {
    out.push({ name: `all-reduce ${sizeName(x.n)} elements, ${x.ranks} ranks, at least as fast as torch's gloo`, value: `${fmt(x.oursMs)} ms vs ${fmt(x.torchMs)} ms`, met: x.oursMs <= x.torchMs });
  }
  for (const x of r.optimizer) {
    out.push({ name: `DistributedOptimizer step (${x.model}) ≤ 1.1 × (all-reduce + local step)`, value: `${fmt(x.ratio)}×`, met: x.ratio <= 1.1 });
  }
  return out;
}

async function main() {
  if (!distributedAvailable()) {
    console.error('bench:distributed: the addon has no Gloo (apt-get install libgloo-dev; npm run build:native)');
    process.exit(1);
  }
  const env = environment(backendInfo());
  const torch = torchVersion();
  if (torch.error) log(`torch peer not measured: ${torch.error}`);
  const r = { env, torch, allReduce: await allReduceRows(torch), optimizer: await optimizerRows(), softmax: await softmaxRows() };
  r.loadAfter = os.loadavg().map((x) => +x.toFixed(2));
  r.targets = targets(r);
  const md = render(r);
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'distributed.md'), md);
  fs.writeFileSync(path.join(dir, 'distributed.json'), `${JSON.stringify(r, null, 2)}\n`);
  process.stdout.write(md);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
