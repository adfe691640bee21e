#!/usr/bin/env node
// `npm install` hook: use a prebuilt binary when one matches and loads (prebuilds/, via
// node-gyp-build; then nothing is compiled), otherwise build with node-gyp against the headers of
// the Node that runs this script, so no header download is needed (`--nodedir` = the install
// prefix holding include/node/node_api.h). In a git checkout only build/Release counts: a
// developer gets the addon of the sources at hand (with OpenBLAS and Gloo when installed), not
// the portable prebuild that `npm pack` makes.
//
// A failed build does not fail the install: the package falls back to the WebAssembly backend
// (else the pure-TypeScript one) and says so once at load. Set OPTIM_REQUIRE_NATIVE=1 (CI does) to make it fatal.
// `--force` rebuilds even when a binary exists.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');

/** A binary node-gyp-build would pick (build/Release, else prebuilds/<platform>-<arch>) that loads here. */
function loadableBinary() {
  try {
    const file = fs.existsSync(path.join(root, '.git'))
      ? path.join(root, 'build', 'Release', 'optim.node')
      : require('node-gyp-build').path(root);
    require(file);
    return file;
  } catch {
    return undefined;
  }
}

function nodeGypCommand() {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] }));
  } catch {
    // not a dev install: npm's bundled node-gyp (npm_config_node_gyp) is the usual source
  }
  const npmDir = path.dirname(path.dirname(process.execPath));
  candidates.push(path.join(npmDir, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'));
  return candidates.find((c) => c && fs.existsSync(c));
}

function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, 'include/node/node_api.h')) ? prefix : undefined;
}

function main() {
  const found = force ? undefined : loadableBinary();
  if (found) {
    console.log(`optim: using ${path.relative(root, found)}, no build needed`);
    return 0;
  }
  const gyp = nodeGypCommand();
  if (!gyp) return fail('node-gyp not found (install it, or use a prebuilt binary)');
  const args = [gyp, 'rebuild', '--release'];
  const dir = nodeDir();
  if (dir) args.push(`--nodedir=${dir}`);
  console.log(`optim: building the native addon (${dir ? `headers from ${dir}` : 'downloaded headers'})`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) return fail(`node-gyp exited with ${r.status ?? r.signal}`);
  return 0;
}

function fail(why) {
  const required = process.env.OPTIM_REQUIRE_NATIVE === '1';
  console.error(`optim: native build failed: ${why}.` +
    (required ? '' : ' The WebAssembly backend will be used instead.'));
  return required ? 1 : 0;
}

process.exitCode = main();
