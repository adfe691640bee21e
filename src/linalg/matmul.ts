/**
 * Matrix products: `matmul` (BLAS gemm) and `gram` (BLAS syrk). Row-major, float32 or float64.
 */
import { getBackend } from '../backend/select.js';
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import {
  checkBoolean, checkFinite, checkFloatArray, checkLength, checkOptions, checkSameType, orDefault,
} from '../validate.js';
import { alloc, noOverlap, optionalDimension, quotient } from './validate.js';

export interface MatmulOptions<T extends FloatArray = FloatArray> {
  /** Rows of op(a) and of the result. */
  m?: number;
  /** Columns of op(b) and of the result. */
  n?: number;
  /** Columns of op(a) = rows of op(b). */
  k?: number;
  /** Use aᵀ: `a` holds a k×m matrix. */
  transA?: boolean;
  /** Use bᵀ: `b` holds an n×k matrix. */
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0; with `out`, the result is added to beta·out. `out` is not read when beta is 0. */
  beta?: number;
  /** The m×n result array (written in place); must not share memory with `a` or `b`. */
  out?: T;
}

const MATMUL_KEYS = ['m', 'n', 'k', 'transA', 'transB', 'alpha', 'beta', 'out'] as const;

interface Gemm<T extends FloatArray> {
  a: T;
  b: T;
  out: T;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

/**
 * The dimensions not given follow from the lengths (a: m·k, b: k·n, out: m·n), as long as one
 * of m, n, k is given and the one divided by is not 0.
 */
function inferDims(fn: string, a: FloatArray, b: FloatArray, out: FloatArray | undefined,
  given: { m?: number; n?: number; k?: number }): { m: number; n: number; k: number } {
  let { m, n, k } = given;
  if (m === undefined && n === undefined && k === undefined) {
    throw new OptimTypeError(`${fn}: give at least one of options.m, options.n, options.k (the lengths alone do not fix the shapes)`);
  }
  const at = `${fn}: `;
  for (let pass = 0; pass < 2; pass++) {
    if (k === undefined && m !== undefined && m > 0) k = quotient(a.length, 'a', at, m, 'm');
    if (k === undefined && n !== undefined && n > 0) k = quotient(b.length, 'b', at, n, 'n');
    if (m === undefined && k !== undefined && k > 0) m = quotient(a.length, 'a', at, k, 'k');
    if (n === undefined && k !== undefined && k > 0) n = quotient(b.length, 'b', at, k, 'k');
    if (out && m === undefined && n !== undefined && n > 0) m = quotient(out.length, 'options.out', at, n, 'n');
    if (out && n === undefined && m !== undefined && m > 0) n = quotient(out.length, 'options.out', at, m, 'm');
  }
  for (const [name, v] of [['m', m], ['n', n], ['k', k]] as const) {
    if (v === undefined) throw new OptimRangeError(`${fn}: options.${name} cannot be inferred from the lengths; give it`);
  }
  return { m: m!, n: n!, k: k! };
}

function prepareGemm<T extends FloatArray>(fn: string, a: T, b: T, opts: unknown): Gemm<T> {
  const at = `${fn}: `;
  checkFloatArray(a, 'a', at);
  checkSameType(b, 'b', at, a, 'a');
  const o = checkOptions(opts, MATMUL_KEYS, fn);
  const out = o.out === undefined ? undefined : (checkSameType(o.out, 'options.out', at, a, 'a') as T);
  const { m, n, k } = inferDims(fn, a, b, out, {
    m: optionalDimension(o.m, 'options.m', at),
    n: optionalDimension(o.n, 'options.n', at),
    k: optionalDimension(o.k, 'options.k', at),
  });
  const transA = checkBoolean(orDefault(o.transA, false), 'options.transA', at);
  const transB = checkBoolean(orDefault(o.transB, false), 'options.transB', at);
  const alpha = checkFinite(orDefault(o.alpha, 1), 'options.alpha', at);
  const beta = checkFinite(orDefault(o.beta, 0), 'options.beta', at);
  checkLength(a, 'a', at, m * k, transA ? 'k*m' : 'm*k');
  checkLength(b, 'b', at, k * n, transB ? 'n*k' : 'k*n');
  if (out) {
    checkLength(out, 'options.out', at, m * n, 'm*n');
    noOverlap(out, 'options.out', at, a, 'a');
    noOverlap(out, 'options.out', at, b, 'b');
  }
  return { a, b, out: out ?? alloc(a, m * n), m, n, k, transA, transB, alpha, beta };
}

/**
 * out = alpha · op(a) · op(b) + beta · out (BLAS gemm), row-major, where op(x) is x or, with
 * `transA`/`transB`, its transpose. Returns `out` (a new zeroed array when not given).
 *
 * Give at least one of m, n, k; the others follow from the lengths. NaN and ±Inf propagate as
 * IEEE arithmetic says (they are not refused). With alpha = 0 (or k = 0), a and b are not read.
 */
export function matmul<T extends FloatArray>(a: T, b: T, options?: MatmulOptions<T>): T {
  const g = prepareGemm('matmul', a, b, options);
  getBackend().gemm(g.a, g.b, g.out, g.m, g.n, g.k, g.transA, g.transB, g.alpha, g.beta);
  return g.out;
}

/**
 * `matmul` on the libuv thread pool (native backend): the event loop keeps running. The arrays
 * are held until the Promise settles; do not change them meanwhile.
 */
export async function matmulAsync<T extends FloatArray>(a: T, b: T, options?: MatmulOptions<T>): Promise<T> {
  const g = prepareGemm('matmulAsync', a, b, options);
  await getBackend().gemmAsync(g.a, g.b, g.out, g.m, g.n, g.k, g.transA, g.transB, g.alpha, g.beta);
  return g.out;
}

export interface GramOptions<T extends FloatArray = FloatArray> {
  /** Rows of `a`. */
  rows?: number;
  /** Columns of `a`. */
  cols?: number;
  /** aᵀa (cols×cols) instead of aaᵀ (rows×rows). */
  trans?: boolean;
  /** The result array (written in place); must not share memory with `a`. */
  out?: T;
}

const GRAM_KEYS = ['rows', 'cols', 'trans', 'out'] as const;

/**
 * The Gram matrix op(a)·op(a)ᵀ (BLAS syrk) of the rows×cols matrix `a`: a·aᵀ (rows×rows), or with
 * `trans`, aᵀ·a (cols×cols, e.g. JᵀJ of a Jacobian). Both triangles are filled. Give rows or cols.
 */
export function gram<T extends FloatArray>(a: T, options?: GramOptions<T>): T {
  const fn = 'gram';
  const at = 'gram: ';
  checkFloatArray(a, 'a', at);
  const o = checkOptions(options, GRAM_KEYS, fn);
  let rows = optionalDimension(o.rows, 'options.rows', at);
  let cols = optionalDimension(o.cols, 'options.cols', at);
  if (rows === undefined && cols === undefined) throw new OptimTypeError(`${fn}: give options.rows or options.cols`);
  if (rows === undefined && cols! > 0) rows = quotient(a.length, 'a', at, cols!, 'cols');
  if (cols === undefined && rows! > 0) cols = quotient(a.length, 'a', at, rows!, 'rows');
  if (rows === undefined || cols === undefined) {
    throw new OptimRangeError(`${fn}: options.${rows === undefined ? 'rows' : 'cols'} cannot be inferred from the length; give it`);
  }
  const trans = checkBoolean(orDefault(o.trans, false), 'options.trans', at);
  checkLength(a, 'a', at, rows * cols, 'rows*cols');
  const n = trans ? cols : rows;
  let out: T;
  if (o.out === undefined) {
    out = alloc(a, n * n);
  } else {
    out = checkSameType(o.out, 'options.out', at, a, 'a') as T;
    checkLength(out, 'options.out', at, n * n, trans ? 'cols*cols' : 'rows*rows');
    noOverlap(out, 'options.out', at, a, 'a');
  }
  getBackend().syrk(a, out, rows, cols, trans);
  return out;
}
