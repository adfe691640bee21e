/**
 * Issue 5, item 6: the same seed and backend give the same bits across runs; the native and
 * reference backends differ by rounding only, by the amounts docs/determinism.md records.
 *
 * - Across processes: test/fixtures/determinism-run.js trains (seeded data, shuffled
 *   minibatches, Adam then SGD, Newton) in both dtypes and runs large linear algebra, in two fresh
 *   processes per configuration; every result's hash must match.
 * - Native against reference: the step kernels of every optimizer after 1 and 1000 steps on a
 *   seeded problem whose gradients depend on the parameters (so differences feed back), and
 *   matmul / cholesky / choSolve on each native path. The bounds asserted here are the table of
 *   docs/determinism.md with headroom for other CPUs and BLAS builds; a change that moves a
 *   figure past them must update the document too.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadNative } from '../src/backend/native.js';
import type { NativeLinalgAddon } from '../src/backend/native-linalg.js';
import { setBackend } from '../src/backend/select.js';
import type { FloatArray } from '../src/backend/types.js';
import { uniformStream } from '../src/data/random.js';
import { cholesky, choSolve, gram, matmul } from '../src/linalg/index.js';
import { Adagrad, Adam, NAdam, RAdam, RMSprop, SGD, param } from '../src/optim/index.js';
import type { GroupBase, Optimizer, Param } from '../src/optim/index.js';
import { restoreBackend } from './helpers/backends.js';
import { childEnv, compiledDist } from './helpers/dist.js';

const native = loadNative();
const haveNative = native.backend !== undefined;
if (process.env.CI === 'true' && !haveNative) throw new Error(`CI requires the native backend: ${native.error}`);
const addon = native.addon as (typeof native.addon & NativeLinalgAddon) | undefined;

const fixture = path.join(__dirname, 'fixtures', 'determinism-run.js');
let dist = '';
beforeAll(() => {
  dist = compiledDist();
}, 120_000);

function runChild(backend: string, seed: number, env: Record<string, string | undefined> = {}): Record<string, unknown> {
  const r = spawnSync(process.execPath, [fixture, dist, backend, String(seed)], {
    encoding: 'utf8',
    timeout: 120_000,
    env: childEnv({ OPTIM_ISA: undefined, OPTIM_BLAS: undefined, ...env }),
  });
  expect(r.signal, r.stderr).toBeNull();
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

function hashes(out: Record<string, unknown>): Record<string, unknown> {
  const { info: _info, ...rest } = out;
  return rest;
}

describe('the same seed and backend give the same bits across runs', () => {
  const configs: Array<[string, string, Record<string, string>]> = [
    ['reference', 'reference', {}],
    ...(haveNative
      ? ([
          ['native (best ISA, OpenBLAS when built)', 'native', {}],
          ['native (baseline ISA, built-in BLAS)', 'native', { OPTIM_ISA: 'baseline', OPTIM_BLAS: 'builtin' }],
        ] as Array<[string, string, Record<string, string>]>)
      : []),
  ];

  it.each(configs)('%s: two processes, one seed, identical results', (_label, backend, env) => {
    const a = runChild(backend, 5, env);
    const b = runChild(backend, 5, env);
    expect((a.info as { backend: string }).backend).toBe(backend);
    expect(hashes(b)).toEqual(hashes(a));
    console.log(`determinism ${_label}: ${JSON.stringify(a)}`);
  }, 120_000);

  it.runIf(haveNative)('another seed gives other bits; the OpenBLAS thread count is reported', () => {
    const a = runChild('native', 5);
    const other = runChild('native', 6);
    for (const key of ['train-float32', 'train-float64', 'matmul', 'cholesky']) expect(other[key]).not.toBe(a[key]);
    if ((a.info as { blas: string }).blas === 'openblas') {
      // Not a guarantee either way (docs/determinism.md): measured and printed, not asserted.
      const one = runChild('native', 5, { OPENBLAS_NUM_THREADS: '1' });
      const same = Object.keys(hashes(a)).filter((k) => one[k] === a[k]);
      console.log(
        `determinism: OPENBLAS_NUM_THREADS=1 vs ${(a.info as { threads: number }).threads} threads: ` +
          `equal for [${same.join(', ')}], different for [${Object.keys(hashes(a)).filter((k) => one[k] !== a[k]).join(', ')}]`,
      );
    }
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------
// Native against reference

/** Uniform [-1, 1) numbers from `seed` (uniformStream: pure-rand's xoroshiro128+). */
function stream(seed: number): () => number {
  const next = uniformStream(seed);
  return () => 2 * next() - 1;
}

/** Distance in units in the last place (0 for equal bits; NaN never occurs here). */
function maxUlp(a: FloatArray, b: FloatArray): number {
  let worst = 0;
  if (a instanceof Float64Array) {
    const ia = new BigInt64Array(a.buffer, a.byteOffset, a.length);
    const ib = new BigInt64Array((b as Float64Array).buffer, b.byteOffset, b.length);
    const ord = (v: bigint) => (v >= 0n ? v : -(v & 0x7fffffffffffffffn));
    for (let i = 0; i < a.length; i++) {
      const d = ord(ia[i]) - ord(ib[i]);
      worst = Math.max(worst, Number(d < 0n ? -d : d));
    }
  } else {
    const ia = new Int32Array(a.buffer, a.byteOffset, a.length);
    const ib = new Int32Array(b.buffer, b.byteOffset, b.length);
    const ord = (v: number) => (v >= 0 ? v : -(v & 0x7fffffff));
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(ord(ia[i]) - ord(ib[i])));
  }
  return worst;
}

/** max|a − b| / max|b|: the normwise relative difference. */
function relDiff(a: FloatArray, b: FloatArray): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m === 0 ? d : d / m;
}

type AnyOptimizer = Optimizer<GroupBase>;
const OPTIMIZERS: Record<string, (ps: Param[]) => AnyOptimizer> = {
  Adam: (ps) => new Adam(ps, { lr: 1e-2 }) as unknown as AnyOptimizer,
  SGD: (ps) => new SGD(ps, { lr: 1e-2, momentum: 0.9, weightDecay: 1e-4 }) as unknown as AnyOptimizer,
  RMSprop: (ps) => new RMSprop(ps, { lr: 1e-3, centered: true, momentum: 0.5 }) as unknown as AnyOptimizer,
  Adagrad: (ps) => new Adagrad(ps, { lr: 1e-2, lrDecay: 1e-3 }) as unknown as AnyOptimizer,
  NAdam: (ps) => new NAdam(ps, { lr: 1e-2 }) as unknown as AnyOptimizer,
  RAdam: (ps) => new RAdam(ps, { lr: 1e-2, weightDecay: 1e-3 }) as unknown as AnyOptimizer,
};

const N = 4096;

/**
 * `steps` steps of one optimizer on L(p) = Σ sᵢ(pᵢ − cᵢ)²/2 plus seeded noise in the gradient,
 * from seeded p: the gradient reads the backend's own parameters, so differences feed back.
 */
function trajectory(name: string, dtype: 'float32' | 'float64', steps: number): FloatArray {
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  const init = stream(11);
  const p = param(Ctor.from(Array.from({ length: N }, init)), 'p');
  const c = Float64Array.from({ length: N }, init);
  const s = Float64Array.from({ length: N }, () => 1.5 + init());
  const noise = stream(12);
  const opt = OPTIMIZERS[name]([p]);
  for (let t = 0; t < steps; t++) {
    for (let i = 0; i < N; i++) p.grad[i] = s[i] * (p.data[i] - c[i]) + 0.1 * noise();
    opt.step();
  }
  return p.data;
}

/**
 * Bounds on native vs reference: max ulp after 1 step, and max|Δ|/max|ref| after 1 and after
 * 1000 steps. Measured (docs/determinism.md, AVX-512 + FMA and baseline): float64 ≤ 25 ulp,
 * 1.1e-16, 3.3e-16; float32 ≤ 828 ulp, 6.0e-8, 1.8e-7. The ulp figures come from entries near
 * zero, where p + Δp cancels; the bounds leave ~5-10x headroom (~50x for float32 after 1000
 * steps) for other CPUs and compilers.
 */
const STEP_BOUNDS: Record<'float32' | 'float64', { ulp1: number; rel1: number; rel1000: number }> = {
  float64: { ulp1: 128, rel1: 1e-15, rel1000: 2e-15 },
  float32: { ulp1: 4096, rel1: 5e-7, rel1000: 1e-5 },
};

describe.runIf(haveNative)('native step kernels against the reference', () => {
  restoreBackend(() => addon!.setIsa('best'));

  it('differ by rounding only, within the documented bounds; the baseline ISA matches float64 bit for bit', () => {
    const isas = (['best', 'baseline'] as const).filter((isa) => addon!.setIsa(isa));
    const rows: string[] = [];
    for (const name of Object.keys(OPTIMIZERS)) {
      for (const dtype of ['float64', 'float32'] as const) {
        const cells: string[] = [];
        for (const steps of [1, 1000]) {
          setBackend('reference');
          const want = trajectory(name, dtype, steps);
          for (const isa of isas) {
            addon!.setIsa(isa);
            setBackend('native');
            const fma = native.backend!.info().fma;
            const got = trajectory(name, dtype, steps);
            const ulp = maxUlp(got, want);
            const rel = relDiff(got, want);
            cells.push(`${isa === 'best' ? native.backend!.info().simd : 'baseline'}${fma ? '+fma' : ''} ${steps}: ${ulp} ulp, ${rel.toExponential(1)}`);
            if (!fma && dtype === 'float64') {
              expect(ulp, `${name} ${dtype} ${steps} steps, ${isa} (no FMA): bit for bit`).toBe(0);
            } else if (steps === 1) {
              expect(ulp, `${name} ${dtype} 1 step, ${isa}`).toBeLessThanOrEqual(STEP_BOUNDS[dtype].ulp1);
              expect(rel, `${name} ${dtype} 1 step, ${isa}`).toBeLessThanOrEqual(STEP_BOUNDS[dtype].rel1);
            } else {
              expect(rel, `${name} ${dtype} 1000 steps, ${isa}`).toBeLessThanOrEqual(STEP_BOUNDS[dtype].rel1000);
            }
          }
        }
        rows.push(`${name} ${dtype}: ${cells.join(' | ')}`);
      }
    }
    addon!.setIsa('best');
    console.log(`determinism, native vs reference (max ulp, max|Δ|/max|ref|):\n  ${rows.join('\n  ')}`);
  }, 120_000);
});

/**
 * Bounds on max|Δ|/max|ref| of each native linear algebra path against the reference, n = 300.
 * Measured: float64 ≤ 2.0e-15, float32 ≤ 7.0e-7 (docs/determinism.md).
 */
const LINALG_BOUNDS: Record<'float32' | 'float64', number> = { float64: 2e-14, float32: 1e-5 };

describe.runIf(haveNative)('native linear algebra against the reference', () => {
  restoreBackend(() => {
    addon!.setBlas('best');
    addon!.setIsa('best');
  });

  it('matmul, cholesky and choSolve differ by rounding only, within the documented bounds', () => {
    const paths: Array<[string, 'openblas' | 'builtin', 'best' | 'baseline']> = [];
    if (addon!.info().openblasAvailable) paths.push(['openblas', 'openblas', 'best']);
    paths.push(['builtin ' + (addon!.setIsa('best') ? addon!.info().linalgIsa : ''), 'builtin', 'best']);
    if (addon!.setIsa('baseline')) paths.push(['builtin baseline', 'builtin', 'baseline']);
    const rows: string[] = [];
    for (const dtype of ['float64', 'float32'] as const) {
      const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
      const n = 300;
      const r = stream(21);
      const a = Ctor.from(Array.from({ length: n * n }, r));
      const b = Ctor.from(Array.from({ length: n * n }, r));
      const rhs = Ctor.from(Array.from({ length: n }, r));
      const compute = () => {
        const prod = matmul(a, b, { m: n });
        const spd = gram(a, { rows: n });
        for (let i = 0; i < n; i++) spd[i * n + i] += n;
        const L = cholesky(spd, n);
        return { matmul: prod, cholesky: L, choSolve: choSolve(L, rhs, n) };
      };
      setBackend('reference');
      const want = compute();
      for (const [label, blas, isa] of paths) {
        setBackend('native');
        addon!.setBlas(blas);
        addon!.setIsa(isa);
        const got = compute();
        const cells = (Object.keys(want) as Array<keyof typeof want>).map((k) => {
          const rel = relDiff(got[k], want[k]);
          expect(rel, `${label} ${dtype} ${k}`).toBeLessThanOrEqual(LINALG_BOUNDS[dtype]);
          return `${k} ${rel.toExponential(1)}${maxUlp(got[k], want[k]) === 0 ? ' (equal bits)' : ''}`;
        });
        rows.push(`${label} ${dtype} n=${n}: ${cells.join(', ')}`);
      }
    }
    console.log(`determinism, native linear algebra vs reference (max|Δ|/max|ref|):\n  ${rows.join('\n  ')}`);
  }, 120_000);
});
