/**
 * Issue 12, items 3 and 4: the package's entry points. `optim` (optimizers, schedules, clipping,
 * averaging, checkpoints, and everything else it exported before), `optim/linalg`,
 * `optim/objectives`, `optim/data`, `optim/tfjs` and `optim/distributed` (issue 11), each for
 * `require` and `import`, each typed.
 *
 * The package is built as `npm run build:ts` builds it (scripts/build-ts.js), into a private
 * package folder holding a copy of package.json, so this never rewrites the shared dist/ that
 * other test files or tools may be reading. In that folder the name `optim` resolves through
 * package.json's own "exports" (self-reference), exactly as it does for an installed copy:
 * child processes `require` and `import` every subpath, and tsc type-checks a CommonJS and an
 * ES module consumer against the emitted declarations.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
/** Under node_modules/, so the built files find the package's dependencies and the addon loader the package root. */
const pkgDir = path.join(root, 'node_modules', '.cache', 'optim-exports-test', `${process.pid}-${Date.now()}`);

const SUBPATHS = ['optim', 'optim/linalg', 'optim/objectives', 'optim/data', 'optim/tfjs', 'optim/distributed'] as const;
type Subpath = (typeof SUBPATHS)[number];

/** Names each entry point must hold (a sample: the full lists are compared between require and import). */
const MUST_HOLD: Record<Subpath, string[]> = {
  optim: ['Adam', 'AdamW', 'SGD', 'StepLR', 'CosineAnnealingLR', 'clipGradNorm', 'clipGradValue', 'AveragedModel', 'saveCheckpoint', 'loadCheckpoint', 'param', 'matmul', 'minibatches', 'linearRegression', 'LBFGS', 'Newton', 'minimize', 'backendInfo'],
  'optim/linalg': ['matmul', 'matmulAsync', 'gram', 'cholesky', 'choSolve', 'solveSPD', 'eigh', 'eighAsync', 'CholeskyError'],
  'optim/objectives': ['linearRegression', 'logisticRegression', 'softmaxRegression'],
  'optim/data': ['minibatches', 'Minibatches', 'permutation', 'uniformStream', 'readIdx', 'parseIdx', 'loadFashionMnist', 'syntheticFashionMnist', 'FASHION_MNIST_CLASSES'],
  'optim/tfjs': ['tfjsOptimizer', 'TfjsOptimizer', 'scheduleCallback'],
  'optim/distributed': ['initProcessGroup', 'ProcessGroup', 'distributedAvailable', 'DistributedOptimizer', 'broadcastParameters', 'broadcastOptimizerState', 'ZeroRedundancyOptimizer', 'DistributedError'],
};

function run(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd: pkgDir, encoding: 'utf8', timeout: 120_000, input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON a child prints on its last line. */
function lastJson(out: { status: number | null; stdout: string; stderr: string }): any {
  if (out.status !== 0) throw new Error(`child failed (${out.status}):\n${out.stdout}\n${out.stderr}`);
  const lines = out.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

beforeAll(() => {
  // Folders left by runs that were killed before afterAll.
  const parent = path.dirname(pkgDir);
  for (const name of fs.existsSync(parent) ? fs.readdirSync(parent) : []) {
    const full = path.join(parent, name);
    try {
      if (Date.now() - fs.statSync(full).mtimeMs > 3600_000) fs.rmSync(full, { recursive: true, force: true });
    } catch {
      // Removed by another run first.
    }
  }
  fs.mkdirSync(pkgDir, { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkgDir, 'package.json'));
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-ts.js'), '--outDir', path.join(pkgDir, 'dist')], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`build-ts failed (${r.status}, ${r.signal}):\n${r.stdout}\n${r.stderr}`);
}, 320_000);

afterAll(() => {
  fs.rmSync(pkgDir, { recursive: true, force: true });
});

describe('package.json "exports"', () => {
  it('lists exactly the entry points, each with types and default for import and require', () => {
    expect(Object.keys(pkg.exports)).toEqual(['.', './linalg', './objectives', './data', './tfjs', './distributed', './package.json']);
    for (const sub of SUBPATHS) {
      const key = sub === 'optim' ? '.' : `./${sub.slice('optim/'.length)}`;
      const dir = sub === 'optim' ? '' : `${sub.slice('optim/'.length)}/`;
      expect(pkg.exports[key], key).toEqual({
        import: { types: `./dist/${dir}index.d.mts`, default: `./dist/${dir}index.mjs` },
        require: { types: `./dist/${dir}index.d.ts`, default: `./dist/${dir}index.js` },
      });
      for (const file of ['index.js', 'index.mjs', 'index.d.ts', 'index.d.mts']) {
        expect(fs.existsSync(path.join(pkgDir, 'dist', dir, file)), `${sub}: dist/${dir}${file}`).toBe(true);
      }
    }
  });

  it('tfjs-core is an optional peer dependency (and a dev dependency with tfjs-layers)', () => {
    const p = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect(p.peerDependencies['@tensorflow/tfjs-core']).toBeDefined();
    expect(p.peerDependenciesMeta['@tensorflow/tfjs-core']).toEqual({ optional: true });
    expect(p.dependencies?.['@tensorflow/tfjs-core']).toBeUndefined();
    for (const d of ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers']) expect(p.devDependencies[d], d).toBeDefined();
  });
});

describe('require and import of every subpath', () => {
  let cjs: Record<string, string[]>;
  let esm: Record<string, string[]>;

  beforeAll(() => {
    cjs = lastJson(
      run([
        '-e',
        `const out = {};
         for (const s of ${JSON.stringify(SUBPATHS)}) out[s] = Object.keys(require(s)).sort();
         console.log(JSON.stringify(out));`,
      ]),
    );
    esm = lastJson(
      run([
        '--input-type=module',
        '-e',
        `const out = {};
         for (const s of ${JSON.stringify(SUBPATHS)}) out[s] = Object.keys(await import(s)).sort();
         console.log(JSON.stringify(out));`,
      ]),
    );
  }, 120_000);

  it.each(SUBPATHS)('%s: require and import resolve, hold the expected names, and the same ones', (sub) => {
    for (const name of MUST_HOLD[sub]) {
      expect(cjs[sub], `require('${sub}').${name}`).toContain(name);
      expect(esm[sub], `import { ${name} } from '${sub}'`).toContain(name);
    }
    expect(esm[sub].filter((n) => n !== 'default')).toEqual(cjs[sub]);
  });

  it('the subpaths are parts of the root (except optim/tfjs), which does not load tfjs', () => {
    for (const sub of ['optim/linalg', 'optim/objectives', 'optim/data'] as const) {
      for (const name of cjs[sub]) expect(cjs.optim, `${sub}: ${name} also in optim`).toContain(name);
    }
    for (const name of cjs['optim/tfjs']) expect(cjs.optim).not.toContain(name);
    const loaded = lastJson(
      run(['-e', `require('optim'); console.log(JSON.stringify(Object.keys(require.cache).filter((k) => k.includes('@tensorflow'))));`]),
    );
    expect(loaded).toEqual([]);
  });

  it('require and import give the same single instance (one module, one addon load)', () => {
    const same = lastJson(
      run([
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module';
         import { matmul } from 'optim/linalg';
         import { Adam, matmul as rootMatmul, minibatches as rootMinibatches } from 'optim';
         import { minibatches } from 'optim/data';
         import { tfjsOptimizer } from 'optim/tfjs';
         const require = createRequire(process.cwd() + '/');
         console.log(JSON.stringify([
           matmul === rootMatmul, matmul === require('optim/linalg').matmul, matmul === require('optim').matmul,
           minibatches === rootMinibatches, Adam === require('optim').Adam, tfjsOptimizer === require('optim/tfjs').tfjsOptimizer,
         ]));`,
      ]),
    );
    expect(same).toEqual([true, true, true, true, true, true]);
  });

  it('files outside the exports are not reachable', () => {
    for (const spec of ['optim/dist/optim/adam.js', 'optim/dist/distributed/store.js']) {
      const r = run(['-e', `try { require(${JSON.stringify(spec)}); console.log('"loaded"'); } catch (e) { console.log(JSON.stringify(e.code)); }`]);
      expect(lastJson(r), spec).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    }
  });

  it('optim/tfjs trains a tfjs variable through require and through import', () => {
    const body = (load: string) => `${load}
      const { SGD } = optim;
      const opt = tfjsOptimizer(SGD, { lr: 0.25 });
      const v = tf.variable(tf.tensor1d([1, -1]), true, 'w');
      opt.applyGradients({ w: tf.tensor1d([2, -2]) });
      console.log(JSON.stringify({ ok: opt instanceof tf.Optimizer, v: Array.from(v.dataSync()) }));`;
    const viaRequire = lastJson(
      run(['-e', body(`const tf = require('@tensorflow/tfjs-core'); require('@tensorflow/tfjs-backend-cpu'); const optim = require('optim'); const { tfjsOptimizer } = require('optim/tfjs');`)]),
    );
    const viaImport = lastJson(
      run([
        '--input-type=module',
        '-e',
        body(`import * as tf from '@tensorflow/tfjs-core'; import '@tensorflow/tfjs-backend-cpu'; import * as optim from 'optim'; import { tfjsOptimizer } from 'optim/tfjs';`),
      ]),
    );
    // w − 0.25·g, exact in float32.
    expect(viaRequire).toEqual({ ok: true, v: [0.5, -0.5] });
    expect(viaImport).toEqual(viaRequire);
  });
});

describe('declarations', () => {
  it('a CommonJS and an ES module consumer type-check against every subpath (and a wrong use does not)', () => {
    const consumer = `
      import { Adam, AdamW, StepLR, clipGradNorm, param, saveCheckpoint } from 'optim';
      import type { Param } from 'optim';
      import { matmul, CholeskyError } from 'optim/linalg';
      import { linearRegression } from 'optim/objectives';
      import type { Objective } from 'optim/objectives';
      import { minibatches, readIdx, syntheticFashionMnist } from 'optim/data';
      import { tfjsOptimizer, scheduleCallback, TfjsOptimizer } from 'optim/tfjs';
      import { initProcessGroup, DistributedOptimizer, DistributedError } from 'optim/distributed';
      import type { ProcessGroup } from 'optim/distributed';

      const w: Param = param(new Float32Array(4), 'w');
      const opt: Adam = new Adam([w], { lr: 1e-3 });
      const sched: StepLR = new StepLR(opt, { stepSize: 2 });
      const norm: number = clipGradNorm([w], 1);
      const c: Float64Array = matmul(new Float64Array(4), new Float64Array(4), { m: 2, n: 2, k: 2 });
      const objective: Objective = linearRegression(new Float64Array(4), [1, 2], { });
      const batches = minibatches(10, { batchSize: 2 });
      const t: TfjsOptimizer<AdamW> = tfjsOptimizer(AdamW, { lr: 1e-3, weightDecay: 0.1, schedule: (o) => new StepLR(o, { stepSize: 1 }) });
      const inner: AdamW | undefined = t.optimizer;
      const cb = scheduleCallback(t, { every: 'epoch' });
      // @ts-expect-error: momentum is not an option of AdamW
      tfjsOptimizer(AdamW, { momentum: 0.9 });
      // @ts-expect-error: matmul keeps the array type
      const wrong: Float32Array = matmul(new Float64Array(4), new Float64Array(4), { m: 2, n: 2, k: 2 });
      const group: Promise<ProcessGroup> = initProcessGroup({ rank: 0, worldSize: 1 });
      export const used = [opt, sched, norm, c, objective, batches, inner, cb, wrong, readIdx, syntheticFashionMnist, saveCheckpoint, CholeskyError, group, DistributedOptimizer, DistributedError];
    `;
    fs.writeFileSync(path.join(pkgDir, 'consumer.cts'), consumer);
    fs.writeFileSync(path.join(pkgDir, 'consumer.mts'), consumer);
    fs.writeFileSync(
      path.join(pkgDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
        files: ['consumer.cts', 'consumer.mts'],
      }),
    );
    const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
    const ok = run([tsc, '-p', 'tsconfig.json']);
    expect(ok.stdout + ok.stderr).toBe('');
    expect(ok.status).toBe(0);

    // The checker sees the declarations: a name a subpath does not export is an error.
    fs.writeFileSync(path.join(pkgDir, 'consumer.mts'), `import { Adam } from 'optim/linalg';\nexport const x = Adam;\n`);
    fs.writeFileSync(path.join(pkgDir, 'consumer.cts'), `import { nothing } from 'optim/distributed';\nexport const y = nothing;\n`);
    const bad = run([tsc, '-p', 'tsconfig.json']);
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/consumer\.mts.*'"optim\/linalg"' has no exported member 'Adam'/);
    expect(bad.stdout).toMatch(/consumer\.cts.*'"optim\/distributed"' has no exported member 'nothing'/);
  }, 120_000);
});
