/**
 * Cholesky factorisation and solves for symmetric positive definite matrices: `cholesky`
 * (LAPACK potrf), `choSolve` (two triangular solves, or trsm for several right-hand sides),
 * `solveSPD` (both). Row-major, float32 or float64; only the lower triangle of a matrix is read.
 */
import { getBackend } from '../backend/select.js';
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError } from '../errors.js';
import {
  alloc, boolean, dimension, expectLength, floatArray, noOverlap, optionalDimension, options as readOptions, quotient,
  sameMemory, sameType,
} from './validate.js';

export interface CholeskyOptions<T extends FloatArray = FloatArray> {
  /** Where L goes (n×n, must not share memory with `a`). Default: a new array. */
  out?: T;
  /** Overwrite `a` with L (no allocation). */
  inPlace?: boolean;
}

interface Factor<T extends FloatArray> {
  a: T;
  out: T;
  n: number;
}

function prepareFactor<T extends FloatArray>(fn: string, a: T, n: unknown, opts: unknown): Factor<T> {
  floatArray(fn, 'a', a);
  const N = dimension(fn, 'n', n);
  expectLength(fn, 'a', a, N * N, 'n*n');
  const o = readOptions(fn, opts, ['out', 'inPlace']);
  const inPlace = boolean(fn, 'options.inPlace', o.inPlace);
  if (o.out === undefined) return { a, out: inPlace ? a : alloc(a, N * N), n: N };
  const out = sameType(fn, 'options.out', o.out, a, 'a') as T;
  if (inPlace && !sameMemory(out, a)) {
    throw new OptimRangeError(`${fn}: options.out and options.inPlace: true name different arrays; give one of them`);
  }
  expectLength(fn, 'options.out', out, N * N, 'n*n');
  if (!sameMemory(out, a)) noOverlap(fn, 'options.out', out, 'a', a);
  return { a, out, n: N };
}

/**
 * The lower Cholesky factor L of the symmetric positive definite n×n matrix `a` (A = L·Lᵀ),
 * reading only the lower triangle of `a`; L's strictly upper triangle is zero.
 *
 * Throws `CholeskyError` (with `.pivot`, the first pivot that was not positive) when `a` is not
 * positive definite, and OptimRangeError when its lower triangle holds NaN or ±Inf (before
 * writing anything). After a CholeskyError, `a` is unchanged unless `inPlace` was given, and
 * the contents of `out` (or of `a`, in place) are unspecified.
 */
export function cholesky<T extends FloatArray>(a: T, n: number, options?: CholeskyOptions<T>): T {
  const f = prepareFactor('cholesky', a, n, options);
  getBackend().potrf(f.a, f.out, f.n);
  return f.out;
}

/** `cholesky` on the libuv thread pool (native backend); the arrays are held until it settles. */
export async function choleskyAsync<T extends FloatArray>(a: T, n: number, options?: CholeskyOptions<T>): Promise<T> {
  const f = prepareFactor('choleskyAsync', a, n, options);
  await getBackend().potrfAsync(f.a, f.out, f.n);
  return f.out;
}

export interface ChoSolveOptions<T extends FloatArray = FloatArray> {
  /** Right-hand sides: b is n×nrhs, row-major. Default: b.length / n. */
  nrhs?: number;
  /** Where x goes (n×nrhs, must not share memory with L or b). Default: a new array. */
  out?: T;
  /** Overwrite `b` with x. */
  inPlace?: boolean;
}

interface Solve<T extends FloatArray> {
  L: T;
  b: T;
  x: T;
  n: number;
  nrhs: number;
}

function prepareSolve<T extends FloatArray>(fn: string, L: T, b: T, n: unknown, opts: unknown, lName = 'L'): Solve<T> {
  floatArray(fn, lName, L);
  sameType(fn, 'b', b, L, lName);
  const N = dimension(fn, 'n', n);
  expectLength(fn, lName, L, N * N, 'n*n');
  const o = readOptions(fn, opts, ['nrhs', 'out', 'inPlace']);
  const given = optionalDimension(fn, 'options.nrhs', o.nrhs);
  const nrhs = given ?? (N > 0 ? quotient(fn, 'b', b.length, N, 'n') : 1);
  expectLength(fn, 'b', b, N * nrhs, 'n*nrhs');
  const inPlace = boolean(fn, 'options.inPlace', o.inPlace);
  let x: T;
  if (o.out === undefined) {
    x = inPlace ? b : alloc(b, N * nrhs);
  } else {
    x = sameType(fn, 'options.out', o.out, L, lName) as T;
    if (inPlace && !sameMemory(x, b)) {
      throw new OptimRangeError(`${fn}: options.out and options.inPlace: true name different arrays; give one of them`);
    }
    expectLength(fn, 'options.out', x, N * nrhs, 'n*nrhs');
    if (!sameMemory(x, b)) noOverlap(fn, 'options.out', x, 'b', b);
  }
  noOverlap(fn, inPlace ? 'b' : 'options.out', x, lName, L);
  return { L, b, x, n: N, nrhs };
}

/**
 * x = (L·Lᵀ)⁻¹·b for the lower Cholesky factor L (from `cholesky`) of an n×n matrix. One
 * right-hand side takes two triangular solves (measured 2–3× faster than LAPACK potrs); an
 * n×nrhs `b` solves them all at once. Refuses a non-finite `b` and a zero or non-finite
 * diagonal entry of L; other entries of L are used as given (L's upper triangle is not read).
 */
export function choSolve<T extends FloatArray>(L: T, b: T, n: number, options?: ChoSolveOptions<T>): T {
  const s = prepareSolve('choSolve', L, b, n, options);
  getBackend().potrs(s.L, s.b, s.x, s.n, s.nrhs);
  return s.x;
}

/** `choSolve` on the libuv thread pool (native backend); the arrays are held until it settles. */
export async function choSolveAsync<T extends FloatArray>(L: T, b: T, n: number, options?: ChoSolveOptions<T>): Promise<T> {
  const s = prepareSolve('choSolveAsync', L, b, n, options);
  await getBackend().potrsAsync(s.L, s.b, s.x, s.n, s.nrhs);
  return s.x;
}

export interface SolveSPDOptions<T extends FloatArray = FloatArray> {
  /** Right-hand sides: b is n×nrhs, row-major. Default: b.length / n. */
  nrhs?: number;
  /** Where x goes. Default: a new array. */
  out?: T;
}

/**
 * x = a⁻¹·b for a symmetric positive definite n×n `a` (lower triangle read, `a` unchanged):
 * `cholesky` into a new array, then `choSolve`. Throws `CholeskyError` if `a` is not positive
 * definite.
 */
export function solveSPD<T extends FloatArray>(a: T, b: T, n: number, options?: SolveSPDOptions<T>): T {
  const fn = 'solveSPD';
  const o = readOptions(fn, options, ['nrhs', 'out']);
  const s = prepareSolve(fn, a, b, n, o, 'a');
  const L = alloc(a, s.n * s.n);
  const backend = getBackend();
  backend.potrf(a, L, s.n);
  backend.potrs(L, s.b, s.x, s.n, s.nrhs);
  return s.x;
}
