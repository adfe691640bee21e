/**
 * Issue 12, item 2: the packed tarball, installed as a user installs it. The package is packed as
 * `npm pack` packs it: its `prepack` (scripts/prebuild.js: prebuilds/linux-x64/optim.node,
 * baseline x86-64, built-in BLAS; skipped when already built from the same sources) and its
 * `prepare` (scripts/build-ts.js, here into a private staging folder so the shared dist/ is never
 * rewritten), then `npm pack --ignore-scripts` of that folder. The tarball is installed into a new
 * project in another temporary folder with `npm ci --ignore-scripts --offline` (no compiler, no
 * install script, no network: its two dependencies come from the npm cache `npm ci` filled),
 * and the installed copy must run the native backend, fall back to the wasm backend once its
 * prebuilds/ is removed (in a worker thread too) and to the reference backend once wasm/ is too,
 * and work from ESM `import`, CJS `require` and `tsc --strict`.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string; version: string; files: string[]; scripts: Record<string, string>; dependencies: Record<string, string>;
};
const npmCli = path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
const tscCli = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

let tmp = '';
let stage = '';
let project = '';
let tarball = '';
let files: string[] = [];
const timings: Record<string, number> = {};

/** The environment of every child: no backend override, no addon path, no npm config from a parent npm run. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('OPTIM_') || k.startsWith('npm_') || k === 'NODE_OPTIONS' || k.startsWith('VITEST')) continue;
    env[k] = v;
  }
  return env;
}

interface RunResult { status: number | null; stdout: string; stderr: string }

/** Runs a command without blocking the test worker (a long spawnSync starves vitest's RPC). */
function run(cmd: string, args: string[], cwd: string, label: string): Promise<RunResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (status, signal) => {
      timings[label] = Math.round(performance.now() - t0);
      if (status !== 0) {
        reject(new Error(`${label}: ${[cmd, ...args].join(' ')} exited with ${status ?? signal}\n${stdout}\n${stderr}`));
      } else {
        resolve({ status, stdout, stderr });
      }
    });
  });
}

/** Runs a script in the consumer project with node; returns the JSON it prints last. */
async function nodeIn(label: string, args: string[]): Promise<any> {
  const r = await run(process.execPath, args, project, label);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

const installed = (): string => path.join(project, 'node_modules', pkg.name);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'optim-pack-'));
  // Under node_modules/, as in exports.test.ts: build-ts loads the built files, which need the
  // package's dependencies.
  const cache = path.join(root, 'node_modules', '.cache', 'optim-pack-test');
  fs.mkdirSync(cache, { recursive: true });
  stage = fs.mkdtempSync(path.join(cache, 'stage-'));
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'optim-consumer-'));
  // prepack: the prebuild (compiled once per source change, under the build lock).
  await run(process.execPath, [path.join(root, 'scripts', 'prebuild.js')], root, 'prepack (prebuild)');
  // The package's files (package.json "files"), then prepare (the TypeScript build) into the stage.
  for (const f of ['package.json', 'README.md', 'binding.gyp', 'CMakeLists.txt']) fs.copyFileSync(path.join(root, f), path.join(stage, f));
  for (const d of ['native', 'scripts', 'prebuilds', 'wasm']) {
    fs.cpSync(path.join(root, d), path.join(stage, d), { recursive: true, filter: (src) => !src.includes(`${path.sep}golden`) });
  }
  await run(process.execPath, [path.join(root, 'scripts', 'build-ts.js'), '--outDir', path.join(stage, 'dist')], root, 'prepare (build-ts)');
  const packed = await run(process.execPath, [npmCli, 'pack', '--ignore-scripts', '--json', '--pack-destination', tmp], stage, 'npm pack');
  const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(tmp, info[0]!.filename);
  files = info[0]!.files.map((f) => f.path);
  // A new project depending on the tarball, installed offline with scripts disabled. `npm install
  // --offline <tarball>` alone fails (ENOTCACHED): `npm ci` leaves the dependencies' tarballs in
  // the npm cache but not their registry metadata, which resolving a range needs. So the project
  // carries a lockfile pinning them by the integrity this repository's lockfile records, and
  // `npm ci --offline` takes them from the cache by that hash, as a user's lockfile would.
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, any> };
  const dep = (name: string) => {
    const e = lock.packages[`node_modules/${name}`];
    return { ...e, resolved: `https://registry.npmjs.org/${name}/-/${name}-${e.version}.tgz` };
  };
  const manifest = { name: 'consumer', version: '1.0.0', private: true, dependencies: { [pkg.name]: `file:${tarball}` } };
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify(manifest, null, 2));
  fs.writeFileSync(path.join(project, 'package-lock.json'), JSON.stringify({
    ...manifest, lockfileVersion: 3, requires: true,
    packages: {
      '': manifest,
      [`node_modules/${pkg.name}`]: { version: pkg.version, resolved: `file:${tarball}`, dependencies: pkg.dependencies },
      ...Object.fromEntries(Object.keys(pkg.dependencies).map((n) => [`node_modules/${n}`, dep(n)])),
    },
  }, null, 2));
  await run(process.execPath, [npmCli, 'ci', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], project, 'npm ci --offline');
}, 900_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  if (stage) fs.rmSync(stage, { recursive: true, force: true });
  if (project) fs.rmSync(project, { recursive: true, force: true });
  console.log(`pack-install timings (ms): ${JSON.stringify(timings)}`);
});

describe('npm pack', () => {
  it('prepack makes the prebuild, prepare the TypeScript build', () => {
    expect(pkg.scripts.prepack).toBe('node scripts/prebuild.js');
    expect(pkg.scripts.prebuild).toBe('node scripts/prebuild.js');
    expect(pkg.scripts.prepare).toBe('node scripts/build-ts.js');
    expect(pkg.files).toContain('prebuilds');
  });

  it('ships prebuilds/linux-x64/optim.node, the TypeScript build and the sources, and no build output', () => {
    if (process.platform === 'linux' && process.arch === 'x64') expect(files).toContain('prebuilds/linux-x64/optim.node');
    expect(files).toContain(`prebuilds/${process.platform}-${process.arch}/optim.node`);
    for (const f of ['package.json', 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'binding.gyp', 'scripts/install.js', 'wasm/optim.wasm']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /^(build|build-prebuild|node_modules|test)\//.test(f) || f.includes('golden'))).toEqual([]);
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['node-gyp-build', 'pure-rand']);
  });
});

describe('installed offline with --ignore-scripts', () => {
  it('compiled nothing: the installed copy has no build/', () => {
    expect(fs.existsSync(path.join(installed(), 'build'))).toBe(false);
    expect(fs.existsSync(path.join(installed(), 'prebuilds', `${process.platform}-${process.arch}`, 'optim.node'))).toBe(true);
  });

  it('require: the native backend from the prebuild, stepping Adam', async () => {
    const out = await nodeIn('require', ['-e', `
      const o = require('optim');
      const w = o.param(new Float32Array([1, 2, 3]), 'w');
      w.grad.set([0.5, -1, 2]);
      const opt = new o.Adam([w], { lr: 0.1 });
      opt.step();
      console.log(JSON.stringify({ info: o.backendInfo(), w: Array.from(w.data),
        addon: require.resolve('optim') }));`]);
    expect(out.info.backend).toBe('native');
    expect(out.info.blas).toBe('builtin');
    expect(out.info.fallbackReason).toBeUndefined();
    expect(out.addon.startsWith(fs.realpathSync(project)) || out.addon.startsWith(project)).toBe(true);
    // Adam's first step moves each weight by lr against the sign of its gradient.
    expect(out.w[0]).toBeCloseTo(0.9, 5);
    expect(out.w[1]).toBeCloseTo(2.1, 5);
    expect(out.w[2]).toBeCloseTo(2.9, 5);
  }, 60_000);

  it('import: the same single instance from ESM, and the subpaths', async () => {
    const script = path.join(project, 'esm.mjs');
    fs.writeFileSync(script, `
      import { Adam, param, backendInfo } from 'optim';
      import { matmul } from 'optim/linalg';
      import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)('optim');
      const w = param(new Float32Array([1]), 'w');
      w.grad[0] = 1;
      new Adam([w], { lr: 0.5 }).step();
      const c = matmul(new Float64Array([1, 2, 3, 4]), new Float64Array([1, 0, 0, 1]), { m: 2, n: 2, k: 2 });
      console.log(JSON.stringify({ backend: backendInfo().backend, same: cjs.Adam === Adam, w: w.data[0], c: Array.from(c) }));
    `);
    const out = await nodeIn('import', [script]);
    expect(out).toEqual({ backend: 'native', same: true, w: expect.closeTo(0.5, 6), c: [1, 2, 3, 4] });
  }, 60_000);

  it('tsc --strict against the shipped declarations, from an ES module and a CommonJS module', async () => {
    fs.writeFileSync(path.join(project, 'esm.mts'), `
      import { Adam, param, backendInfo, type BackendInfo } from 'optim';
      import { matmul } from 'optim/linalg';
      const w = param(new Float32Array(4), 'w');
      const opt: Adam = new Adam([w], { lr: 1e-3 });
      opt.step();
      const info: BackendInfo = backendInfo();
      const name: string = info.backend;
      const c: Float64Array = matmul(new Float64Array(4), new Float64Array(4), { m: 2, n: 2, k: 2 });
      export { name, c };
    `);
    fs.writeFileSync(path.join(project, 'cjs.cts'), `
      import optim = require('optim');
      const w = optim.param(new Float32Array(4), 'w');
      new optim.SGD([w], { lr: 0.1 }).step();
      export const backend: string = optim.backendInfo().backend;
    `);
    // A deliberate type error must be reported (so the check is not vacuous).
    fs.writeFileSync(path.join(project, 'bad.mts'), `
      import { Adam, param } from 'optim';
      new Adam([param(new Float32Array(1), 'w')], { lr: 'fast' });
    `);
    // One tsc run (no skipLibCheck: the shipped .d.ts files are checked too): its only error is bad.mts's.
    const args = [tscCli, '--strict', '--noEmit', '--pretty', 'false', '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), 'esm.mts', 'cjs.cts', 'bad.mts'];
    const failed = await run(process.execPath, args, project, 'tsc --strict').then(() => undefined, (e: Error) => e);
    const errors = (failed?.message ?? '').split('\n').filter((l) => /error TS\d+/.test(l));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^bad\.mts\(3,\d+\): error TS2322/);
  }, 180_000);

  it('without prebuilds/: the wasm backend, saying why, in the main thread and a worker with the same bits', async () => {
    fs.rmSync(path.join(installed(), 'prebuilds'), { recursive: true, force: true });
    const train = `
      const o = require('optim');
      const w = o.param(new Float32Array(5000).map((_, i) => Math.sin(i)), 'w');
      const opt = new o.AdamW([w], { lr: 0.01 });
      for (let s = 0; s < 10; s++) { w.grad.set(w.data.map((x) => Math.cos(3 * x))); opt.step(); }
      const result = { info: o.backendInfo(), bits: Array.from(new Uint32Array(w.data.buffer)).join() };`;
    fs.writeFileSync(path.join(project, 'train-worker.js'), `${train}\nrequire('node:worker_threads').parentPort.postMessage(result);\n`);
    const out = await nodeIn('no prebuilds', ['-e', `
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.code));
      ${train}
      const { Worker } = require('node:worker_threads');
      new Worker(require('node:path').resolve('train-worker.js')).on('message', (m) => console.log(JSON.stringify({
        info: result.info, warnings, worker: m.info.backend, sameBits: m.bits === result.bits })));`]);
    expect(out.info.backend).toBe('wasm');
    expect(out.info.simd).toBe('wasm-simd128');
    expect(out.info.fallbackReason).toMatch(/No native build was found/);
    expect(out.warnings).toEqual(['OPTIM_NATIVE_UNAVAILABLE']);
    expect(out.worker).toBe('wasm');
    expect(out.sameBits).toBe(true);
  }, 60_000);

  it('without prebuilds/ and wasm/: the reference backend, saying why', async () => {
    fs.rmSync(path.join(installed(), 'prebuilds'), { recursive: true, force: true });
    fs.rmSync(path.join(installed(), 'wasm'), { recursive: true, force: true });
    const out = await nodeIn('no prebuilds, no wasm', ['-e', `
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.code));
      const o = require('optim');
      const w = o.param(new Float32Array([1, 2, 3]), 'w');
      w.grad.set([0.5, -1, 2]);
      new o.Adam([w], { lr: 0.1 }).step();
      setImmediate(() => console.log(JSON.stringify({ info: o.backendInfo(), w: Array.from(w.data), warnings })));`]);
    expect(out.info.backend).toBe('reference');
    expect(out.info.fallbackReason).toMatch(/No native build was found.*; wasm: .*optim\.wasm/);
    expect(out.warnings).toEqual(['OPTIM_NATIVE_UNAVAILABLE']);
    expect(out.w[0]).toBeCloseTo(0.9, 5);
    expect(out.w[2]).toBeCloseTo(2.9, 5);
  }, 60_000);
});
