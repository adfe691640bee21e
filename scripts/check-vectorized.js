#!/usr/bin/env node
'use strict';
// `npm run check:vectorized`: every loop of every step kernel (native/kernels/<name>.h) must
// vectorize in every x86 instruction set (isa_avx512.cc, isa_avx2.cc, isa_baseline.cc), for every
// flag combination and state type the registry instantiates. Compiles each with the addon's own
// flags (binding.gyp's "cflags") plus -fopt-info-vec-all and fails on any "couldn't vectorize
// loop" located in a kernel header, with GCC's reason.
//
// Why: a loop the vectorizer gives up on still computes the same bits, so no test sees it, and it
// runs one element at a time. Adam with weight decay or AMSGrad did (2.8 ns per element against
// 0.26: a select on a loop-invariant bool), as did Lion, Rprop and Yogi on AVX2 and SSE2 (nested
// selects). GCC only: other compilers, or another architecture, skip with a note.
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const cxx = process.env.CXX || 'g++';
const SETS = ['isa_avx512.cc', 'isa_avx2.cc', 'isa_baseline.cc'];

function skip(why) {
  console.log(`check:vectorized: skipped (${why})`);
  process.exit(0);
}

if (process.arch !== 'x64') skip(`this is ${process.arch}; the check covers the x86-64 sets`);
const version = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
if (version.status !== 0) skip(`${cxx} not found`);
if (!/\bg\+\+|GCC|Free Software Foundation/.test(version.stdout) || /clang/i.test(version.stdout)) skip(`${cxx} is not GCC`);

// The addon's flags, as binding.gyp gives them to node-gyp (one place for them).
const gyp = fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8');
const cflags = JSON.parse(/"cflags":\s*(\[[^\]]*\])/.exec(gyp)[1]);
const cxxflags = JSON.parse(/"cflags_cc":\s*(\[[^\]]*\])/.exec(gyp)[1]);

const kernelHeader = /native\/kernels\/(\w+)\.h:(\d+):\d+: (missed|optimized): (.*)/;
let failed = 0;
for (const set of SETS) {
  const out = path.join(os.tmpdir(), `optim-vec-${process.pid}.o`);
  const r = spawnSync(cxx, [...cflags, ...cxxflags, '-fopt-info-vec-all', '-c', path.join('native/kernels', set), '-o', out], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  fs.rmSync(out, { force: true });
  if (r.status !== 0) {
    console.error(r.stderr.split('\n').filter((l) => /error/.test(l)).slice(0, 20).join('\n'));
    console.error(`check:vectorized: ${set} did not compile`);
    process.exit(1);
  }
  const lines = r.stderr.split('\n');
  const vectorized = new Set();
  const missed = new Map(); // "header:line" -> reasons
  for (let i = 0; i < lines.length; i++) {
    const m = kernelHeader.exec(lines[i]);
    if (!m) continue;
    const at = `native/kernels/${m[1]}.h:${m[2]}`;
    if (m[3] === 'optimized' && /loop vectorized/.test(m[4])) vectorized.add(m[1]);
    if (m[3] === 'missed' && /couldn't vectorize loop/.test(m[4])) {
      // GCC gives its reason on the next lines ("not vectorized: ...").
      const reason = lines.slice(i + 1, i + 4).find((l) => /not vectorized|not supported/.test(l)) ?? '';
      const why = reason.replace(/^.*?(missed:\s*)/, '').trim();
      missed.set(at, [...new Set([...(missed.get(at) ?? []), why])]);
    }
  }
  for (const [at, why] of missed) {
    failed++;
    console.error(`check:vectorized: ${set}: the loop at ${at} is not vectorized (${why.filter(Boolean).join('; ') || 'no reason given'})`);
  }
  console.log(`check:vectorized: ${set}: loops vectorized in ${vectorized.size} kernel headers, ${missed.size} loop(s) not`);
  if (vectorized.size === 0) {
    console.error(`check:vectorized: ${set}: no kernel loop reported at all; is this GCC with -fopt-info?`);
    failed++;
  }
}
if (failed > 0) process.exit(1);
console.log('check:vectorized: every step kernel loop vectorizes in every x86 set');
