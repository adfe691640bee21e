#!/usr/bin/env node
// `npm run prebuild` (and `prepack`, so every `npm pack` / `npm publish` ships one): the prebuilt
// binary for this platform, prebuilds/<platform>-<arch>/optim.node, loaded by node-gyp-build
// with no compiler and no install script.
//
// What makes it portable:
//   - baseline ISA: binding.gyp has no -march, so the binary runs on any x86-64; the AVX2+FMA and
//     AVX-512 kernels are compiled per function (target attributes) and picked at run time;
//   - no system libraries beyond libc/libstdc++: built with OPTIM_BLAS=builtin (the built-in
//     linear algebra), never against the OpenBLAS a developer machine may have;
//   - Node-API (N-API 8), so one binary serves every Node >= 20.
//
// prebuildify runs `node-gyp rebuild` in the folder it builds, which deletes that folder's build/.
// So it builds a staged copy of the native sources (build-prebuild/src), never the checkout
// (whose build/Release/optim.node is the development build), with the headers of the running
// Node (npm_config_nodedir: nothing is downloaded), under /tmp/optim-build.lock (builds never
// overlap). It is skipped when the binary exists and was built from the same sources (a hash in
// build-prebuild/sources.sha256); `--force` rebuilds.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const work = path.join(root, 'build-prebuild');
const stage = path.join(work, 'src');
const stampFile = path.join(work, 'sources.sha256');
const outDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const binary = path.join(outDir, 'optim.node');
const force = process.argv.includes('--force');

/** The files the addon is built from, relative to the package root. */
function inputs() {
  // The scripts binding.gyp runs (the source list, the BLAS and Gloo probes, ...).
  const gyp = fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8');
  const scripts = [...new Set([...gyp.matchAll(/scripts\/[\w.-]+\.js/g)].map((m) => m[0]))];
  const files = ['package.json', 'binding.gyp', ...scripts];
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (/\.(cc|h|inc|txt)$/.test(e.name)) files.push(rel);
    }
  };
  walk('native');
  return files.sort();
}

function hashOf(files) {
  const h = crypto.createHash('sha256');
  h.update(`node-api 8 ${process.platform} ${process.arch} blas=builtin gloo=none\n`);
  for (const f of files) {
    h.update(`${f}\n`);
    // Of package.json only what the build reads (the name names the file, the version is compiled in).
    if (f === 'package.json') {
      const { name, version } = JSON.parse(fs.readFileSync(path.join(root, f), 'utf8'));
      h.update(`${name}@${version}\n`);
    } else {
      h.update(fs.readFileSync(path.join(root, f)));
    }
  }
  return h.digest('hex');
}

function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, 'include/node/node_api.h')) ? prefix : undefined;
}

function main() {
  const files = inputs();
  const hash = hashOf(files);
  if (!force && fs.existsSync(binary) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8').trim() === hash) {
    console.log(`optim: ${path.relative(root, binary)} is up to date`);
    return 0;
  }
  fs.rmSync(stage, { recursive: true, force: true });
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(stage, f));
  }
  let prebuildify;
  let nodeGyp;
  try {
    prebuildify = require.resolve('prebuildify/bin.js', { paths: [root] });
    nodeGyp = path.join(root, 'node_modules', '.bin', 'node-gyp');
    if (!fs.existsSync(nodeGyp)) throw new Error('no node-gyp');
  } catch {
    console.error('optim: prebuildify and node-gyp are devDependencies; run `npm ci` first');
    return 1;
  }
  const env = { ...process.env, OPTIM_BLAS: 'builtin', OPTIM_GLOO: 'none', PREBUILD_NODE_GYP: nodeGyp };
  const dir = nodeDir();
  if (dir) env.npm_config_nodedir = dir;
  const cmd = [process.execPath, prebuildify, '--napi', '--strip', '--target', `node@${process.versions.node}`,
    '--cwd', stage, '--out', root];
  const locked = process.platform === 'linux' && spawnSync('flock', ['--version']).status === 0;
  console.log(`optim: building ${path.relative(root, binary)} (baseline ISA, built-in BLAS${dir ? `, headers from ${dir}` : ''})`);
  fs.rmSync(outDir, { recursive: true, force: true });
  const r = locked
    ? spawnSync('flock', ['/tmp/optim-build.lock', ...cmd], { stdio: 'inherit', env })
    : spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(`optim: prebuildify exited with ${r.status ?? r.signal}`);
    return 1;
  }
  // prebuildify names the file after package.json's name; check it and what it was built with.
  if (!fs.existsSync(binary)) {
    console.error(`optim: expected ${binary}, found ${fs.readdirSync(outDir).join(', ')}`);
    return 1;
  }
  const makefile = fs.readdirSync(path.join(stage, 'build'))
    .filter((f) => f.endsWith('.mk'))
    .map((f) => fs.readFileSync(path.join(stage, 'build', f), 'utf8'))
    .join('\n');
  if (/-march=|-mavx|-mfma/.test(makefile)) {
    console.error('optim: the prebuild must be baseline x86-64, but binding.gyp adds -march/-mavx/-mfma');
    return 1;
  }
  // Only the C and C++ runtimes: no OpenBLAS, LAPACKE, Gloo or other library a user may lack.
  const needed = spawnSync('readelf', ['-d', binary], { encoding: 'utf8' });
  if (needed.status === 0) {
    const libs = [...needed.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    const extra = libs.filter((l) => !/^(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|ld-linux[-\w]*)\.so/.test(l));
    if (extra.length) {
      console.error(`optim: the prebuild links ${extra.join(', ')}; it may link only the C and C++ runtimes`);
      return 1;
    }
  }
  const check = spawnSync(process.execPath, ['-e',
    `const a = require(${JSON.stringify(binary)}); const i = a.info(); if (i.blas !== 'builtin') process.exit(2); console.log(JSON.stringify(i));`],
  { encoding: 'utf8' });
  if (check.status !== 0) {
    console.error(`optim: the prebuild does not load: ${check.stderr || `exit ${check.status}`}`);
    return 1;
  }
  fs.writeFileSync(stampFile, `${hash}\n`);
  console.log(`optim: ${path.relative(root, binary)} (${fs.statSync(binary).size} bytes) ${check.stdout.trim()}`);
  return 0;
}

process.exitCode = main();
