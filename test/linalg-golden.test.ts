/**
 * Cholesky factor and solve against test/golden/torch-1.13/cholesky_solve.json (recorded with
 * scipy 1.10.1 and LAPACK; see test/golden/README.md): the dense A6 (cond 4.6) and the 6×6
 * Hilbert matrix (cond 1.5e7), on the reference backend and on every native path (OpenBLAS,
 * built-in AVX2, built-in baseline).
 *
 * Tolerances (normwise, against the correctly rounded values), with what LAPACK and the plain
 * textbook algorithm reach (from the file):
 *   A6       L: 1e-15 (LAPACK 1.8e-17, textbook 1.4e-16)   x: 2e-15 (9.7e-17, 3.9e-16)
 *   Hilbert  L: 2e-13 (LAPACK 2.2e-14, textbook 7.3e-15)   x: 3e-10 (3.4e-11, 1.4e-11)
 * For the Hilbert matrix, x's error is decided by rounding luck at the scale cond·u ≈ 1.7e-9
 * (the typical bound for a backward-stable solver): measured here 1.4e-11 (reference), 8.7e-11
 * (OpenBLAS potrf + two trsv, and the built-in baseline), 1.2e-10 (built-in AVX2, with FMA).
 * 3e-10 is cond·u / 6: tight enough to catch a solver that is not backward stable.
 * The reference backend is the textbook algorithm without FMA, so it must reproduce
 * `L_plain_textbook` and `x_plain_textbook` bit for bit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { choSolve, cholesky, solveSPD, matmul } from '../src/linalg/index.js';
import type { Backend } from '../src/backend/types.js';
import { backendRows, useBackend } from './helpers/backends.js';
import { flat, nativePaths, normwise, useNativePath } from './helpers/linalg.js';
import { readGolden } from './helpers/golden.js';
import type { NativePath } from './helpers/linalg.js';

interface LinalgCase {
  name: string;
  M: number[][];
  b: number[];
  cond2: number;
  L_correctly_rounded: number[][];
  x_correctly_rounded: number[];
  L_plain_textbook: number[][];
  x_plain_textbook: number[];
  L_lapack: number[][];
  x_lapack: number[];
}

const golden = readGolden<{ cases: LinalgCase[] }>('torch-1.13/cholesky_solve.json');

const TOL: Record<string, { L: number; x: number }> = {
  A6: { L: 1e-15, x: 2e-15 },
  hilbert6_rounded: { L: 2e-13, x: 3e-10 },
};

interface Config {
  label: string;
  backend: Backend;
  path?: NativePath;
}

const configs: Config[] = backendRows.flatMap(([name, backend]): Config[] =>
  name === 'native' ? nativePaths.map((path) => ({ label: `native ${path.name}`, backend, path })) : [{ label: name, backend }],
);

describe.each(configs)('cholesky_solve golden: $label', ({ backend, path }) => {
  useBackend(backend);
  beforeAll(() => useNativePath(path));
  afterAll(() => useNativePath(undefined));

  for (const c of golden.cases) {
    const n = c.b.length;
    const tol = TOL[c.name];

    it(`${c.name}: L within ${tol.L} and x within ${tol.x} of the correctly rounded values`, () => {
      const M = Float64Array.from(flat(c.M));
      const b = Float64Array.from(c.b);
      const L = cholesky(M, n);
      const x = choSolve(L, b, n);
      const eL = normwise(L, flat(c.L_correctly_rounded));
      const ex = normwise(x, c.x_correctly_rounded);
      expect(eL).toBeLessThanOrEqual(tol.L);
      expect(ex).toBeLessThanOrEqual(tol.x);
      expect(Array.from(M)).toEqual(flat(c.M));
      expect(Array.from(b)).toEqual(c.b);
    });

    it(`${c.name}: solveSPD, in place, and several right-hand sides agree with the two-step solve`, () => {
      const M = Float64Array.from(flat(c.M));
      const b = Float64Array.from(c.b);
      const x = choSolve(cholesky(M, n), b, n);
      expect(Array.from(solveSPD(M, b, n))).toEqual(Array.from(x));

      const A = M.slice();
      const L = cholesky(A, n, { inPlace: true });
      expect(L).toBe(A);
      const y = b.slice();
      expect(choSolve(L, y, n, { inPlace: true })).toBe(y);
      expect(normwise(y, x)).toBeLessThanOrEqual(tol.x);

      // B = [b, 2b, -b] as an n×3 matrix: each column solves like b (scaled).
      const B = new Float64Array(n * 3);
      for (let i = 0; i < n; i++) [B[i * 3], B[i * 3 + 1], B[i * 3 + 2]] = [b[i], 2 * b[i], -b[i]];
      const X = choSolve(L, B, n, { nrhs: 3 });
      for (const [col, s] of [[0, 1], [1, 2], [2, -1]]) {
        const xc = Array.from({ length: n }, (_, i) => X[i * 3 + col] / s);
        expect(normwise(xc, c.x_correctly_rounded)).toBeLessThanOrEqual(tol.x);
      }
    });

    it(`${c.name}: L·Lᵀ reproduces M`, () => {
      const M = Float64Array.from(flat(c.M));
      const L = cholesky(M, n);
      const LLt = matmul(L, L, { m: n, n, k: n, transB: true });
      expect(normwise(LLt, M)).toBeLessThanOrEqual(4e-16);
    });

    if (backend.name === 'reference') {
      it(`${c.name}: the reference is the textbook algorithm, bit for bit`, () => {
        const L = cholesky(Float64Array.from(flat(c.M)), n);
        expect(Array.from(L)).toEqual(flat(c.L_plain_textbook));
        expect(Array.from(choSolve(L, Float64Array.from(c.b), n))).toEqual(c.x_plain_textbook);
      });
    }

    if (c.name === 'A6') {
      it('A6 in float32: within float32 rounding of the correctly rounded values', () => {
        const L = cholesky(Float32Array.from(flat(c.M)), n);
        const x = choSolve(L, Float32Array.from(c.b), n);
        expect(L).toBeInstanceOf(Float32Array);
        expect(normwise(L, flat(c.L_correctly_rounded))).toBeLessThanOrEqual(1e-6);
        expect(normwise(x, c.x_correctly_rounded)).toBeLessThanOrEqual(5e-6);
      });
    }
  }
});
