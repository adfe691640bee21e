#!/usr/bin/env node
'use strict';
// `npm run bench`: one run of every measurement, printed as Markdown and written to
// bench/results/latest.{md,json} (earlier reports live in git history, not as files). Needs dist/ (npm run build:ts).
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
if (!fs.existsSync(path.join(root, 'dist', 'index.js'))) {
  console.error('bench: dist/ is missing; run `npm run build:ts` first');
  process.exit(1);
}

const { backendInfo, setBackend } = require('../dist/index.js');
const { environment } = require('./env.js');
const { runOptimizerSuite } = require('./optimizer-suite.js');
const { runLinalgBench, MATMUL_SIZES, CHOLESKY_SIZES, REFERENCE_MAX } = require('./linalg.js');
const { loadPeers, ML_MATRIX_MAX } = require('./peers.js');
const { runSeparate } = require('./separate.js');
const { runMinimizeSuite } = require('./minimize-suite.js');
const { runTorchPeer } = require('./torch-peer.js');
const { runWholeTensor } = require('./whole-tensor.js');
const { loadNative } = require('../dist/backend/native.js');
const { render } = require('./report.js');
const { gc } = require('./timing.js');

const SIZES = [1e3, 1e4, 1e5, 1e6, 1e7];
const log = (line) => process.stderr.write(`${line}\n`);

function kernelSuite(dtype) {
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'kernel-suite.js'), dtype, SIZES.join(',')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`bench: the ${dtype} kernel suite failed (status ${r.status}, signal ${r.signal})`);
  return JSON.parse(r.stdout);
}

async function linalgSuite() {
  const peers = await loadPeers();
  for (const p of peers) if (p.error) log(`linalg: ${p.name} not measured: ${p.error}`);
  const rows = runLinalgBench({ peers, log });
  return {
    matmulSizes: MATMUL_SIZES,
    choleskySizes: CHOLESKY_SIZES,
    limits: { reference: REFERENCE_MAX, mlMatrix: ML_MATRIX_MAX },
    maxThreads: loadNative().addon?.info().threads ?? 1,
    peers: peers.map(({ name, dtypes, hasCholesky, note, error }) => ({ name, dtypes, hasCholesky, note, error })),
    rows,
    separate: runSeparate(MATMUL_SIZES, log),
  };
}

async function main() {
  const t0 = Date.now();
  setBackend('auto');
  const env = environment(backendInfo());
  const kernels = ['float32', 'float64'].map(kernelSuite);
  gc();
  const optimizer = runOptimizerSuite(log);
  gc();
  const linalg = await linalgSuite();
  gc();
  const minimize = runMinimizeSuite(log);
  gc();
  const wholeTensor = runWholeTensor(log);
  gc();
  const torchPeer = runTorchPeer(SIZES.filter((n) => n >= 1e3), log);
  env.loadAverageEnd = require('node:os').loadavg().map((x) => +x.toFixed(2));
  const results = { env, durationS: (Date.now() - t0) / 1e3, sizes: SIZES, kernels, optimizer, linalg, minimize, torchPeer, wholeTensor };
  const md = render(results);

  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  for (const [name, body] of [['latest.md', md], ['latest.json', json]]) {
    const file = path.join(dir, name);
    fs.writeFileSync(`${file}.tmp`, body);
    fs.renameSync(`${file}.tmp`, file);
  }
  process.stdout.write(md);
  log('bench: wrote bench/results/latest.md and latest.json');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
