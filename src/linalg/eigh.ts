/**
 * Symmetric eigendecomposition (LAPACK syevd), for diagnostics (conditioning, definiteness) and
 * the pseudo-inverse. Row-major, float32 or float64; only the lower triangle is read.
 */
import { getBackend } from '../backend/select.js';
import type { FloatArray } from '../backend/types.js';
import {
  alloc, dimension, expectLength, floatArray, noOverlap, options as readOptions, sameType,
} from './validate.js';

export interface EighResult<T extends FloatArray = FloatArray> {
  /** The n eigenvalues, ascending. */
  values: T;
  /** n×n row-major; column j (vectors[i*n + j], i = 0..n-1) is the unit eigenvector of values[j]. */
  vectors: T;
}

export interface EighOptions<T extends FloatArray = FloatArray> {
  /** Where the eigenvalues go (length n). Default: a new array. */
  values?: T;
  /** Where the eigenvectors go (n×n). Default: a new array. */
  vectors?: T;
}

function prepare<T extends FloatArray>(fn: string, a: T, n: unknown, opts: unknown): EighResult<T> & { a: T; n: number } {
  floatArray(fn, 'a', a);
  const N = dimension(fn, 'n', n);
  expectLength(fn, 'a', a, N * N, 'n*n');
  const o = readOptions(fn, opts, ['values', 'vectors']);
  const values = o.values === undefined ? alloc(a, N) : (sameType(fn, 'options.values', o.values, a, 'a') as T);
  const vectors = o.vectors === undefined ? alloc(a, N * N) : (sameType(fn, 'options.vectors', o.vectors, a, 'a') as T);
  expectLength(fn, 'options.values', values, N, 'n');
  expectLength(fn, 'options.vectors', vectors, N * N, 'n*n');
  noOverlap(fn, 'options.values', values, 'a', a);
  noOverlap(fn, 'options.vectors', vectors, 'a', a);
  noOverlap(fn, 'options.vectors', vectors, 'options.values', values);
  return { a, n: N, values, vectors };
}

/**
 * Eigenvalues (ascending) and orthonormal eigenvectors of the symmetric n×n matrix whose lower
 * triangle is in `a`: a = V·diag(values)·Vᵀ. Each eigenvector's sign is fixed so that its
 * largest-magnitude component (the first, on ties) is positive, so results compare across
 * backends wherever the eigenvalues are distinct. Refuses NaN and ±Inf in the lower triangle.
 * Native: LAPACK syevd (OpenBLAS) or Householder tridiagonalisation + implicit QL; reference:
 * cyclic Jacobi.
 */
export function eigh<T extends FloatArray>(a: T, n: number, options?: EighOptions<T>): EighResult<T> {
  const e = prepare('eigh', a, n, options);
  getBackend().syevd(e.a, e.values, e.vectors, e.n);
  return { values: e.values, vectors: e.vectors };
}

/** `eigh` on the libuv thread pool (native backend); the arrays are held until it settles. */
export async function eighAsync<T extends FloatArray>(a: T, n: number, options?: EighOptions<T>): Promise<EighResult<T>> {
  const e = prepare('eighAsync', a, n, options);
  await getBackend().syevdAsync(e.a, e.values, e.vectors, e.n);
  return { values: e.values, vectors: e.vectors };
}
