/**
 * The linear algebra kernels of the native backend: thin wrappers over the addon's exports
 * (native/bindings/linalg.cc) that turn its plain errors into optim's classes.
 */
import { fromNative as translate } from './native-errors.js';
import type { Backend, FloatArray } from './types.js';

/** The addon's linear algebra exports. flags: 1 = transA, 2 = transB. */
export interface NativeLinalgAddon {
  matmul(a: FloatArray, b: FloatArray, c: FloatArray, m: number, n: number, k: number, flags: number,
    alpha: number, beta: number): void;
  matmulAsync(a: FloatArray, b: FloatArray, c: FloatArray, m: number, n: number, k: number, flags: number,
    alpha: number, beta: number): Promise<void>;
  gram(a: FloatArray, c: FloatArray, rows: number, cols: number, flags: number): void;
  cholesky(a: FloatArray, out: FloatArray, n: number): void;
  choleskyAsync(a: FloatArray, out: FloatArray, n: number): Promise<void>;
  choSolve(L: FloatArray, b: FloatArray, x: FloatArray, n: number, nrhs: number): void;
  choSolveAsync(L: FloatArray, b: FloatArray, x: FloatArray, n: number, nrhs: number): Promise<void>;
  eigh(a: FloatArray, values: FloatArray, vectors: FloatArray, n: number): void;
  eighAsync(a: FloatArray, values: FloatArray, vectors: FloatArray, n: number): Promise<void>;
  /** This environment's implementation: 'best' = OpenBLAS when the build has it. False if unavailable. */
  setBlas(name: 'openblas' | 'builtin' | 'best'): boolean;
}

type LinalgMethods = Pick<Backend,
  'gemm' | 'syrk' | 'potrf' | 'potrs' | 'syevd' | 'gemmAsync' | 'potrfAsync' | 'potrsAsync' | 'syevdAsync'>;


function sync<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      fn(...args);
    } catch (e) {
      throw translate(e);
    }
  };
}

/** The addon refuses bad arguments by throwing at once and reports failures by rejecting. */
function async<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return (...args) => {
    try {
      return fn(...args).catch((e: unknown) => Promise.reject(translate(e)));
    } catch (e) {
      return Promise.reject(translate(e));
    }
  };
}

const flags = (transA: boolean, transB: boolean) => (transA ? 1 : 0) | (transB ? 2 : 0);

export function nativeLinalg(addon: NativeLinalgAddon): LinalgMethods {
  const matmul = sync(addon.matmul);
  const matmulAsync = async(addon.matmulAsync);
  const gram = sync(addon.gram);
  return {
    gemm: (a, b, c, m, n, k, transA, transB, alpha, beta) => matmul(a, b, c, m, n, k, flags(transA, transB), alpha, beta),
    syrk: (a, c, rows, cols, trans) => gram(a, c, rows, cols, trans ? 1 : 0),
    potrf: sync(addon.cholesky),
    potrs: sync(addon.choSolve),
    syevd: sync(addon.eigh),
    gemmAsync: (a, b, c, m, n, k, transA, transB, alpha, beta) =>
      matmulAsync(a, b, c, m, n, k, flags(transA, transB), alpha, beta),
    potrfAsync: async(addon.choleskyAsync),
    potrsAsync: async(addon.choSolveAsync),
    syevdAsync: async(addon.eighAsync),
  };
}
