/**
 * Symmetric eigendecomposition (LAPACK syevd), for diagnostics (conditioning, definiteness) and
 * the pseudo-inverse. Row-major, float32 or float64; only the lower triangle is read.
 */
import { getBackend } from '../backend/select.js';
import type { FloatArray } from '../backend/types.js';
import { checkDimension, checkFloatArray, checkLength, checkOptions, checkSameType } from '../validate.js';
import { alloc, noOverlap } from './validate.js';

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
  const at = `${fn}: `;
  checkFloatArray(a, 'a', at);
  const N = checkDimension(n, 'n', at);
  checkLength(a, 'a', at, N * N, 'n*n');
  const o = checkOptions(opts, ['values', 'vectors'], fn);
  const values = o.values === undefined ? alloc(a, N) : (checkSameType(o.values, 'options.values', at, a, 'a') as T);
  const vectors = o.vectors === undefined ? alloc(a, N * N) : (checkSameType(o.vectors, 'options.vectors', at, a, 'a') as T);
  checkLength(values, 'options.values', at, N, 'n');
  checkLength(vectors, 'options.vectors', at, N * N, 'n*n');
  noOverlap(values, 'options.values', at, a, 'a');
  noOverlap(vectors, 'options.vectors', at, a, 'a');
  noOverlap(vectors, 'options.vectors', at, values, 'options.values');
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
