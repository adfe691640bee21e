/** Argument checks shared by the objective constructors: the data, its shape, the penalty. */
import type { FloatArray } from '../backend/types.js';
import { OptimRangeError, OptimTypeError } from '../errors.js';
import { expectLength, floatArray, optionalDimension, options as readOptions, quotient } from '../linalg/validate.js';
import { describe } from '../optim/validate.js';
import { Design } from './design.js';
import { Penalty } from './penalty.js';
import type { Reduction } from './types.js';

export const COMMON_KEYS = ['rows', 'cols', 'fitIntercept', 'penalizeIntercept', 'l1', 'l2', 'reduction'] as const;

export interface Setup<T extends FloatArray> {
  design: Design<T>;
  penalty: Penalty;
  reduction: Reduction;
  opts: Record<string, unknown>;
}

function flag(fn: string, name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new OptimTypeError(`${fn}: options.${name} must be a boolean, got ${describe(v)}`);
  return v;
}

function strength(fn: string, name: string, v: unknown): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number') throw new OptimTypeError(`${fn}: options.${name} must be a number, got ${describe(v)}`);
  if (!(v >= 0 && v < Infinity)) throw new OptimRangeError(`${fn}: options.${name} must be a finite number >= 0, got ${v}`);
  return v;
}

/**
 * Checks X (rows×cols; the missing dimension follows from its length) and the common options,
 * and builds the design and penalty for a model with `outputs(opts)` outputs.
 */
export function setup<T extends FloatArray>(
  fn: string,
  X: T,
  options: unknown,
  extraKeys: readonly string[],
  outputs: (opts: Record<string, unknown>) => number,
): Setup<T> {
  floatArray(fn, 'X', X);
  const opts = readOptions(fn, options, [...COMMON_KEYS, ...extraKeys]);
  let rows = optionalDimension(fn, 'options.rows', opts.rows);
  let cols = optionalDimension(fn, 'options.cols', opts.cols);
  if (rows === undefined && cols === undefined) throw new OptimTypeError(`${fn}: give options.rows or options.cols (X is rows×cols, row-major)`);
  if (rows === undefined) rows = cols! > 0 ? quotient(fn, 'X', X.length, cols!, 'cols') : 0;
  if (cols === undefined) cols = rows > 0 ? quotient(fn, 'X', X.length, rows, 'rows') : 0;
  if (rows === 0) throw new OptimRangeError(`${fn}: X has no rows`);
  if (cols === 0) throw new OptimRangeError(`${fn}: X has no columns`);
  expectLength(fn, 'X', X, rows * cols, 'rows*cols');
  const fitIntercept = flag(fn, 'fitIntercept', opts.fitIntercept, true);
  const penalizeIntercept = flag(fn, 'penalizeIntercept', opts.penalizeIntercept, false);
  const l1 = strength(fn, 'l1', opts.l1);
  const l2 = strength(fn, 'l2', opts.l2);
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum') {
    throw new OptimRangeError(`${fn}: options.reduction must be 'mean' or 'sum', got ${String(reduction)}`);
  }
  const K = outputs(opts);
  const design = new Design(X, rows, cols, K, fitIntercept);
  const penalized = fitIntercept && !penalizeIntercept ? cols * K : design.size;
  return { design, penalty: new Penalty(l1, l2, penalized), reduction, opts };
}

/**
 * y must be an array of `rows` numbers; `check` validates each (returns what is wrong, or
 * null). Returns a copy, so later changes to y do not reach the objective.
 */
export function targets(
  fn: string,
  y: unknown,
  rows: number,
  check: (v: number) => string | null,
): Float64Array {
  const ok = Array.isArray(y) || (ArrayBuffer.isView(y) && !(y instanceof DataView));
  if (!ok) throw new OptimTypeError(`${fn}: y must be an array or typed array of numbers, got ${describe(y)}`);
  const arr = y as ArrayLike<unknown>;
  if (arr.length !== rows) throw new OptimRangeError(`${fn}: y has length ${arr.length}, expected rows = ${rows}`);
  for (let i = 0; i < rows; i++) {
    const v = arr[i];
    if (typeof v !== 'number') throw new OptimTypeError(`${fn}: y[${i}] must be a number, got ${describe(v)}`);
    const err = check(v);
    if (err !== null) throw new OptimRangeError(`${fn}: y[${i}] = ${v} ${err}`);
  }
  return Float64Array.from(arr as ArrayLike<number>);
}
