/**
 * Cholesky factorisation and solves for symmetric positive definite matrices: `cholesky`
 * (LAPACK potrf), `choSolve` (two triangular solves, or trsm for several right-hand sides),
 * `solveSPD` (both). Row-major, float32 or float64; only the lower triangle of a matrix is read.
 */
import { getBackend } from '../backend/select.js';
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError } from '../errors.js';
import {
  checkBoolean, checkDimension, checkFloatArray, checkLength, checkOptions, checkSameType, orDefault,
} from '../validate.js';
import { alloc, noOverlap, optionalDimension, quotient, sameMemory } from './validate.js';

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
  const at = `${fn}: `;
  checkFloatArray(a, 'a', at);
  const N = checkDimension(n, 'n', at);
  checkLength(a, 'a', at, N * N, 'n*n');
  const o = checkOptions(opts, ['out', 'inPlace'], fn);
  const inPlace = checkBoolean(orDefault(o.inPlace, false), 'options.inPlace', at);
  if (o.out === undefined) return { a, out: inPlace ? a : alloc(a, N * N), n: N };
  const out = checkSameType(o.out, 'options.out', at, a, 'a') as T;
  if (inPlace && !sameMemory(out, a)) {
    throw new OptimRangeError(`${fn}: options.out and options.inPlace: true name different arrays; give one of them`);
  }
  checkLength(out, 'options.out', at, N * N, 'n*n');
  if (!sameMemory(out, a)) noOverlap(out, 'options.out', at, a, 'a');
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
  const at = `${fn}: `;
  checkFloatArray(L, lName, at);
  checkSameType(b, 'b', at, L, lName);
  const N = checkDimension(n, 'n', at);
  checkLength(L, lName, at, N * N, 'n*n');
  const o = checkOptions(opts, ['nrhs', 'out', 'inPlace'], fn);
  const given = optionalDimension(o.nrhs, 'options.nrhs', at);
  const nrhs = given ?? (N > 0 ? quotient(b.length, 'b', at, N, 'n') : 1);
  checkLength(b, 'b', at, N * nrhs, 'n*nrhs');
  const inPlace = checkBoolean(orDefault(o.inPlace, false), 'options.inPlace', at);
  let x: T;
  if (o.out === undefined) {
    x = inPlace ? b : alloc(b, N * nrhs);
  } else {
    x = checkSameType(o.out, 'options.out', at, L, lName) as T;
    if (inPlace && !sameMemory(x, b)) {
      throw new OptimRangeError(`${fn}: options.out and options.inPlace: true name different arrays; give one of them`);
    }
    checkLength(x, 'options.out', at, N * nrhs, 'n*nrhs');
    if (!sameMemory(x, b)) noOverlap(x, 'options.out', at, b, 'b');
  }
  noOverlap(x, inPlace ? 'b' : 'options.out', at, L, lName);
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
  const o = checkOptions(options, ['nrhs', 'out'], fn);
  const s = prepareSolve(fn, a, b, n, o, 'a');
  const L = alloc(a, s.n * s.n);
  const backend = getBackend();
  backend.potrf(a, L, s.n);
  backend.potrs(L, s.b, s.x, s.n, s.nrhs);
  return s.x;
}
