/**
 * Native linear algebra against the reference backend on random shapes and values (fast-check):
 * every native path (OpenBLAS, built-in AVX2, built-in baseline), both dtypes, shapes from 0 and
 * 1 through odd sizes and sizes that cross the built-in kernels' block edges (register tile 4×2
 * vectors, MC = 128, KC = 256/384, recursion bases 32 and 64), transposes, alpha and beta, views
 * at odd offsets into their buffers.
 *
 * Tolerances are the standard error bounds of each algorithm, scaled by the dtype's unit
 * roundoff u, with a safety factor; a wrong index, a skipped edge or a missed transpose moves
 * results by O(1), far above them:
 *   gemm: |native − reference| ≤ 2(k+2)·u·(|alpha|·(|op(a)|·|op(b)|) + |beta·c|), elementwise;
 *   Cholesky (eigenvalues in [1, 5]): normwise 50·n·u on L and on x;
 *   eigh: eigenvalues within 50·n·u·‖A‖, ‖AV − VΛ‖ and ‖VᵀV − I‖ within 50·n·u (·‖A‖).
 * Seed: fixed in CI, random elsewhere; FC_SEED=<n> reproduces a run, FC_RUNS=<n> sets runs.
 * With OPTIM_TEST_WASM=1 (CI) the wasm backend's built-in kernels are held to the same bounds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { referenceBackend } from '../src/backend/reference.js';
import { loadNative } from '../src/backend/native.js';
import { loadWasm } from '../src/backend/wasm.js';
import type { Backend, FloatArray } from '../src/backend/types.js';
import { uniformStream } from '../src/data/random.js';
import { nativePaths, normwise, randomSPD, useNativePath } from './helpers/linalg.js';

const native = loadNative();
if (process.env.CI === 'true' && !native.backend) {
  throw new Error(`CI requires the native addon, which did not load: ${native.error}`);
}

const SEED = Number(process.env.FC_SEED ?? (process.env.CI === 'true' ? 20251123 : Date.now() % 2 ** 31));
const RUNS = Number(process.env.FC_RUNS ?? 25);
console.log(`linalg-property: fast-check seed ${SEED} (FC_SEED=${SEED} reproduces), ${RUNS} runs per property`);

type Ctor = Float32ArrayConstructor | Float64ArrayConstructor;
const DTYPES: Array<[string, Ctor, number]> = [
  ['float64', Float64Array, 2 ** -53],
  ['float32', Float32Array, 2 ** -24],
];

/** Sizes: the small edge cases, odd sizes, and some past the built-in blocking thresholds. */
const sizeArb = fc.oneof(
  { arbitrary: fc.constantFrom(0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33), weight: 3 },
  { arbitrary: fc.integer({ min: 0, max: 80 }), weight: 2 },
  { arbitrary: fc.constantFrom(65, 127, 129, 131), weight: 1 },
);
const depthArb = fc.oneof(
  { arbitrary: sizeArb, weight: 4 },
  { arbitrary: fc.constantFrom(255, 257, 383, 385, 400), weight: 1 },
);
const scalarArb = fc.oneof(
  fc.constantFrom(0, 1, -1, 0.5),
  fc.double({ min: -3, max: 3, noNaN: true }).filter((x) => x === 0 || Math.abs(x) > 1e-6),
);

/** n random values in [-1, 1) at element offset `offset` of a fresh buffer (misaligned views). */
function view(C: Ctor, n: number, offset: number, rnd: () => number): FloatArray {
  const a = new C(new ArrayBuffer((n + offset + 1) * C.BYTES_PER_ELEMENT), offset * C.BYTES_PER_ELEMENT, n);
  for (let i = 0; i < n; i++) a[i] = 2 * rnd() - 1;
  return a;
}

function clone(a: FloatArray): FloatArray {
  return a instanceof Float32Array ? new Float32Array(a) : new Float64Array(a);
}

const wasm = process.env.OPTIM_TEST_WASM === '1' ? loadWasm() : undefined;
if (wasm && !wasm.backend) throw new Error(`OPTIM_TEST_WASM=1, but the wasm backend cannot load: ${wasm.error}`);

function describeWith(name: string, body: (nb: Backend) => void): void {
  if (wasm?.backend) {
    describe(`${name}: wasm vs reference`, () => {
      beforeAll(() => fc.configureGlobal({ seed: SEED, numRuns: RUNS }));
      body(wasm.backend!);
    });
  }
  const paths = native.backend ? nativePaths : [];
  describe.each(paths)(`${name}: native $name vs reference`, (path) => {
    beforeAll(() => {
      useNativePath(path);
      fc.configureGlobal({ seed: SEED, numRuns: RUNS });
    });
    afterAll(() => useNativePath(undefined));
    body(native.backend!);
  });
}

describeWith('gemm', (nb) => {
  for (const [dtype, C, u] of DTYPES) {
    it(`matches within the gemm error bound (${dtype})`, () => {
      fc.assert(
        fc.property(
          sizeArb, sizeArb, depthArb, fc.boolean(), fc.boolean(), scalarArb, scalarArb,
          fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          (m, n, k, transA, transB, alpha, beta, offset, seed) => {
            const rnd = uniformStream(seed);
            const a = view(C, m * k, offset, rnd);
            const b = view(C, k * n, (offset + 1) % 4, rnd);
            const c0 = view(C, m * n, (offset + 2) % 4, rnd);
            // With beta = 0, c is not read: NaN there must not reach the result.
            if (beta === 0) c0.fill(NaN);
            const cn = clone(c0);
            const cr = clone(c0);
            nb.gemm(a, b, cn, m, n, k, transA, transB, alpha, beta);
            referenceBackend.gemm(a, b, cr, m, n, k, transA, transB, alpha, beta);
            // |op(a)|·|op(b)|: the scale of each element's rounding error.
            const absA = Float64Array.from(a, Math.abs), absB = Float64Array.from(b, Math.abs);
            const bound = new Float64Array(m * n);
            referenceBackend.gemm(absA, absB, bound, m, n, k, transA, transB, 1, 0);
            for (let i = 0; i < m * n; i++) {
              const tol = 2 * (k + 2) * u * (Math.abs(alpha) * bound[i] + (beta === 0 ? 0 : Math.abs(beta * c0[i])));
              if (!(Math.abs(cn[i] - cr[i]) <= tol)) {
                throw new Error(`c[${i}] native ${cn[i]} vs reference ${cr[i]} (tolerance ${tol}); m=${m} n=${n} k=${k}`);
              }
            }
          },
        ),
      );
    });
  }

  it('alpha = 0 reads neither a nor b (NaN there does not reach c)', () => {
    const a = new Float64Array(6).fill(NaN), b = new Float64Array(6).fill(Infinity);
    const c = new Float64Array([1, 2, 3, 4]);
    nb.gemm(a, b, c, 2, 2, 3, false, false, 0, 2);
    expect(Array.from(c)).toEqual([2, 4, 6, 8]);
  });
});

describeWith('gram', (nb) => {
  for (const [dtype, C, u] of DTYPES) {
    it(`matches the reference and is exactly symmetric (${dtype})`, () => {
      fc.assert(
        fc.property(sizeArb, depthArb, fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (rows, cols, trans, seed) => {
          const rnd = uniformStream(seed);
          const a = view(C, rows * cols, seed % 3, rnd);
          const n = trans ? cols : rows, k = trans ? rows : cols;
          const cn = new C(n * n).fill(NaN);
          const cr = new C(n * n);
          nb.syrk(a, cn, rows, cols, trans);
          referenceBackend.syrk(a, cr, rows, cols, trans);
          // |a|·|a|ᵀ ≤ k, as every |a_ij| < 1.
          const tol = 2 * (k + 2) * u * k;
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < n; j++) {
              const x = cn[i * n + j];
              if (x !== cn[j * n + i]) throw new Error(`c[${i}, ${j}] = ${x} but c[${j}, ${i}] = ${cn[j * n + i]}`);
              if (!(Math.abs(x - cr[i * n + j]) <= tol)) {
                throw new Error(`c[${i}, ${j}] native ${x} vs reference ${cr[i * n + j]}; rows=${rows} cols=${cols} trans=${trans}`);
              }
            }
          }
        }),
      );
    });
  }
});

describeWith('cholesky and choSolve', (nb) => {
  for (const [dtype, C, u] of DTYPES) {
    it(`factor and solve match the reference (${dtype}); the upper triangle is never read`, () => {
      fc.assert(
        fc.property(sizeArb, fc.constantFrom(1, 1, 2, 5), fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          (n, nrhs, poisonUpper, seed) => {
            const rnd = uniformStream(seed);
            const a = randomSPD(C, n, rnd);
            if (poisonUpper) for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[i * n + j] = NaN;
            const before = clone(a);
            const Ln = new C(n * n).fill(7);
            const Lr = new C(n * n);
            nb.potrf(a, Ln, n);
            referenceBackend.potrf(a, Lr, n);
            expect(Array.from(a)).toEqual(Array.from(before));
            for (let i = 0; i < n; i++) {
              for (let j = i + 1; j < n; j++) if (Ln[i * n + j] !== 0) throw new Error(`L[${i}, ${j}] = ${Ln[i * n + j]}`);
            }
            const tol = 50 * Math.max(n, 1) * u;
            expect(normwise(Ln, Lr)).toBeLessThanOrEqual(tol);

            const b = view(C, n * nrhs, 1, rnd);
            const xn = new C(n * nrhs), xr = new C(n * nrhs);
            nb.potrs(Ln, b, xn, n, nrhs);
            referenceBackend.potrs(Lr, b, xr, n, nrhs);
            expect(normwise(xn, xr)).toBeLessThanOrEqual(tol);
            // In place gives the same bits as out of place.
            const y = clone(b);
            nb.potrs(Ln, y, y, n, nrhs);
            expect(Array.from(y)).toEqual(Array.from(xn));
          }),
      );
    });

    it(`in place factors to the same bits as into a new array (${dtype})`, () => {
      fc.assert(
        fc.property(sizeArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (n, seed) => {
          const a = randomSPD(C, n, uniformStream(seed));
          const L = new C(n * n);
          nb.potrf(a, L, n);
          nb.potrf(a, a, n);
          expect(Array.from(a)).toEqual(Array.from(L));
        }),
      );
    });
  }
});

describeWith('eigh', (nb) => {
  for (const [dtype, C, u] of DTYPES) {
    it(`eigenvalues match the reference; eigenvectors are orthonormal eigenvectors (${dtype})`, () => {
      fc.assert(
        fc.property(fc.oneof(sizeArb.filter((n) => n <= 40), fc.constantFrom(64, 65)), fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          (n, seed) => {
            const rnd = uniformStream(seed);
            const a = new C(n * n);
            for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = 2 * rnd() - 1;
            const wn = new C(n), vn = new C(n * n), wr = new C(n), vr = new C(n * n);
            nb.syevd(a, wn, vn, n);
            referenceBackend.syevd(a, wr, vr, n);
            let norm = 0;
            for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(wr[i]));
            const tol = 50 * Math.max(n, 1) * u;
            for (let j = 0; j < n; j++) {
              if (!(Math.abs(wn[j] - wr[j]) <= tol * norm)) throw new Error(`values[${j}] native ${wn[j]} vs reference ${wr[j]}`);
              if (j > 0 && !(wn[j] >= wn[j - 1])) throw new Error(`values not ascending at ${j}`);
            }
            // Residual and orthogonality, in float64.
            let res = 0, orth = 0;
            for (let j = 0; j < n; j++) {
              let big = 0;
              for (let i = 0; i < n; i++) {
                let s = 0;
                for (let p = 0; p < n; p++) s += a[i * n + p] * vn[p * n + j];
                res = Math.max(res, Math.abs(s - wn[j] * vn[i * n + j]));
                if (Math.abs(vn[i * n + j]) > Math.abs(vn[big * n + j])) big = i;
              }
              if (!(vn[big * n + j] > 0)) throw new Error(`eigenvector ${j}: largest component ${vn[big * n + j]} is not positive`);
              for (let k = 0; k <= j; k++) {
                let s = 0;
                for (let p = 0; p < n; p++) s += vn[p * n + j] * vn[p * n + k];
                orth = Math.max(orth, Math.abs(s - (j === k ? 1 : 0)));
              }
            }
            expect(res).toBeLessThanOrEqual(tol * norm);
            expect(orth).toBeLessThanOrEqual(tol);
          }),
      );
    });
  }

  it('float64 eigenvalues are accurate to ~1e-12 relative on a well-conditioned matrix with known spectrum', () => {
    // A = Q diag(1..n) Qᵀ with Q a product of Householder reflections (exactly orthogonal up to rounding).
    const n = 50;
    const rnd = uniformStream(SEED);
    const q = new Float64Array(n * n);
    for (let i = 0; i < n; i++) q[i * n + i] = 1;
    for (let r = 0; r < 3; r++) {
      const v = Float64Array.from({ length: n }, () => 2 * rnd() - 1);
      const vv = v.reduce((s, x) => s + x * x, 0);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let p = 0; p < n; p++) s += q[i * n + p] * v[p];
        for (let p = 0; p < n; p++) q[i * n + p] -= (2 * s * v[p]) / vv;
      }
    }
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < n; p++) s += q[i * n + p] * (p + 1) * q[j * n + p];
        a[i * n + j] = s;
      }
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) a[j * n + i] = a[i * n + j];
    const w = new Float64Array(n), v = new Float64Array(n * n);
    nb.syevd(a, w, v, n);
    for (let j = 0; j < n; j++) expect(Math.abs(w[j] - (j + 1)) / n).toBeLessThanOrEqual(1e-12);
  });
});

describe('the native paths this run covers', () => {
  it('include OpenBLAS when the build has it, and both built-in instruction sets the CPU runs', () => {
    if (!native.backend) return;
    const names = nativePaths.map((p) => p.name);
    expect(names).toContain('builtin-baseline');
    console.log(`linalg-property: native paths ${names.join(', ')}`);
  });
});
