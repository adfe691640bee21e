#!/usr/bin/env node
// `npm run build:wasm`: wasm/optim.wasm, the step kernels and the built-in linear algebra of
// native/kernels/ compiled for wasm32 with SIMD128 by clang (Debian: `apt-get install clang lld`),
// no C or C++ library (the freestanding headers in native/wasm/include stand in for the ones the
// kernels include; native/wasm/abi.cc has the heap behind new[]). The .wasm is
// committed, so an install never needs clang; the build is reproducible (same clang, same bytes,
// whatever the folder), and `--check` (CI) rebuilds it into a temporary folder and fails if the
// committed file differs.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'wasm', 'optim.wasm');
const check = process.argv.includes('--check');

function find(names) {
  for (const n of names) {
    if (spawnSync(n, ['--version'], { stdio: 'ignore' }).status === 0) return n;
  }
  return undefined;
}

const versions = ['', '-19', '-18', '-17', '-16', '-15', '-14'];
const clang = process.env.CLANGXX || find(versions.map((v) => `clang++${v}`));
const wasmLd = process.env.WASM_LD || find(versions.map((v) => `wasm-ld${v}`));
if (!clang || !wasmLd) {
  console.error('optim: build:wasm needs clang++ and wasm-ld (apt-get install clang lld)');
  process.exit(1);
}

// -ffp-contract=off and no -ffast-math, as the native build (binding.gyp); relative paths only,
// so the output does not depend on where the checkout lives.
const flags = ['--target=wasm32', '-msimd128', '-mbulk-memory', '-O3', '-std=c++17', '-ffreestanding', '-nostdinc++',
  '-isystem', 'native/wasm/include', '-I', 'native/kernels', '-fno-exceptions', '-fno-rtti', '-fno-math-errno',
  '-ffp-contract=off', '-fno-threadsafe-statics', '-Wall'];
// The linear algebra's sources as the native build compiles them (without OpenBLAS, and not for
// x86, so only the built-in baseline kernels: no FMA, 16-byte vectors).
const sources = ['native/wasm/isa_wasm.cc', 'native/wasm/abi.cc', 'native/kernels/gemm.cc', 'native/kernels/gram.cc',
  'native/kernels/cholesky.cc', 'native/kernels/eigh.cc'];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optim-wasm-'));
try {
  const objs = [];
  for (const src of sources) {
    const obj = path.join(tmp, `${path.basename(src, '.cc')}.o`);
    const r = spawnSync(clang, [...flags, '-c', src, '-o', obj], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) process.exit(1);
    objs.push(obj);
  }
  const wasm = path.join(tmp, 'optim.wasm');
  const r = spawnSync(wasmLd, ['--no-entry', '--strip-all', '-z', 'stack-size=1048576', '--initial-memory=2097152',
    ...objs, '-o', wasm], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(1);
  const built = fs.readFileSync(wasm);
  const version = spawnSync(clang, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  if (check) {
    const committed = fs.existsSync(out) ? fs.readFileSync(out) : Buffer.alloc(0);
    if (!built.equals(committed)) {
      console.error(`optim: wasm/optim.wasm differs from a fresh build (${version}); run npm run build:wasm and commit it`);
      process.exit(1);
    }
    console.log(`optim: wasm/optim.wasm matches a fresh build (${built.length} bytes, ${version})`);
  } else {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, built);
    console.log(`optim: wasm/optim.wasm (${built.length} bytes, ${version})`);
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
