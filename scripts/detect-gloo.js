#!/usr/bin/env node
// Prints 'gloo' when Gloo (gloo/rendezvous/store.h, gloo/transport/tcp/device.h + libgloo) is
// installed where the compiler looks (Debian: `apt-get install libgloo-dev`), else 'none'.
// binding.gyp and CMakeLists.txt use it, as they use detect-blas.js; OPTIM_GLOO=none forces a
// build without it (optim/distributed then throws a DistributedError saying so).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function find(dirs, names) {
  return dirs.some((d) => names.some((n) => fs.existsSync(path.join(d, n))));
}

function detect() {
  const forced = (process.env.OPTIM_GLOO || '').toLowerCase();
  if (forced === 'none' || forced === 'gloo') return forced;
  if (process.platform === 'win32') return 'none';
  const inc = ['/usr/include', '/usr/local/include'];
  const lib = ['/usr/lib', '/usr/local/lib', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64'];
  const ok = find(inc, ['gloo/rendezvous/store.h']) && find(inc, ['gloo/transport/tcp/device.h']) &&
    find(lib, ['libgloo.so', 'libgloo.a']);
  return ok ? 'gloo' : 'none';
}

process.stdout.write(detect());
