/**
 * The pure-TypeScript twins of the linear algebra kernels (Backend.gemm … syevd in types.ts).
 *
 * Written for clarity and exactness, as the oracle the native kernels are tested against: plain
 * loops with every sum accumulated in float64, Cholesky–Banachiewicz, forward and back
 * substitution, cyclic Jacobi for the eigenproblem. Float32 inputs are computed in float64 and
 * rounded once when stored. Loop orders follow the memory (rows of row-major arrays), so the
 * reference is a fair baseline, not a deliberately slow one.
 *
 * Arguments are checked as the addon checks them, with the same messages, so either backend
 * refuses the same calls the same way; the checks on values (non-finite entries, a failed pivot)
 * run before anything is written.
 */
import { CholeskyError, OptimRangeError, OptimTypeError } from '../errors.js';
import { describe } from '../validate.js';
import type { Backend, FloatArray } from './types.js';

type LinalgMethods = Pick<Backend,
  'gemm' | 'syrk' | 'potrf' | 'potrs' | 'syevd' | 'gemmAsync' | 'potrfAsync' | 'potrsAsync' | 'syevdAsync'>;

function dim(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw new OptimTypeError(`${fn}: ${name} must be a number`);
  if (!(v >= 0 && Number.isSafeInteger(v))) {
    throw new OptimRangeError(`${fn}: ${name} must be a non-negative integer, got ${v}`);
  }
  return v;
}

function finite(fn: string, name: string, v: unknown): number {
  if (typeof v !== 'number') throw new OptimTypeError(`${fn}: ${name} must be a number`);
  if (!Number.isFinite(v)) throw new OptimRangeError(`${fn}: ${name} must be finite, got ${v}`);
  return v;
}

/** [name, array, expected length, how the length is formed] */
type Operand = [string, unknown, number, string];

/** Checks dtypes (all as the first operand's) and exact lengths. */
function arrays(fn: string, ops: Operand[]): FloatArray[] {
  const out: FloatArray[] = [];
  for (const [name, v, want, formula] of ops) {
    if (!(v instanceof Float32Array || v instanceof Float64Array)) {
      throw new OptimTypeError(
        `${fn}: ${name} must be a Float32Array or Float64Array${ArrayBuffer.isView(v) ? `, got ${describe(v)}` : ''}`,
      );
    }
    if (out.length > 0 && v.constructor !== out[0].constructor) {
      throw new OptimTypeError(`${fn}: ${name} must be a ${out[0].constructor.name} like ${ops[0][0]}, got ${describe(v)}`);
    }
    if (v.length !== want) {
      throw new OptimRangeError(`${fn}: ${name} has length ${v.length}, expected ${formula} = ${want}`);
    }
    out.push(v);
  }
  return out;
}

function overlaps(x: FloatArray, y: FloatArray): boolean {
  if (x.buffer !== y.buffer || x.length === 0 || y.length === 0) return false;
  return x.byteOffset < y.byteOffset + y.byteLength && y.byteOffset < x.byteOffset + x.byteLength;
}

const same = (x: FloatArray, y: FloatArray) => x.buffer === y.buffer && x.byteOffset === y.byteOffset && x.length === y.length;

function refuseOverlap(fn: string, outName: string, out: FloatArray, name: string, other: FloatArray): void {
  if (overlaps(out, other)) throw new OptimRangeError(`${fn}: ${outName} must not share memory with ${name}`);
}

/** A non-finite entry of the lower triangle of a (ld columns per row; rows × ld, or n×n). */
function refuseNonFinite(fn: string, name: string, a: FloatArray, rows: number, ld: number, lower: boolean): void {
  for (let i = 0; i < rows; i++) {
    const end = lower ? i + 1 : ld;
    for (let j = 0; j < end; j++) {
      const v = a[i * ld + j];
      if (!Number.isFinite(v)) throw new OptimRangeError(`${fn}: ${name}[${i}, ${j}] is ${v}; the matrix must be finite`);
    }
  }
}

/**
 * The checks of each kernel below, exported for the wasm backend (src/backend/wasm.ts), which
 * refuses the same calls with the same messages before copying anything into its memory.
 */
export function checkGemm(fn: string, a: unknown, b: unknown, c: unknown, m: unknown, n: unknown, k: unknown,
  alpha: unknown, beta: unknown): { A: FloatArray; B: FloatArray; C: FloatArray; M: number; N: number; K: number; al: number; be: number } {
  const M = dim(fn, 'm', m), N = dim(fn, 'n', n), K = dim(fn, 'k', k);
  const al = finite(fn, 'alpha', alpha), be = finite(fn, 'beta', beta);
  const [A, B, C] = arrays(fn, [['a', a, M * K, 'm*k'], ['b', b, K * N, 'k*n'], ['c', c, M * N, 'm*n']]);
  refuseOverlap(fn, 'c', C, 'a', A);
  refuseOverlap(fn, 'c', C, 'b', B);
  return { A, B, C, M, N, K, al, be };
}

function gemmChecked(fn: string, a: unknown, b: unknown, c: unknown, m: unknown, n: unknown, k: unknown,
  transA: boolean, transB: boolean, alpha: unknown, beta: unknown): void {
  const { A, B, C, M, N, K, al, be } = checkGemm(fn, a, b, c, m, n, k, alpha, beta);
  if (M === 0 || N === 0) return;
  if (K === 0 || al === 0) {
    // As BLAS: a and b are not read, c is not read when beta is 0.
    for (let i = 0; i < M * N; i++) C[i] = be === 0 ? 0 : be * C[i];
    return;
  }
  const acc = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    if (!transB) {
      acc.fill(0);
      for (let p = 0; p < K; p++) {
        const aip = transA ? A[p * M + i] : A[i * K + p];
        const row = p * N;
        for (let j = 0; j < N; j++) acc[j] += aip * B[row + j];
      }
    } else {
      for (let j = 0; j < N; j++) {
        let s = 0;
        const row = j * K;
        if (transA) for (let p = 0; p < K; p++) s += A[p * M + i] * B[row + p];
        else for (let p = 0, ai = i * K; p < K; p++) s += A[ai + p] * B[row + p];
        acc[j] = s;
      }
    }
    const ci = i * N;
    if (be === 0) for (let j = 0; j < N; j++) C[ci + j] = al * acc[j];
    else for (let j = 0; j < N; j++) C[ci + j] = al * acc[j] + be * C[ci + j];
  }
}

export function checkSyrk(a: unknown, c: unknown, rows: unknown, cols: unknown, trans: boolean):
  { A: FloatArray; C: FloatArray; R: number; Cn: number; n: number; k: number } {
  const fn = 'gram';
  const R = dim(fn, 'rows', rows), Cn = dim(fn, 'cols', cols);
  const n = trans ? Cn : R, k = trans ? R : Cn;
  const [A, C] = arrays(fn, [['a', a, R * Cn, 'rows*cols'], ['c', c, n * n, trans ? 'cols*cols' : 'rows*rows']]);
  refuseOverlap(fn, 'c', C, 'a', A);
  return { A, C, R, Cn, n, k };
}

function syrk(a: FloatArray, c: FloatArray, rows: number, cols: number, trans: boolean): void {
  const { A, C, Cn, n, k } = checkSyrk(a, c, rows, cols, trans);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      if (trans) for (let p = 0; p < k; p++) s += A[p * Cn + i] * A[p * Cn + j];
      else for (let p = 0, ai = i * Cn, aj = j * Cn; p < k; p++) s += A[ai + p] * A[aj + p];
      C[i * n + j] = s;
      C[j * n + i] = s;
    }
  }
}

/** The arguments and the lower triangle's values (finite). */
export function checkPotrf(fn: string, a: unknown, out: unknown, n: unknown): { A: FloatArray; O: FloatArray; N: number } {
  const N = dim(fn, 'n', n);
  const [A, O] = arrays(fn, [['a', a, N * N, 'n*n'], ['out', out, N * N, 'n*n']]);
  if (!same(A, O)) refuseOverlap(fn, 'out', O, 'a', A);
  refuseNonFinite(fn, 'a', A, N, N, true);
  return { A, O, N };
}

/** The error of a factorisation whose pivot i (0-based) is not positive. */
export function notPositiveDefinite(fn: string, i: number): CholeskyError {
  return new CholeskyError(
    `${fn}: the matrix is not positive definite: pivot ${i} is not positive ` +
      `(the leading minor of order ${i + 1} is not positive definite)`,
    i,
  );
}

/** The error of an eigensolver that ran out of sweeps. */
export function noConvergence(fn: string): Error {
  return new Error(`${fn}: the eigenvalue iteration did not converge`);
}

function potrfChecked(fn: string, a: unknown, out: unknown, n: unknown): void {
  const { A, O, N } = checkPotrf(fn, a, out, n);
  // L[i][j] = (a[i][j] - sum_p<j L[i][p] L[j][p]) / L[j][j]; L[i][i] = sqrt(a[i][i] - sum L[i][p]^2).
  const L = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * N + j];
      for (let p = 0; p < j; p++) s -= L[i * N + p] * L[j * N + p];
      if (j < i) {
        L[i * N + j] = s / L[j * N + j];
      } else if (s > 0) {
        L[i * N + i] = Math.sqrt(s);
      } else {
        throw notPositiveDefinite(fn, i);
      }
    }
  }
  O.set(L);
}

/** The arguments, b's values (finite) and L's diagonal (finite, nonzero). */
export function checkPotrs(fn: string, l: unknown, b: unknown, x: unknown, n: unknown, nrhs: unknown):
  { L: FloatArray; B: FloatArray; X: FloatArray; N: number; R: number } {
  const N = dim(fn, 'n', n), R = dim(fn, 'nrhs', nrhs);
  const [L, B, X] = arrays(fn, [['L', l, N * N, 'n*n'], ['b', b, N * R, 'n*nrhs'], ['x', x, N * R, 'n*nrhs']]);
  refuseOverlap(fn, 'x', X, 'L', L);
  if (!same(B, X)) refuseOverlap(fn, 'x', X, 'b', B);
  refuseNonFinite(fn, 'b', B, N, R, false);
  for (let i = 0; i < N; i++) {
    const d = L[i * N + i];
    if (d === 0 || !Number.isFinite(d)) {
      throw new OptimRangeError(`${fn}: L[${i}, ${i}] is ${d}; a Cholesky factor's diagonal must be finite and nonzero`);
    }
  }
  return { L, B, X, N, R };
}

function potrsChecked(fn: string, l: unknown, b: unknown, x: unknown, n: unknown, nrhs: unknown): void {
  const { L, B, X, N, R } = checkPotrs(fn, l, b, x, n, nrhs);
  const y = new Float64Array(N);
  for (let c = 0; c < R; c++) {
    for (let i = 0; i < N; i++) {
      let s = B[i * R + c];
      for (let j = 0; j < i; j++) s -= L[i * N + j] * y[j];
      y[i] = s / L[i * N + i];
    }
    for (let i = N - 1; i >= 0; i--) {
      let s = y[i];
      for (let j = i + 1; j < N; j++) s -= L[j * N + i] * y[j];
      y[i] = s / L[i * N + i];
    }
    for (let i = 0; i < N; i++) X[i * R + c] = y[i];
  }
}

/**
 * Cyclic Jacobi: rotate away each off-diagonal entry in turn until none is left. After a few
 * sweeps an entry too small to change either diagonal entry it couples is set to zero, which
 * ends the iteration (the usual criterion; quadratic convergence makes that a handful of sweeps).
 */
/** The arguments and the lower triangle's values (finite). */
export function checkSyevd(fn: string, a: unknown, values: unknown, vectors: unknown, n: unknown):
  { A0: FloatArray; W: FloatArray; V: FloatArray; N: number } {
  const N = dim(fn, 'n', n);
  const [A0, W, V] = arrays(fn, [['a', a, N * N, 'n*n'], ['values', values, N, 'n'], ['vectors', vectors, N * N, 'n*n']]);
  refuseOverlap(fn, 'values', W, 'a', A0);
  refuseOverlap(fn, 'vectors', V, 'a', A0);
  refuseOverlap(fn, 'vectors', V, 'values', W);
  refuseNonFinite(fn, 'a', A0, N, N, true);
  return { A0, W, V, N };
}

function syevdChecked(fn: string, a: unknown, values: unknown, vectors: unknown, n: unknown): void {
  const { A0, W, V, N } = checkSyevd(fn, a, values, vectors, n);
  const A = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j <= i; j++) A[i * N + j] = A[j * N + i] = A0[i * N + j];
  }
  const Z = new Float64Array(N * N); // row r: the r-th eigenvector being formed
  for (let i = 0; i < N; i++) Z[i * N + i] = 1;
  const maxSweeps = 60;
  let sweep = 0;
  for (;; sweep++) {
    let off = 0;
    for (let p = 0; p < N; p++) for (let q = p + 1; q < N; q++) off += Math.abs(A[p * N + q]);
    if (off === 0) break;
    if (sweep === maxSweeps) throw noConvergence(fn);
    for (let p = 0; p < N; p++) {
      for (let q = p + 1; q < N; q++) {
        const apq = A[p * N + q];
        const app = A[p * N + p], aqq = A[q * N + q];
        const g = 100 * Math.abs(apq);
        if (sweep > 3 && Math.abs(app) + g === Math.abs(app) && Math.abs(aqq) + g === Math.abs(aqq)) {
          A[p * N + q] = A[q * N + p] = 0;
          continue;
        }
        if (apq === 0) continue;
        const h = aqq - app;
        let t: number; // tan of the rotation angle, the smaller root of t^2 + 2 theta t - 1 = 0
        if (Math.abs(h) + g === Math.abs(h)) {
          t = apq / h;
        } else {
          const theta = (0.5 * h) / apq;
          t = 1 / (Math.abs(theta) + Math.sqrt(1 + theta * theta));
          if (theta < 0) t = -t;
        }
        const c = 1 / Math.sqrt(1 + t * t), s = t * c, tau = s / (1 + c);
        A[p * N + p] = app - t * apq;
        A[q * N + q] = aqq + t * apq;
        A[p * N + q] = A[q * N + p] = 0;
        for (let r = 0; r < N; r++) {
          if (r === p || r === q) continue;
          const arp = A[r * N + p], arq = A[r * N + q];
          A[r * N + p] = A[p * N + r] = arp - s * (arq + tau * arp);
          A[r * N + q] = A[q * N + r] = arq + s * (arp - tau * arq);
        }
        for (let r = 0; r < N; r++) {
          const zp = Z[p * N + r], zq = Z[q * N + r];
          Z[p * N + r] = zp - s * (zq + tau * zp);
          Z[q * N + r] = zq + s * (zp - tau * zq);
        }
      }
    }
  }
  const order = Array.from({ length: N }, (_, i) => i).sort((x, y) => A[x * N + x] - A[y * N + y] || x - y);
  for (let j = 0; j < N; j++) {
    const r = order[j];
    let big = 0;
    for (let i = 1; i < N; i++) if (Math.abs(Z[r * N + i]) > Math.abs(Z[r * N + big])) big = i;
    const sign = Z[r * N + big] < 0 ? -1 : 1;
    W[j] = A[r * N + r];
    for (let i = 0; i < N; i++) V[i * N + j] = sign * Z[r * N + i];
  }
}

/** Runs `fn` on a later turn of the event loop; its exception becomes the rejection. */
export function later(fn: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try {
        fn();
        resolve();
      } catch (e) {
        reject(e);
      }
    });
  });
}

/**
 * The linear algebra methods of a backend from its four checked calls, each taking first the
 * public function's name for its messages (`matmul`, `cholesky`, ...; `...Async` in the async
 * forms, which run the same call on a later turn of the event loop) and its syrk.
 */
export interface LinalgCalls {
  gemm(fn: string, a: FloatArray, b: FloatArray, c: FloatArray, m: number, n: number, k: number,
    transA: boolean, transB: boolean, alpha: number, beta: number): void;
  syrk: Backend['syrk'];
  potrf(fn: string, a: FloatArray, out: FloatArray, n: number): void;
  potrs(fn: string, l: FloatArray, b: FloatArray, x: FloatArray, n: number, nrhs: number): void;
  syevd(fn: string, a: FloatArray, values: FloatArray, vectors: FloatArray, n: number): void;
}

export function linalgMethods(c: LinalgCalls): LinalgMethods {
  return {
    gemm: (a, b, out, m, n, k, transA, transB, alpha, beta) => c.gemm('matmul', a, b, out, m, n, k, transA, transB, alpha, beta),
    syrk: c.syrk,
    potrf: (a, out, n) => c.potrf('cholesky', a, out, n),
    potrs: (l, b, x, n, nrhs) => c.potrs('choSolve', l, b, x, n, nrhs),
    syevd: (a, values, vectors, n) => c.syevd('eigh', a, values, vectors, n),
    gemmAsync: (a, b, out, m, n, k, transA, transB, alpha, beta) =>
      later(() => c.gemm('matmulAsync', a, b, out, m, n, k, transA, transB, alpha, beta)),
    potrfAsync: (a, out, n) => later(() => c.potrf('choleskyAsync', a, out, n)),
    potrsAsync: (l, b, x, n, nrhs) => later(() => c.potrs('choSolveAsync', l, b, x, n, nrhs)),
    syevdAsync: (a, values, vectors, n) => later(() => c.syevd('eighAsync', a, values, vectors, n)),
  };
}

export const referenceLinalg: LinalgMethods = linalgMethods({
  gemm: gemmChecked,
  syrk,
  potrf: potrfChecked,
  potrs: potrsChecked,
  syevd: syevdChecked,
});
