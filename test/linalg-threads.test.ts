/**
 * The built-in linear algebra on the step pool (native/kernels/gemm.cc, RowSplit): a large gemm is
 * split by rows of C across the pool's threads, and every routine built on gemm (gram, the
 * Cholesky factorisation and solves, eigh) with it. Each element is computed with the same
 * k-blocking and register tiles whatever the split, so the bytes must be the same on 1, 2 and 3
 * threads, for both instruction sets, both dtypes, both transposes, and shapes whose row counts
 * are not multiples of the tile height. (OpenBLAS makes no such promise: its dpotrf differs in the
 * last bits between 1 and 2 threads, docs/determinism.md; it is not tested here.)
 */
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend, setNumThreads } from '../src/index.js';
import { cholesky, choSolve, eigh, gram, matmul } from '../src/linalg/index.js';
import { uniformStream } from '../src/data/random.js';
import { linalgAddon, nativePaths, randomArray, randomSPD, useNativePath } from './helpers/linalg.js';

const addon = linalgAddon;
const DEFAULT_THREADS = addon?.info().stepThreads ?? 1;
const BUILTIN = nativePaths.filter((p) => p.blas === 'builtin');

afterAll(() => {
  useNativePath(undefined);
  if (addon) setNumThreads(DEFAULT_THREADS);
  setBackend('auto');
});

const bytes = (x: Float32Array | Float64Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');

/** Runs `f` on 1, 2 and 3 threads and expects the same bytes from each. */
function sameOnEveryThreadCount(f: () => Array<Float32Array | Float64Array>): void {
  const results = [1, 2, 3].map((t) => {
    setNumThreads(t);
    return f().map(bytes);
  });
  expect(results[1]).toEqual(results[0]);
  expect(results[2]).toEqual(results[0]);
}

describe.runIf(addon !== undefined && BUILTIN.length > 0)('the built-in linear algebra gives the same bits on any number of threads', () => {
  for (const path of BUILTIN) {
    for (const C of [Float32Array, Float64Array]) {
      it(`${path.name} ${C.name}: matmul in every transpose, shapes with ragged row counts`, () => {
        setBackend('native');
        useNativePath(path);
        const rnd = uniformStream(31);
        for (const [m, n, k] of [[130, 70, 150], [257, 129, 65], [67, 300, 211], [600, 17, 400]]) {
          for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
            const a = randomArray(C, m * k, rnd);
            const b = randomArray(C, k * n, rnd);
            const c0 = randomArray(C, m * n, rnd);
            sameOnEveryThreadCount(() => {
              const out = c0.slice();
              matmul(a, b, { m, n, k, transA, transB, out, alpha: 0.75, beta: -0.5 });
              return [out];
            });
          }
        }
      });

      it(`${path.name} ${C.name}: gram, cholesky, choSolve and eigh`, () => {
        setBackend('native');
        useNativePath(path);
        const rnd = uniformStream(37);
        const n = 300;
        const a = randomSPD(C, n, rnd);
        const x = randomArray(C, 400 * 90, rnd);
        const b = randomArray(C, n * 40, rnd);
        const small = randomSPD(C, 200, rnd);
        sameOnEveryThreadCount(() => {
          const g = gram(x, { rows: 400, cols: 90 });
          const gt = gram(x, { rows: 400, cols: 90, trans: true });
          const l = cholesky(a, n);
          const s = choSolve(l, b, n);
          const e = eigh(small, 200);
          return [g, gt, l, s, e.values, e.vectors];
        });
      });
    }
  }
});
