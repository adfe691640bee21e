#!/usr/bin/env node
// Prints 'openblas' when OpenBLAS (cblas.h + libopenblas) and LAPACKE (lapacke.h + liblapacke)
// are installed where the compiler looks, else 'builtin'. binding.gyp and CMakeLists.txt use it;
// OPTIM_BLAS=builtin forces the built-in kernels (CI builds both ways).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function find(dirs, names) {
  return dirs.some((d) => names.some((n) => fs.existsSync(path.join(d, n))));
}

function detect() {
  const forced = (process.env.OPTIM_BLAS || '').toLowerCase();
  if (forced === 'builtin' || forced === 'openblas') return forced;
  if (process.platform === 'win32') return 'builtin';
  const inc = ['/usr/include', '/usr/local/include', '/usr/include/x86_64-linux-gnu',
    '/usr/include/aarch64-linux-gnu', '/usr/include/openblas'];
  const lib = ['/usr/lib', '/usr/local/lib', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64'];
  const ok = find(inc, ['cblas.h']) && find(inc, ['lapacke.h']) &&
    find(lib, ['libopenblas.so', 'libopenblas.a']) && find(lib, ['liblapacke.so', 'liblapacke.a']);
  return ok ? 'openblas' : 'builtin';
}

process.stdout.write(detect());
